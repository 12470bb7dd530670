"""`invoke flash --serial`: real bundles onto a busybox pty device through the paced relay, with the same driver,
trust rule, delta and install.sh as over SSH."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from alog_edge.delivery import flash, serial_bench
from alog_edge.delivery.serial_device import SerialTestDevice
from alog_edge.delivery.serial_transport import SerialTransport
from alog_edge.delivery.flash_soak import check_device
from conftest import invoke

FAST = 2_000_000
USER, PASSWORD = "field", "pw for serial"


@pytest.fixture
def device(tmp_path):
    with SerialTestDevice(tmp_path / "device", FAST, user=USER, password=PASSWORD) as dev:
        yield dev


def _prefix(dev: SerialTestDevice) -> Path:
    return dev.root / "opt" / "alog-edge"


def test_first_install_then_a_model_only_update_then_up_to_date(tmp_path, ssh_bundles, monkeypatch):
    monkeypatch.setenv("ALOG_EDGE_SERIAL_PASSWORD", PASSWORD)
    first, second = ssh_bundles.first, ssh_bundles.second
    with SerialTestDevice(tmp_path / "device", serial_bench.FACTORY_BAUD, user=USER, password=PASSWORD) as device:
        tr = SerialTransport(device.url, serial_bench.FACTORY_BAUD, user=USER, compress="gz",
                             workdir=str(device.root / "agent"))
        try:
            res = flash.flash(tr, first, str(_prefix(device)), trust_key=ssh_bundles.public_key)
        finally:
            tr.close()
        assert (res.result, res.kind, res.version_after) == ("ok", "first install", first.version)
        assert check_device(_prefix(device), {first.version}) == first.version
        assert device.fault(f"baud {FAST}") == "ok"

        run = invoke("flash", "--bundle", str(second.path), "--serial", device.url, "--baud", str(FAST), "--user",
                     USER, "--prefix", str(_prefix(device)), "--json")
        assert run.returncode == 0, run.stderr
        res = json.loads(run.stdout)
        assert (res["result"], res["kind"], res["version_after"]) == ("ok", "model-only", second.version)
        sent = {f["path"] for f in res["files"]}
        assert sent and all(p.startswith("models/") or p.startswith("MANIFEST.json") for p in sent)
        assert PASSWORD not in run.stdout + run.stderr
        assert check_device(_prefix(device), {second.version}) == second.version

        again = invoke("flash", "--bundle", str(second.path), "--serial", device.url, "--baud", str(FAST), "--user",
                       USER, "--prefix", str(_prefix(device)))
        assert again.returncode == 0, again.stderr
        assert "up to date" in again.stdout

        # faults on the line during a flash back to the first bundle: uploads, install.sh, status
        soaked = serial_bench.flash_soak([first, second], ssh_bundles.public_key, runs=1, baud=FAST, seed=2, gap=1.0,
                                         bar=False, device=device, user=USER)
        assert soaked.runs == 1 and soaked.faults >= 1
        assert soaked.broken == [], soaked.report()
        assert soaked.old + soaked.new == 1
        assert all(s.startswith("error: ") and "\n" not in s for s in soaked.stopped)


def test_a_bundle_the_device_does_not_trust_is_refused_with_one_line(device, ssh_bundles, monkeypatch, tmp_path):
    monkeypatch.setenv("ALOG_EDGE_SERIAL_PASSWORD", PASSWORD)
    run = invoke("flash", "--bundle", str(ssh_bundles.first.path), "--serial", device.url, "--baud", str(FAST),
                 "--user", USER, "--prefix", str(_prefix(device)))
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith("error: ")
    assert "--trust-key" in run.stderr
    assert not (_prefix(device) / "current").exists()


def test_cli_errors_are_one_line(ssh_bundles, tmp_path):
    nowhere = invoke("flash", "--bundle", str(ssh_bundles.first.path), "--serial", "/dev/ttyNOPE0")
    assert nowhere.returncode == 1
    assert nowhere.stderr.strip() == ("error: /dev/ttyNOPE0: cannot open the serial port: [Errno 2] could not open "
                                      "port /dev/ttyNOPE0: [Errno 2] No such file or directory: '/dev/ttyNOPE0'")
    bad = invoke("flash", "--bundle", str(ssh_bundles.first.path), "--serial", "socket://127.0.0.1:1",
                 "--encoding", "7bit")
    assert bad.returncode == 1 and bad.stderr == "error: --encoding: must be one of auto, 8bit, base64 (got '7bit')\n"
