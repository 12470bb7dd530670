"""The demo's last step: its x86_64 bundle flashed over SSH onto a local test device (a real sshd, busybox-only
PATH), then flashed again to show it is up to date; the recap of both."""
from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from alog_edge.delivery import flash, fleet, ssh, sshdevice


def flash_demo(workdir: Path, model_dir: Path, repo: Path, bundle_path: Path | None = None) -> tuple[str, dict]:
    from alog_edge.delivery import bundle, keys
    if bundle_path is None:
        built = bundle.build(bundle.BundleRequest("x86_64", models=model_dir, out=workdir / "dist" /
                                                  "alog-edge-demo-x86_64.tar.gz", repo=repo))
        bundle_path, key = built.path, built.key
    else:
        key = keys.default_key_path()
    root = workdir / "device"
    if root.exists():
        for d in sshdevice._devices_in(root):
            sshdevice.stop(d)
        shutil.rmtree(root)
    dev = sshdevice.create(root, "sshd")
    try:
        sshdevice.trust(dev)
        req = fleet.FleetRequest(bundle_path, [ssh.parse_host(dev.host)],
                                 ssh.SshOptions(known_hosts=dev.known_hosts, identity=dev.identity),
                                 prefix=str(dev.prefix), trust_key=keys.public_path(key), progress=False)
        first = fleet.flash_fleet(req)[0]
        again = fleet.flash_fleet(req)[0]
    finally:
        sshdevice.stop(dev)
    text = (f"flash over SSH to a local test device ({dev.kind} on {dev.host}, prefix {dev.prefix}):\n"
            f"{first.summary()}\n{again.summary()}\n{flash.recap([first, again])}")
    return text, {"first": asdict(first), "again": asdict(again), "failed": first.failed or again.failed}
