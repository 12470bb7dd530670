"""Fault soak of SSH flashing: the line cut at a random byte (a loopback relay), the SSH server killed at a
random instant, install.sh killed at a random instant. After every fault the device's `current` must be the
old or the new release, complete, passing selftest; the next flash must complete, resending at most one
chunk of what had arrived. `invoke soak --transport ssh --runs 200`; the suite runs it at a small count."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from alog_edge.delivery import flash, relay as relays, ssh, sshdevice
from alog_edge.errors import AlogError

log = logging.getLogger(__name__)
FAULTS = ("cut", "kill-server", "kill-install")
SETTLE_SECONDS = 20.0


@dataclass
class FaultStats:
    runs: int = 0
    landed: int = 0            # the faulted flash failed (the fault hit before it finished)
    old: int = 0               # current after the fault: the old release
    new: int = 0               # ... the new one
    recovered: int = 0         # the next flash completed
    max_resent: int = 0        # bytes the next flash sent again of what had already arrived
    resumed: int = 0           # next flashes that resumed a partial upload


@dataclass
class SoakReport:
    stats: dict[str, FaultStats] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        return {"faults": {k: vars(v) for k, v in self.stats.items()}, "failures": self.failures,
                "chunk": flash.CHUNK, "seconds": round(self.seconds, 1)}

    def text(self) -> str:
        lines = [f"{'FAULT':<13} {'RUNS':>5} {'LANDED':>6} {'OLD':>5} {'NEW':>5} {'RECOVERED':>9} {'RESUMED':>7} "
                 f"{'MAX RESENT':>10}"]
        for name, s in self.stats.items():
            lines.append(f"{name:<13} {s.runs:>5} {s.landed:>6} {s.old:>5} {s.new:>5} {s.recovered:>9} "
                         f"{s.resumed:>7} {s.max_resent:>9}B")
        lines.append(f"chunk {flash.CHUNK} B; {len(self.failures)} failures; {self.seconds:.0f}s")
        return "\n".join(lines + [f"FAILED: {f}" for f in self.failures[:20]])


@dataclass
class _Rig:
    device: sshdevice.Device
    relay: relays.CuttingRelay
    options: ssh.SshOptions


def check_device(prefix: Path, allowed: set[str]) -> str:
    """The device's current release: one of `allowed`, every file as its manifest says, selftest passing."""
    cur = prefix / "current"
    if not cur.is_symlink():
        raise AlogError(cur, "is not a symlink")
    version = os.readlink(cur).rstrip("/").rsplit("/", 1)[-1]
    if version not in allowed:
        raise AlogError(cur, f"points at {version}, neither the old nor the new release")
    manifest = json.loads((cur / "MANIFEST.json").read_text())
    if manifest.get("version") != version:
        raise AlogError(cur, f"holds the manifest of {manifest.get('version')}")
    for f in manifest["files"]:
        path = cur / f["path"]
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != f["sha256"]:
            raise AlogError(path, "missing or damaged in the current release")
    run = subprocess.run([str(cur / "bin" / "alog-edge"), "selftest", str(cur / "models")], capture_output=True,
                         timeout=60)
    if run.returncode != 0:
        raise AlogError(cur, f"selftest fails: {run.stderr.decode(errors='replace').strip()[-200:]}")
    return version


