"""The fault soak at a small count (`invoke soak --transport ssh --runs 200` runs the same code): the line
cut at a random byte, the server killed, install.sh killed; after each the device holds the old or the new
release, complete and passing selftest, and the next flash completes resending at most one chunk."""
from __future__ import annotations

from ssh_fixtures import flash_one

from alog_edge.delivery import flash, flash_soak as soak, relay, ssh, sshdevice


def test_an_upload_cut_mid_file_resumes_from_the_devices_partial_file(devices, ssh_bundles):
    dev = devices.start("sshd")
    assert flash_one(dev, ssh_bundles.first, trust_key=ssh_bundles.public_key).result == "ok"
    biggest = max((e for e in ssh_bundles.second.files if e.path.startswith("models/")), key=lambda e: e.size)
    r = relay.CuttingRelay(dev.port)
    try:
        sshdevice.trust_alias(dev, r.port)
        r.arm(20_000 + biggest.size // 2)  # past the handshake and the probes, inside the model file
        opts = ssh.SshOptions(known_hosts=dev.known_hosts, identity=dev.identity)
        cut = flash_one(dev, ssh_bundles.second, opts=opts, host=f"{dev.user}@127.0.0.1:{r.port}")
    finally:
        r.close()
    assert cut.failed and "connection" in cut.error
    parts = list((dev.prefix / "incoming").rglob(biggest.path + ".part"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < biggest.size
    arrived = parts[0].stat().st_size
    assert soak.check_device(dev.prefix, {ssh_bundles.first.version}) == ssh_bundles.first.version

    res = flash_one(dev, ssh_bundles.second)
    assert res.result == "ok", res.error
    sent = {f["path"]: f["sent"] for f in res.files}
    assert biggest.size - arrived <= sent[biggest.path] <= biggest.size - arrived + flash.CHUNK
    assert soak.check_device(dev.prefix, {ssh_bundles.second.version}) == ssh_bundles.second.version


def test_faults_at_random_points_never_break_the_device(devices, ssh_bundles):
    pair = [devices.start("sshd"), devices.start("dropbear")]
    for dev in pair:
        assert flash_one(dev, ssh_bundles.first, trust_key=ssh_bundles.public_key).result == "ok"
    report = soak.run_faults(pair, [ssh_bundles.first, ssh_bundles.second], list(soak.FAULTS), runs=2, seed=3,
                             progress=False)
    print(report.text())
    assert report.failures == []
    assert {k: v.runs for k, v in report.stats.items()} == {f: 2 for f in soak.FAULTS}
    assert all(s.recovered == s.runs and s.old + s.new == s.runs for s in report.stats.values())
    assert sum(s.landed for s in report.stats.values()) >= 3
    assert max(s.max_resent for s in report.stats.values()) <= flash.CHUNK
