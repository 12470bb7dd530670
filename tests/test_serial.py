"""Serial flashing on a real busybox ash on a pseudo-terminal (busybox-only PATH) behind the paced fault relay.
The suite runs the line fast (FAST baud); the 115200 figures come from `invoke serial-bench` / `invoke soak`."""
from __future__ import annotations

import os
import random
import socket
import threading
import time
import tty
from pathlib import Path

import pytest

from alog_edge.delivery import serial_bench
from alog_edge.delivery.serial_device import SerialTestDevice
from alog_edge.delivery.serial_relay import Relay
from alog_edge.delivery.serial_transport import SerialTransport
from alog_edge.errors import AlogError
from conftest import invoke

FAST = 2_000_000  # 200 kB/s through the relay
USER, PASSWORD = "field", "s3cret pass"


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """One console with a login prompt, shared by the tests of this module (each opens its own session)."""
    with SerialTestDevice(tmp_path_factory.mktemp("serial-device"), FAST, user=USER, password=PASSWORD) as dev:
        yield dev


@pytest.fixture(scope="module")
def session(device):
    """One logged-in session for the tests that do not need their own (a login costs seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALOG_EDGE_SERIAL_PASSWORD", PASSWORD)
        tr = SerialTransport(device.url, FAST, user=USER, workdir=str(device.root / "agent"))
    yield tr
    tr.close()


@pytest.fixture
def fresh(tmp_path):
    """A console of its own, at its login prompt (cheap: no session yet)."""
    with SerialTestDevice(tmp_path / "fresh", FAST, user=USER, password=PASSWORD) as dev:
        yield dev


def _remote(device, name: str) -> Path:
    return device.root / "incoming" / name


def test_the_relay_paces_each_direction_at_ten_bits_per_byte():
    master, slave = os.openpty()
    tty.setraw(slave)
    relay = Relay(master, 57600)  # 5760 bytes/s
    try:
        with socket.create_connection(("127.0.0.1", relay.port)) as client:
            payload = bytes(range(256)) * 27  # 6912 bytes: 1.2 s of line
            t0 = time.monotonic()
            client.sendall(payload)
            got = b""
            while len(got) < len(payload):
                got += os.read(slave, 65536)
            down = time.monotonic() - t0
            assert got == payload  # 8-bit clean when no fault is asked for
            t0 = time.monotonic()
            os.write(slave, payload[:2880])  # 0.5 s of line
            back = b""
            while len(back) < 2880:
                back += client.recv(65536)
            up = time.monotonic() - t0
        assert back == payload[:2880]
        assert down >= 0.97 * len(payload) / 5760, down  # never faster than the line
        assert up >= 0.97 * 2880 / 5760, up
    finally:
        relay.close()
        os.close(master)
        os.close(slave)


def test_the_relay_injects_the_faults_it_is_asked_for():
    master, slave = os.openpty()
    tty.setraw(slave)
    relay = Relay(master, FAST, seed=3)
    try:
        with socket.create_connection(("127.0.0.1", relay.port)) as client:
            def through(data: bytes, expect: int) -> bytes:
                client.sendall(data)
                got, end = b"", time.monotonic() + 5
                while len(got) < expect and time.monotonic() < end:
                    got += os.read(slave, 65536)
                return got
            assert relay.command("lose 10") == "ok"
            assert through(bytes(100), 90) == bytes(90)
            assert relay.command("dup 5") == "ok"
            assert through(b"abcdefgh", 13) == b"aabbccddeefgh"
            assert relay.command("flip 1") == "ok"
            got = through(bytes(200), 200)
            assert sum(bin(b).count("1") for b in got) == 1
            assert relay.command("clean off") == "ok"
            assert through(bytes([0xFF, 0x80]), 2) == bytes([0x7F, 0x00])
            assert relay.command("clean on") == "ok"
            assert relay.command("stall 0.6") == "ok"
            t0 = time.monotonic()
            assert through(b"x", 1) == b"x" and time.monotonic() - t0 >= 0.5
            assert relay.command("drop") == "ok"
            client.settimeout(5)
            assert client.recv(10) == b""  # the line is gone
        assert relay.command("flip x").startswith("error:")
    finally:
        relay.close()
        os.close(master)
        os.close(slave)


def test_a_login_session_runs_commands_and_reads_files(session, device):
    assert session.encoding == "8bit"  # the probe found the pty line clean
    rc, out, err = session.run("echo out; echo err >&2; printf 'x%.0s' 1 2 3; exit 7", 30)
    assert (rc, out, err) == (7, b"out\nxxx", b"err\n")
    (device.root / "blob").write_bytes(bytes(range(256)) * 10)
    assert session.read_file(str(device.root / "blob")) == bytes(range(256)) * 10
    assert session.read_file(str(device.root / "missing")) is None
    rc, out, _ = session.run("echo $PATH", 30)  # the device has busybox applets only
    assert out.decode().strip() == str(device.root / "bin")


@pytest.mark.parametrize("encoding", ["8bit", "base64"])
def test_every_byte_value_arrives_intact_in_both_framings(fresh, monkeypatch, encoding):
    monkeypatch.setenv("ALOG_EDGE_SERIAL_PASSWORD", PASSWORD)
    tr = SerialTransport(fresh.url, FAST, user=USER, encoding=encoding, chunk_size=4096,
                         workdir=str(fresh.root / "agent"))
    try:
        data = bytes(range(256)) + random.Random(1).randbytes(60001)
        seen = []
        wire = tr.send_file(data, str(_remote(fresh, f"bytes-{encoding}")), seen.append)
    finally:
        tr.close()
    assert _remote(fresh, f"bytes-{encoding}").read_bytes() == data
    assert not _remote(fresh, f"bytes-{encoding}.part").exists()
    assert sum(seen) == len(data)
    assert tr.senders[-1].wire.method == "none"  # random data: compression would not pay
    assert wire >= (len(data) * 4 // 3 if encoding == "base64" else len(data))


def test_a_seven_bit_line_gets_base64_framing(fresh, monkeypatch):
    monkeypatch.setenv("ALOG_EDGE_SERIAL_PASSWORD", PASSWORD)
    assert fresh.fault("clean off") == "ok"
    try:
        tr = SerialTransport(fresh.url, FAST, user=USER, workdir=str(fresh.root / "agent"))
        try:
            data = bytes(range(256)) * 40
            tr.send_file(data, str(_remote(fresh, "seven")), None)
        finally:
            tr.close()
    finally:
        fresh.fault("clean on")
    assert tr.encoding == "base64"
    assert _remote(fresh, "seven").read_bytes() == data


def test_text_is_compressed_with_busybox_unxz(session, device):
    data = "".join(f"{i} template <*> value {i % 7}\n" for i in range(20000)).encode()
    wire = session.send_file(data, str(_remote(device, "text")), None)
    assert session.senders[-1].wire.method.startswith("xz")
    assert wire < len(data) * 0.2
    assert _remote(device, "text").read_bytes() == data


def test_a_dropped_line_resumes_from_the_verified_length(session, device):
    data = random.Random(2).randbytes(600_000)  # 3 s of line
    drops = session.line_drops
    timer = threading.Timer(1.2, device.fault, args=("drop",))
    timer.start()
    try:
        session.send_file(data, str(_remote(device, "resumed")), None)
    finally:
        timer.cancel()
    stats = session.senders[-1].stats
    assert session.line_drops == drops + 1
    assert stats.resumed_from and stats.resumed_from[0] > 0
    assert stats.max_resent_chunks <= 1
    assert _remote(device, "resumed").read_bytes() == data


def test_a_partial_file_of_other_content_starts_over(session, device):
    data = random.Random(3).randbytes(100_000)
    part = _remote(device, "other.part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(random.Random(4).randbytes(50_000))
    session.send_file(data, str(_remote(device, "other")), None)
    assert session.senders[-1].stats.resumed_from == []
    assert _remote(device, "other").read_bytes() == data


def test_a_command_runs_once_even_when_the_line_drops_during_it(session, device):
    log = device.root / "ran-once"
    drops = session.line_drops
    timer = threading.Timer(0.8, device.fault, args=("drop",))
    timer.start()
    rc, out, _ = session.run(f"echo run >> {log}; sleep 2; echo finished", 60)
    timer.join()
    assert session.line_drops == drops + 1
    assert (rc, out) == (0, b"finished\n")
    assert log.read_text() == "run\n"


def test_faults_never_corrupt_a_file(tmp_path):
    result = serial_bench.soak(6, FAST, seed=5, file_bytes=300_000, gap=0.5, bar=False, root=tmp_path)
    assert result.faults == 6
    assert result.corrupted == 0, result.report()
    assert result.completed >= 1 and result.ok, result.report()
    assert all(s.startswith("error: ") and "\n" not in s for s in result.stopped)


def test_a_wrong_password_is_one_error(fresh, monkeypatch):
    monkeypatch.setenv("ALOG_EDGE_SERIAL_PASSWORD", "wrong")
    with pytest.raises(AlogError, match="login incorrect for user 'field'"):
        SerialTransport(fresh.url, FAST, user=USER, workdir=str(fresh.root / "agent"))


def test_a_console_that_asks_for_a_login_needs_a_user(fresh):
    with pytest.raises(AlogError, match="pass --user"):
        SerialTransport(fresh.url, FAST, workdir=str(fresh.root / "agent"))


def test_a_device_without_a_needed_applet_is_one_error(tmp_path):
    with SerialTestDevice(tmp_path / "dev", FAST, without=("sha256sum",)) as dev:
        with pytest.raises(AlogError, match="lacks sha256sum"):
            SerialTransport(dev.url, FAST, workdir=str(tmp_path / "agent"))


def test_a_port_that_does_not_exist_is_one_error():
    with pytest.raises(AlogError, match="cannot open the serial port"):
        SerialTransport("/dev/ttyDOESNOTEXIST", FAST)


def test_the_device_task_starts_injects_and_stops(tmp_path):
    d = str(tmp_path / "dev")
    start = invoke("device-serial", "start", "--dir", d, "--baud", str(FAST))
    try:
        assert start.returncode == 0, start.stderr
        assert "socket://127.0.0.1:" in start.stdout
        fault = invoke("device-serial", "fault", "--dir", d, "--command", "stall 0.1")
        assert (fault.returncode, fault.stdout.strip()) == (0, "ok")
        bad = invoke("device-serial", "fault", "--dir", d, "--command", "melt")
        assert bad.returncode == 1 and bad.stderr.strip().startswith("error: --command: unknown command")
    finally:
        stop = invoke("device-serial", "stop", "--dir", d)
    assert stop.returncode == 0 and stop.stdout.strip() == "stopped"


def test_the_bench_task_prints_the_throughput_table(tmp_path):
    sample = tmp_path / "sample.txt"
    sample.write_bytes(b"".join(b"line %d of a log\n" % i for i in range(20000)))
    run = invoke("serial-bench", "--baud", str(FAST), "--random-seconds", "1", "--sample", str(sample), "--json")
    assert run.returncode == 0, run.stderr
    import json
    rows = [json.loads(x) for x in run.stdout.splitlines()]
    assert [r["case"] for r in rows] == ["random, 8-bit", "random, base64", "sample.txt"]
    assert [r["encoding"] for r in rows] == ["8bit", "base64", "8bit"]
    assert rows[2]["compression"].startswith("xz") and rows[2]["wire_bytes"] < rows[2]["bytes"] / 4
    assert all(r["share"] > 0 for r in rows)
