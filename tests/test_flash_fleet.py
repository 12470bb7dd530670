"""A fleet of 20 local devices, sshd and dropbear mixed, flashed with --parallel 10: every device gets its own
result and row in the recap, a switched-off device fails alone, the exit status says so."""
from __future__ import annotations

import json

from conftest import invoke
from ssh_fixtures import current_version

from alog_edge.delivery import sshdevice


def test_twenty_devices_ten_at_a_time_one_switched_off(devices, ssh_bundles, tmp_path):
    fleet = devices.fleet(["sshd", "dropbear"] * 10)
    dead = sshdevice.free_port()
    hosts = tmp_path / "hosts"
    hosts.write_text((fleet[0].root.parent / "hosts").read_text() + f"root@127.0.0.1:{dead}  # switched off\n")
    common = ["--hosts", str(hosts), "--identity", str(fleet[0].identity), "--known-hosts",
              str(fleet[0].root.parent / "known_hosts"), "--timeout", "120"]
    res = invoke("flash", "--bundle", str(ssh_bundles.first.path), "--trust-key", str(ssh_bundles.public_key),
                 "--parallel", "10", *common)
    assert res.returncode == 1, res.stderr
    table = res.stdout.splitlines()
    assert table[0].split()[:3] == ["HOST", "RESULT", "KIND"]
    rows = [line.split() for line in table[1:22]]
    assert [r[0] for r in rows] == [d.host for d in fleet] + [f"root@127.0.0.1:{dead}"]
    assert all(r[1:3] == ["ok", "first"] for r in rows[:20]) and rows[20][1] == "failed"
    assert "20 of 21 hosts ok, 1 failed" in res.stdout
    assert all(current_version(d) == ssh_bundles.first.version for d in fleet)

    again = invoke("flash", "--bundle", str(ssh_bundles.second.path), "--dry-run", "--json", *common)
    lines = [json.loads(x) for x in again.stdout.splitlines()]
    assert again.returncode == 1 and len(lines) == 21
    by_host = {x["host"]: x for x in lines}
    assert all(by_host[d.host]["result"] == "dry-run" and by_host[d.host]["kind"] == "model-only" for d in fleet)
    assert all(current_version(d) == ssh_bundles.first.version for d in fleet)