def _session_pids(device: sshdevice.Device) -> list[int]:
    """The device's command processes still running (not the server, not the alog-edge service)."""
    service = set()
    for pidfile in (device.prefix / "run").glob("*.pid"):
        try:
            service.add(int(pidfile.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    out = []
    for pid in sshdevice._processes_under(device.root):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid != device.pid and pid not in service and b"alog-edge\0run" not in cmd and b" run " not in cmd:
            out.append(pid)
    return out


def _settle(device: sshdevice.Device) -> None:
    """Wait (bounded) until what the faulted session started on the device has ended."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while _session_pids(device) and time.monotonic() < deadline:
        time.sleep(0.05)


def _arrived(device: sshdevice.Device) -> dict[str, int]:
    """Bytes already on the device per upload (complete files and .part files in incoming/)."""
    got = {}
    for path in (device.prefix / "incoming").rglob("*"):
        if path.is_file():
            rel = str(path.relative_to(device.prefix / "incoming"))
            rel = rel.split("/", 1)[1] if "/" in rel else rel
            got[rel.removesuffix(".part")] = max(got.get(rel.removesuffix(".part"), 0), path.stat().st_size)
    return got


def _install_pids(device: sshdevice.Device) -> list[int]:
    out = []
    for pid in _session_pids(device):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(c.endswith(b"install.sh") for c in cmd) and b"--staged" in cmd:
            out.append(pid)
    return out


def _flash(rig: _Rig, bundle, port: int) -> flash.FlashResult:
    t = ssh.SshTransport(ssh.HostSpec(rig.device.user, "127.0.0.1", port), rig.options)
    try:
        return flash.flash(t, bundle, str(rig.device.prefix))
    finally:
        t.close()


def _faulted_flash(rig: _Rig, bundle, fault: str, rng: random.Random, clean: dict) -> bool:
    """Flash with the fault injected; True when the flash failed (the fault landed)."""
    outcome: dict = {}

    def go(port: int) -> None:
        try:
            outcome["res"] = _flash(rig, bundle, port)
        except Exception as exc:  # noqa: BLE001 - every way a faulted flash ends is an outcome
            outcome["err"] = exc
    if fault == "cut":
        rig.relay.arm(rng.randint(1, clean["bytes"]))
        go(rig.relay.port)
        rig.relay.arm(None)
    else:
        worker = threading.Thread(target=go, args=(rig.device.port,), daemon=True)
        worker.start()
        if fault == "kill-server":
            time.sleep(rng.uniform(0, clean["seconds"]))
            sshdevice.kill_server(rig.device)
        else:
            deadline = time.monotonic() + 30
            while not _install_pids(rig.device) and worker.is_alive() and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, clean["install_seconds"]))
            for pid in _install_pids(rig.device):
                for p in sshdevice.descendants(pid):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
        worker.join(timeout=300)
        if fault == "kill-server":
            sshdevice.restart(rig.device)
    return "err" in outcome


def _measure(rig: _Rig, bundles: list, current: int) -> tuple[dict, int]:
    """A clean flash through the relay: the bytes, seconds and installer seconds a fault is drawn from."""
    rig.relay.arm(None)
    start = time.monotonic()
    res = _flash(rig, bundles[1 - current], rig.relay.port)
    return {"bytes": rig.relay.forwarded, "seconds": time.monotonic() - start,
            "install_seconds": res.install_seconds}, 1 - current


def run_faults(devices: list[sshdevice.Device], bundles: list, faults: list[str], runs: int, seed: int,
               progress: bool | None = None) -> SoakReport:
    """`runs` faults of each kind, spread over the devices (each already holding bundles[0] or bundles[1]);
    the devices are faulted in parallel, each by its own thread."""
    for f in faults:
        if f not in FAULTS:
            raise AlogError("--faults", f"{f!r}: one of {', '.join(FAULTS)}")
    if runs < 1:
        raise AlogError("--runs", f"{runs}: must be at least 1")
    report, start, lock = SoakReport(), time.monotonic(), threading.Lock()
    report.stats = {f: FaultStats() for f in faults}
    versions = {b.version for b in bundles}
    plan = [(i, faults[i % len(faults)]) for i in range(runs * len(faults))]
    rigs = []
    try:
        for d in devices:
            rig = _Rig(d, relays.CuttingRelay(d.port), ssh.SshOptions(known_hosts=d.known_hosts, identity=d.identity))
            sshdevice.trust_alias(d, rig.relay.port)
            rigs.append(rig)
        with tqdm(total=len(plan), desc="soak", unit="run", disable=None if progress is None else not progress) as bar:
            def drive(k: int, rig: _Rig) -> None:
                rng = random.Random(seed * 1000 + k)
                current = bundles.index(next(b for b in bundles if b.version == check_device(rig.device.prefix,
                                                                                              versions)))
                clean, current = _measure(rig, bundles, current)
                for i, fault in plan[k::len(rigs)]:
                    try:
                        outcome = _one_run(rig, bundles, current, fault, rng, clean, versions)
                    except Exception as exc:  # noqa: BLE001 - a failed check is a finding, recorded
                        outcome = {"runs": 1}
                        with lock:
                            report.failures.append(f"run {i} {fault} on {rig.device.kind}: {exc}")
                        log.warning("run %d %s on %s: %s", i, fault, rig.device.kind, exc)
                    with lock:
                        stats = report.stats[fault]
                        for key, value in outcome.items():
                            setattr(stats, key, max(stats.max_resent, value) if key == "max_resent"
                                    else getattr(stats, key) + value)
                        bar.update(1)
                    try:
                        current = bundles.index(next(b for b in bundles if b.version == check_device(
                            rig.device.prefix, versions)))
                    except Exception as exc:  # noqa: BLE001
                        with lock:
                            report.failures.append(f"run {i} {fault}: device left broken: {exc}")
                        return
            workers = [threading.Thread(target=drive, args=(k, r), name=f"soak-{k}") for k, r in enumerate(rigs)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
    finally:
        for r in rigs:
            r.relay.close()
    report.seconds = time.monotonic() - start
    return report


def _one_run(rig: _Rig, bundles: list, old: int, fault: str, rng: random.Random, clean: dict,
             versions: set) -> dict[str, int]:
    """One fault and the flash after it; what it counts, for FaultStats."""
    new = 1 - old
    landed = _faulted_flash(rig, bundles[new], fault, rng, clean)
    _settle(rig.device)
    after = check_device(rig.device.prefix, {bundles[old].version, bundles[new].version})
    arrived = _arrived(rig.device)
    res = _flash(rig, bundles[new], rig.device.port)
    if res.result not in ("ok", "up to date") or check_device(rig.device.prefix, versions) != bundles[new].version:
        raise AlogError(rig.device.host, f"the next flash did not complete: {res.summary()}")
    resent, resumed = _resent(res, arrived, bundles[new])
    if resent > flash.CHUNK:
        raise AlogError(rig.device.host, f"the next flash resent {resent} bytes that had arrived "
                                         f"(more than one chunk, {flash.CHUNK})")
    return {"runs": 1, "landed": int(landed), "old": int(after == bundles[old].version),
            "new": int(after == bundles[new].version), "recovered": 1, "max_resent": resent,
            "resumed": int(resumed)}


def _resent(res: flash.FlashResult, arrived: dict[str, int], bundle) -> tuple[int, bool]:
    """Bytes the flash sent again of what had already arrived (in the form it travels: packed or not), and
    whether it resumed a partial upload."""
    resent, resumed = 0, False
    names = {e.path for e in bundle.files} | set(flash.SIGNED)
    for f in res.files:
        if f["path"] not in names:
            continue
        packed = ssh.packed_form(bundle.read(f["path"]))
        wire = len(packed) if packed else f["size"]
        got = arrived.get(f["path"] + ".gz" if packed else f["path"], 0)
        resent += max(0, f["sent"] - (wire - got))
        resumed |= 0 < got < wire
    return resent, resumed
