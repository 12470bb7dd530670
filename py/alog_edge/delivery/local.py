"""`invoke install`: the device side on this machine, with the same install.sh a device runs.

The bundle is first checked here (structure, every sha256, and its signature against --trust-key or
the prefix's trusted keys), as a flasher does before it uploads. Then the installer runs: the
prefix's own `current/install.sh` when a release is installed (the trusted installer), else the
bundle's. aarch64 bundles run through the extracted qemu-aarch64 (ALOG_EDGE_EMULATOR) so their
verify and selftest are real.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alog_edge.toolchain import build as native
from ..errors import AlogError
from . import keys
from .bundle import REPO, open_bundle
from .manifest import parse

log = logging.getLogger(__name__)

DEFAULT_CONF = ("# alog-edge on this machine (written by `invoke install`): no service is started.\n"
                "# For a service: ALOG_EDGE_SERVICE=init (or systemd), ALOG_EDGE_LOG=/path/to/log,\n"
                "# ALOG_EDGE_HEALTH_SECONDS=5\nALOG_EDGE_SERVICE=none\n")


class InstallError(AlogError):
    """install.sh refused or failed: its one line, and its exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(None, message)
        self.code = code


@dataclass
class LocalResult:
    action: str
    message: str
    status: dict[str, Any]
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {"action": self.action, "message": self.message, "seconds": round(self.seconds, 2),
                "status": self.status}

    def text(self) -> str:
        s = self.status
        return (f"{self.message} ({self.seconds:.1f}s)\n"
                f"  current {s.get('current')}, previous {s.get('previous')}, target {s.get('target')}, "
                f"service {s.get('service')}, releases {', '.join(s.get('releases') or []) or 'none'}")


def host_arch() -> str:
    machine = platform.machine()
    return "aarch64" if machine in ("aarch64", "arm64") else machine


