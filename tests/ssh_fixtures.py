"""Fixtures of the SSH flash tests (loaded by conftest.py): local sshd/dropbear devices started and stopped
by the tests, and the signed bundles they are flashed with."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from alog_edge.delivery import bundle, fleet, flash, ssh, sshdevice

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bundles:
    first: bundle.Bundle
    second: bundle.Bundle        # the first's runtime with other model files: a model-only update
    public_key: Path


@pytest.fixture(scope="session")
def ssh_bundles(x86_bundles, signing_key, model_dirs, runtime_x86_64, tmp_path_factory) -> Bundles:
    if "not implemented yet" in (REPO / "deploy" / "install.sh").read_text():
        # TEMPORARY until wip-bundle's installer lands: bundles carrying tests/standin_install.sh
        fake = tmp_path_factory.mktemp("standin-repo")
        shutil.copytree(REPO / "deploy", fake / "deploy")
        shutil.copy(REPO / "tests" / "standin_install.sh", fake / "deploy" / "install.sh")
        (fake / "runtime" / "include").mkdir(parents=True)
        shutil.copy(REPO / "runtime" / "include" / "alog_edge.h", fake / "runtime" / "include")
        out = tmp_path_factory.mktemp("standin-bundles")
        built = [bundle.build(bundle.BundleRequest("x86_64", key=signing_key.secret, models=m, runtime=runtime_x86_64,
                                                   out=out / f"{m.name}.tar.gz", repo=fake))
                 for m in (model_dirs.first, model_dirs.second)]
        x86_bundles = built
    first, second = (bundle.open_bundle(b.path) for b in x86_bundles)
    return Bundles(first, second, signing_key.public)


class Devices:
    """Starts devices in a temporary folder; the fixture stops every one, whatever the test did."""

    def __init__(self, root: Path) -> None:
        self.root, self.started = root, []

    def start(self, kind: str = "sshd", trusted: bool = True) -> sshdevice.Device:
        dev = sshdevice.create(self.root / f"{kind}-{len(self.started)}", kind)
        self.started.append(dev)
        if trusted:
            sshdevice.trust(dev)
        return dev

    def fleet(self, kinds: list[str]) -> list[sshdevice.Device]:
        devs = sshdevice.start_fleet(self.root / f"fleet-{len(self.started)}", kinds)
        self.started += devs
        return devs

    def stop_all(self) -> None:
        for dev in self.started:
            sshdevice.stop(dev)


@pytest.fixture
def devices(tmp_path):
    d = Devices(tmp_path / "devices")
    try:
        yield d
    finally:
        d.stop_all()


def options(dev: sshdevice.Device, **kw) -> ssh.SshOptions:
    return ssh.SshOptions(known_hosts=kw.pop("known_hosts", dev.known_hosts), identity=kw.pop("identity", dev.identity),
                          **kw)


def flash_one(dev: sshdevice.Device, b, trust_key: Path | None = None, **kw) -> flash.FlashResult:
    """Flash in-process through the same code as `invoke flash` (one host)."""
    host = ssh.parse_host(kw.pop("host", dev.host))
    req = fleet.FleetRequest(b.path, [host], kw.pop("opts", None) or options(dev),
                             prefix=str(dev.prefix), trust_key=trust_key, progress=False, **kw)
    [res] = fleet.flash_fleet(req)
    return res


def flash_args(dev: sshdevice.Device, b, *extra: str, known_hosts: Path | None = None,
               identity: Path | None = None) -> list[str]:
    return ["flash", "--bundle", str(b.path), "--host", dev.host, "--identity", str(identity or dev.identity),
            "--known-hosts", str(known_hosts or dev.known_hosts), "--prefix", str(dev.prefix), *extra]


def current_version(dev: sshdevice.Device) -> str | None:
    cur = dev.prefix / "current"
    return Path(cur.readlink()).name if cur.is_symlink() else None


def nothing_installed(dev: sshdevice.Device) -> bool:
    incoming = dev.prefix / "incoming"
    return (not (dev.prefix / "current").exists() and not (dev.prefix / "releases").exists()
            and (not incoming.exists() or not any(incoming.rglob("*"))))


def copy_without_trust(dev: sshdevice.Device, dest: Path) -> Path:
    shutil.copy(dev.known_hosts, dest)
    return dest
