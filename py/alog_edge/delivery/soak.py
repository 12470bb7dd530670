"""Kill install.sh and check the device: at every step it has, then at random instants.

A `Device` is a prefix on this machine driven through install.sh exactly as on a device: with
`path_dir` set (a folder of busybox applets) nothing but busybox runs it. After each SIGKILL (of the
installer's whole process group: tar, sha256sum and the selftest die with it) the device must show
`current` at the old release or the new one, complete (`alog-edge verify` passes on it) and
passing its selftest; and the next install must complete.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import AlogError
from .bundle import open_bundle
from .local import device_env

log = logging.getLogger(__name__)

INSTALL_TIMEOUT = 600


def busybox_applets(dest: Path, busybox: str = "busybox") -> Path:
    """A folder with one symlink per busybox applet: a PATH with nothing else in it."""
    binary = shutil.which(busybox)
    if binary is None:
        raise AlogError(None, "busybox not found: run `invoke setup` (Debian package busybox)")
    applets = subprocess.run([binary, "--list"], capture_output=True, text=True, check=True).stdout.split()
    dest.mkdir(parents=True, exist_ok=True)
    for name in applets:
        link = dest / name
        if not link.is_symlink():
            link.symlink_to(binary)
    return dest


@dataclass
class Device:
    prefix: Path
    target: str = "x86_64"
    path_dir: Path | None = None          # busybox applets only, or None: this machine's PATH
    conf: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prefix = Path(self.prefix).resolve()
        (self.prefix / "etc").mkdir(parents=True, exist_ok=True)
        if self.conf:
            (self.prefix / "etc" / "alog-edge.conf").write_text(
                "".join(f"{k}={v}\n" for k, v in self.conf.items()))

    def env(self, **extra: str) -> dict[str, str]:
        env = device_env(self.target)
        if self.path_dir is not None:
            env = {k: v for k, v in env.items() if k.startswith("ALOG_EDGE_")}
            env["PATH"] = str(self.path_dir)
        env.update(extra)
        return env

    def sh(self) -> str:
        return str(self.path_dir / "sh") if self.path_dir is not None else "sh"

    def installer(self, bundle: Path | None = None) -> Path:
        """current/install.sh, else (first install) the bundle's own, written beside the prefix."""
        current = self.prefix / "current" / "install.sh"
        if current.is_file() or bundle is None:
            return current
        first = self.prefix.with_name(self.prefix.name + ".first-install.sh")
        first.write_bytes(open_bundle(bundle).read("install.sh"))
        return first

    def command(self, *args: str, bundle: Path | None = None) -> list[str]:
        return [self.sh(), str(self.installer(bundle)), *args, "--prefix", str(self.prefix)]

    def run(self, *args: str, bundle: Path | None = None, timeout: float = INSTALL_TIMEOUT,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args, bundle=bundle), capture_output=True, text=True,
                              env=self.env(**env), timeout=timeout)

    def install(self, bundle: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("install", str(bundle), *extra, bundle=bundle, **env)

    def status(self) -> dict[str, Any]:
        if not (self.prefix / "current" / "install.sh").is_file():
            return {"current": None, "previous": None, "releases": [], "history": []}
        proc = self.run("status")
        if proc.returncode != 0:
            raise AlogError(self.prefix, f"status failed: {proc.stderr.strip()}")
        return json.loads(proc.stdout)

    def binary(self, release: Path) -> list[str]:
        emulator = self.env().get("ALOG_EDGE_EMULATOR")
        return [*(emulator.split() if emulator else []), str(release / "bin" / "alog-edge")]

    def check_current(self) -> str:
        """The current release's version after checking it is complete and passes its selftest."""
        current = self.prefix / "current"
        if not current.is_symlink() or not current.is_dir():
            raise AlogError(current, "missing or dangling")
        for args in (["verify", "--keys", str(self.prefix / "keys"), str(current)],
                     ["selftest", str(current / "models")]):
            proc = subprocess.run([*self.binary(current), *args], capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                raise AlogError(current, f"{args[0]} fails (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
        return self.status()["current"]

    def stop_service(self) -> None:
        init = self.prefix / "current" / "service" / "alog-edge.init"
        if init.is_file():
            subprocess.run([self.sh(), str(init), "stop"], env=self.env(ALOG_EDGE_PREFIX=str(self.prefix)),
                           capture_output=True, timeout=60)


def install_steps(device: Device, bundle: Path) -> tuple[list[str], float]:
    """The steps install.sh goes through installing `bundle` (it is installed), and the seconds it took."""
    trace = device.prefix.with_name(device.prefix.name + ".trace")
    trace.unlink(missing_ok=True)
    started = time.monotonic()
    proc = device.install(bundle, ALOG_EDGE_TRACE=str(trace))
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise AlogError(bundle, f"install failed: {proc.stderr.strip()}")
    steps = trace.read_text().split()
    trace.unlink()
    return steps, seconds


@dataclass
class SoakResult:
    steps: list[str] = field(default_factory=list)
    step_kills: int = 0
    random_kills: int = 0
    old_after_kill: int = 0
    new_after_kill: int = 0
    completed_anyway: int = 0       # the kill came after install.sh had finished
    recovered_installs: int = 0
    full_install_seconds: float = 0.0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return dict(self.__dict__, full_install_seconds=round(self.full_install_seconds, 2),
                    seconds=round(self.seconds, 1))

    def text(self) -> str:
        return (f"killed install.sh at each of {self.step_kills} steps ({', '.join(self.steps)}) and at "
                f"{self.random_kills} random instants: current was the old release {self.old_after_kill} times, "
                f"the new one {self.new_after_kill} times ({self.completed_anyway} kills came after it finished), "
                f"complete and passing its selftest every time; {self.recovered_installs} installs after a kill "
                f"all completed (a full install takes {self.full_install_seconds:.1f}s; {self.seconds:.0f}s in all)")


def kill_soak(device: Device, bundles: tuple[Path, Path], trust_key: Path, random_runs: int,
              every_step: bool = True, seed: int = 1, progress: Callable[[int], None] | None = None) -> SoakResult:
    """Kill installs of bundles[0]/bundles[1] (alternating) and check the device after each."""
    started = time.monotonic()
    rng = random.Random(seed)
    res = SoakResult()
    versions = [open_bundle(b).version for b in bundles]
    if device.status()["current"] not in versions:
        proc = device.install(bundles[0], "--trust-key", str(trust_key))
        if proc.returncode != 0:
            raise AlogError(bundles[0], f"first install failed: {proc.stderr.strip()}")

    def other() -> int:
        return 1 if device.status()["current"] == versions[0] else 0

    res.steps, res.full_install_seconds = install_steps(device, bundles[other()])
    plan = ([("step", s) for s in res.steps] if every_step else []) + [("random", None)] * random_runs
    for kind, step in plan:
        new = other()
        old_version = versions[1 - new]
        if kind == "step":
            proc = device.install(bundles[new], ALOG_EDGE_KILL_AT=step)
            killed = proc.returncode == -signal.SIGKILL
            res.step_kills += 1
            if not killed:
                raise AlogError(bundles[new], f"install.sh did not reach step {step} "
                                              f"(exit {proc.returncode}: {proc.stderr.strip()})")
        else:
            killed = _kill_at_random(device, bundles[new], rng.uniform(0, res.full_install_seconds * 1.1))
            res.random_kills += 1
        got = device.check_current()
        if got == old_version:
            res.old_after_kill += 1
        elif got == versions[new]:
            res.new_after_kill += 1
            res.completed_anyway += not killed
        else:
            raise AlogError(device.prefix, f"after a kill current is {got}, neither {old_version} nor {versions[new]}")
        nxt = bundles[other()]
        proc = device.install(nxt)
        if proc.returncode != 0:
            raise AlogError(nxt, f"the install after a kill ({kind} {step or ''}) failed: {proc.stderr.strip()}")
        res.recovered_installs += 1
        if progress:
            progress(1)
    res.seconds = time.monotonic() - started
    return res


def _kill_at_random(device: Device, bundle: Path, after: float) -> bool:
    """SIGKILL an install's whole process group `after` seconds in; True when it was still running."""
    proc = subprocess.Popen(device.command("install", str(bundle), bundle=bundle), env=device.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=after)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        return True


def run_local_soak(workspace: Path, runs: int, seed: int = 1, bundles: tuple[Path, Path] | None = None,
                   key: Path | None = None, every_step: bool = True, service: bool = True) -> SoakResult:
    """`invoke soak --transport local`: a fresh prefix under <workspace>/soak/, busybox applets only,
    the init service with a 1 s health watch; two bundles of the demo models (versions soak-a and
    soak-b) unless named."""
    from tqdm import tqdm

    from . import bundle as b
    from . import keys
    root = Path(workspace) / "soak"
    if (root / "device").exists():
        shutil.rmtree(root / "device")
    root.mkdir(parents=True, exist_ok=True)
    secret = key or keys.default_key_path()
    if bundles is None:
        made = []
        for name in ("soak-a", "soak-b"):
            res = b.build(b.BundleRequest("x86_64", key=key, version=name, workspace=Path(workspace),
                                          out=root / f"alog-edge-{name}-x86_64.tar.gz"))
            made.append(res.path)
        bundles = (made[0], made[1])
    log_file = root / "watched.log"
    log_file.touch()
    device = Device(root / "device", path_dir=busybox_applets(root / "busybox"),
                    conf={"ALOG_EDGE_SERVICE": "init" if service else "none", "ALOG_EDGE_LOG": str(log_file),
                          "ALOG_EDGE_HEALTH_SECONDS": "1"})
    steps = 12 if every_step else 0
    try:
        with tqdm(total=steps + runs, desc="kills", unit="kill") as bar:
            return kill_soak(device, bundles, keys.public_path(secret), runs, every_step=every_step, seed=seed,
                             progress=bar.update)
    finally:
        device.stop_service()