def device_env(target: str | None, repo: Path = REPO) -> dict[str, str]:
    """The environment that runs `target` binaries here (qemu for aarch64 on an x86_64 host)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALOG_EDGE_")}
    if target and target != host_arch():
        if target != "aarch64":
            raise AlogError(None, f"cannot run {target} binaries on this {host_arch()} machine")
        env["ALOG_EDGE_EMULATOR"] = " ".join(native.qemu_command(repo))
        env["ALOG_EDGE_DEVICE_ARCH"] = target
    return env


def _prefix_target(prefix: Path) -> str | None:
    manifest = prefix / "current" / "MANIFEST.json"
    if not manifest.is_file():
        return None
    return parse(manifest.read_bytes(), str(manifest))[0]["target"]


def _run(installer: Path, args: list[str], env: dict[str, str], timeout: float) -> str:
    proc = subprocess.run(["sh", str(installer), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        message = errors[-1][len("error: "):] if errors else (proc.stderr.strip() or "failed")
        raise InstallError(f"install.sh {args[0]}: {message}", proc.returncode)
    return proc.stdout.strip()


def status(prefix: Path, repo: Path = REPO) -> dict[str, Any]:
    prefix = Path(prefix).resolve()
    installer = prefix / "current" / "install.sh"
    if not installer.is_file():
        return {"prefix": str(prefix), "current": None, "previous": None, "target": None, "service": "none",
                "releases": [], "keys": [], "history": []}
    out = _run(installer, ["status", "--prefix", str(prefix)], device_env(_prefix_target(prefix), repo), 60)
    return json.loads(out)


def _check_signature(bundle_path: Path, manifest: bytes, signature: bytes, prefix: Path,
                     trust_key: Path | None) -> str:
    if trust_key is not None:
        return keys.verify(manifest, signature, trust_key)
    trusted = sorted((prefix / "keys").glob("*.pub"))
    if not trusted:
        raise AlogError(bundle_path, f"no trusted key in {prefix / 'keys'}: pass --trust-key PUB")
    signed_by = keys.signature_key_id(signature)
    for pub in trusted:
        if keys.load_public(pub)[0] == signed_by:
            return keys.verify(manifest, signature, pub)
    raise AlogError(bundle_path, f"signed by key {signed_by}, which {prefix / 'keys'} does not trust")


def install(bundle_path: Path, prefix: Path, trust_key: Path | None = None, force: bool = False,
            repo: Path = REPO, timeout: float = 900) -> LocalResult:
    started = time.monotonic()
    prefix = Path(prefix).resolve()
    bundle = open_bundle(bundle_path)
    key_id = _check_signature(Path(bundle_path), bundle.manifest_bytes, bundle.signature_bytes, prefix, trust_key)
    log.info("install: %s %s signed by %s, checked here; installing into %s", bundle.version, bundle.target,
             key_id, prefix)
    (prefix / "etc").mkdir(parents=True, exist_ok=True)
    conf = prefix / "etc" / "alog-edge.conf"
    if not conf.exists():
        conf.write_text(DEFAULT_CONF)
    args = ["install", str(Path(bundle_path).resolve()), "--prefix", str(prefix)]
    if trust_key is not None:
        args += ["--trust-key", str(Path(trust_key).resolve())]
    if force:
        args.append("--force")
    env = device_env(bundle.target, repo)
    current = prefix / "current" / "install.sh"
    if current.is_file():
        message = _run(current, args, env, timeout)
    else:  # first install: the bundle's own installer
        with tempfile.TemporaryDirectory(prefix="alog-edge-install.") as tmp:
            installer = Path(tmp) / "install.sh"
            installer.write_bytes(bundle.read("install.sh"))
            message = _run(installer, args, env, timeout)
    return LocalResult("install", message, status(prefix, repo), time.monotonic() - started)


def rollback(prefix: Path, repo: Path = REPO, timeout: float = 300) -> LocalResult:
    started = time.monotonic()
    prefix = Path(prefix).resolve()
    installer = prefix / "current" / "install.sh"
    if not installer.is_file():
        raise AlogError(prefix, "no release is installed here")
    message = _run(installer, ["rollback", "--prefix", str(prefix)], device_env(_prefix_target(prefix), repo),
                   timeout)
    return LocalResult("rollback", message, status(prefix, repo), time.monotonic() - started)


@dataclass
class UpdateResult:
    result: LocalResult
    sent: int
    sent_paths: list[str]


def update(bundle_path: Path, prefix: Path, repo: Path = REPO, timeout: float = 900) -> UpdateResult:
    """A delta install, as a flasher does it: only the files whose sha256 differs from the current
    release's go into P/incoming/<version>-<target>/, then `install --staged`."""
    started = time.monotonic()
    prefix = Path(prefix).resolve()
    current = prefix / "current" / "MANIFEST.json"
    if not current.is_file():
        raise AlogError(prefix, "no release is installed here: install a whole bundle first")
    bundle = open_bundle(bundle_path)
    _check_signature(Path(bundle_path), bundle.manifest_bytes, bundle.signature_bytes, prefix, None)
    have = {e.path: e.sha256 for e in parse(current.read_bytes(), str(current))[1]}
    changed = [e for e in bundle.files if have.get(e.path) != e.sha256]
    staged = prefix / "incoming" / f"{bundle.version}-{bundle.target}"
    if staged.exists():
        shutil.rmtree(staged)
    for entry in changed:
        dest = staged / entry.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(bundle.read(entry.path))
        dest.chmod(int(entry.mode, 8))
    staged.mkdir(parents=True, exist_ok=True)
    (staged / "MANIFEST.json").write_bytes(bundle.manifest_bytes)
    (staged / "MANIFEST.json.minisig").write_bytes(bundle.signature_bytes)
    message = _run(prefix / "current" / "install.sh", ["install", "--staged", str(staged), "--prefix", str(prefix)],
                   device_env(bundle.target, repo), timeout)
    result = LocalResult("update", message, status(prefix, repo), time.monotonic() - started)
    return UpdateResult(result, len(changed), [e.path for e in changed])
