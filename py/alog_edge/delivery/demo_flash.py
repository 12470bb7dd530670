"""The demo's last step: its models in an x86_64 bundle (signed by a temporary demo key) flashed over SSH onto
a local test device (a real sshd, busybox-only PATH), then flashed again to show it is up to date; the recap."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from alog_edge.delivery import flash, fleet, ssh, sshdevice


def flash_demo(workdir: Path, model_dir: Path, repo: Path) -> tuple[str, dict]:
    from alog_edge.delivery import bundle, keys
    root = workdir / "ssh-device"
    if root.exists():
        for d in sshdevice._devices_in(root):
            sshdevice.stop(d)
        shutil.rmtree(root)
    with tempfile.TemporaryDirectory(prefix="alog-edge-demo-key.") as tmp:
        pair = keys.generate(Path(tmp) / "demo.key")
        built = bundle.build(bundle.BundleRequest("x86_64", key=pair.secret, models=model_dir, repo=repo,
                                                  out=workdir / "bundles" / "ssh-demo.tar.gz"))
        dev = sshdevice.create(root, "sshd")
        try:
            sshdevice.trust(dev)
            req = fleet.FleetRequest(built.path, [ssh.parse_host(dev.host)],
                                     ssh.SshOptions(known_hosts=dev.known_hosts, identity=dev.identity),
                                     prefix=str(dev.prefix), trust_key=pair.public, progress=False)
            first = fleet.flash_fleet(req)[0]
            again = fleet.flash_fleet(req)[0]
        finally:
            sshdevice.stop(dev)
    text = (f"Flash over SSH: {built.path.name} onto a local test device ({dev.kind} on {dev.host}, prefix "
            f"{dev.prefix}), twice:\n{flash.recap([first, again])}")
    return text, {"first": asdict(first), "again": asdict(again), "failed": first.failed or again.failed}
