"""The emulated aarch64 board (`invoke board`): real qemu-system-aarch64, Debian's arm64 kernel, dropbear
and busybox. One boot for the session (the `board` fixture of conftest); the reboot test runs last."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import paramiko
import pytest
import serial
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from alog_edge import native
from alog_edge.delivery import board as emulated
from board_support import free_port, put_tree, small_model_dir
from conftest import REPO, invoke

pytestmark = pytest.mark.board

SLICE_LINES = 400  # about 4 minutes of the 2-host demo log: DeepLog verdicts and 12 MSCRED windows
TOLERANCE = 1e-4   # aarch64 vs x86_64 onnxruntime (DESIGN: they differ in the last bits)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return small_model_dir(tmp_path_factory.mktemp("board-models"))


def ssh(ws: Path, command: str, stdin: bytes | None = None, timeout: float = 300) -> bytes:
    code, out, err = emulated.ssh_run(ws, command, stdin=stdin, timeout=timeout)
    assert code == 0, f"{command}: exit {code}: {err.decode(errors='replace')}"
    return out


def assert_one_line_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def qemu_processes() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "qemu-system-aarch64"], capture_output=True, text=True).stdout
    return sorted(int(pid) for pid in out.split())


# --- boot and access ----------------------------------------------------------------------------

def test_the_board_boots_an_aarch64_kernel_and_answers_ssh_with_the_workspace_key(board):
    ws, info = board
    assert info["state"] == "running" and info["ssh"].startswith("root@127.0.0.1:")
    assert info["serial"].startswith("socket://127.0.0.1:")
    status = invoke("board", "status", "-w", str(ws), "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["ssh"] == info["ssh"]
    port = info["ssh"].rsplit(":", 1)[1]
    # the stock OpenSSH client, host key checked strictly against the workspace's known_hosts
    proc = subprocess.run(["ssh", "-i", info["identity"], "-o", f"UserKnownHostsFile={info['known_hosts']}",
                           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                           "-p", port, "root@127.0.0.1", "uname -m; id -u; cat /proc/mounts"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    machine, uid, mounts = proc.stdout.split("\n", 2)
    assert (machine, uid) == ("aarch64", "0")
    assert any(line.split()[1:3] == ["/opt", "ext4"] for line in mounts.splitlines())


def test_a_password_or_an_unknown_key_is_refused(board):
    ws, info = board
    port = int(info["ssh"].rsplit(":", 1)[1])
    for credentials in ({"password": "root"},
                        {"pkey": paramiko.Ed25519Key.from_private_key(_openssh_key())}):
        client = paramiko.SSHClient()
        client.load_host_keys(info["known_hosts"])
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        with pytest.raises(paramiko.AuthenticationException):
            client.connect("127.0.0.1", port=port, username="root", look_for_keys=False, allow_agent=False,
                           timeout=30, **credentials)
        client.close()


def _openssh_key():
    import io

    from cryptography.hazmat.primitives import serialization
    pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                     serialization.NoEncryption())
    return io.StringIO(pem.decode())


def test_the_serial_console_is_a_root_shell_through_pyserial(board):
    _, info = board
    with serial.serial_for_url(info["serial"], timeout=1) as port:
        port.write(b"\nstty -echo\n")
        time.sleep(1)
        port.reset_input_buffer()
        port.write(b"echo serial-$((6*7)) $(id -u) $(uname -m) $(tty)\n")
        got = b""
        deadline = time.monotonic() + 30
        while b"/dev/" not in got and time.monotonic() < deadline:
            got += port.read(256)
    assert b"serial-42 0 aarch64 /dev/ttyAMA0" in got, got


# --- the aarch64 runtime on the board -----------------------------------------------------------

def _verdicts(jsonl: bytes) -> dict[tuple, dict]:
    rows = {}
    for raw in jsonl.splitlines():
        ev = json.loads(raw)
        key = (ev["model"], ev.get("session"), ev.get("line_no")) if ev["model"] == "deeplog" else \
            (ev["model"], ev.get("host"), ev.get("bucket"))
        rows[key] = ev
    return rows


def test_the_aarch64_runtime_passes_selftest_and_finds_what_x86_64_finds(board, models, tmp_path):
    ws, _ = board
    model_dir, test_log = models
    part = tmp_path / "slice.log"
    part.write_text("".join(test_log.read_text().splitlines(keepends=True)[:SLICE_LINES]))
    aarch64 = native.build_runtime(REPO, "aarch64", quiet=True)
    x86_64 = native.build_runtime(REPO, "x86_64", quiet=True) / "bin" / "alog-edge"
    put_tree(ws, aarch64, "/opt/test/runtime")
    put_tree(ws, model_dir, "/opt/test/models")
    ssh(ws, "cat > /opt/test/slice.log", stdin=part.read_bytes())
    code, out, err = emulated.ssh_run(ws, "/opt/test/runtime/bin/alog-edge selftest /opt/test/models", timeout=300)
    assert code == 0, err
    cases = [json.loads(line) for line in out.splitlines()]
    assert cases and all(c["pass"] for c in cases)
    board_out = ssh(ws, "/opt/test/runtime/bin/alog-edge run --all /opt/test/models /opt/test/slice.log")
    here = subprocess.run([str(x86_64), "run", "--all", str(model_dir), str(part)], capture_output=True, timeout=120)
    assert here.returncode == 0, here.stderr
    got, want = _verdicts(board_out), _verdicts(here.stdout)
    assert got.keys() == want.keys()
    assert sum(k[0] == "mscred" for k in want) > 0 and sum(e["anomalous"] for e in want.values()) > 0
    for key, w in want.items():
        g = got[key]
        assert g["anomalous"] == w["anomalous"] and g.get("reason") == w.get("reason"), key
        for field in ("probability", "score"):
            if w.get(field) is not None:
                assert abs(g[field] - w[field]) <= TOLERANCE, (key, field, g[field], w[field])


# --- lifecycle: one line each, nothing left running ---------------------------------------------

def test_a_second_start_stop_without_a_board_a_taken_port_and_a_missing_kernel_fail_in_one_line(board, tmp_path):
    ws, info = board
    before = qemu_processes()
    assert_one_line_error(invoke("board", "start", "-w", str(ws), "--ssh-port", str(free_port())),
                          "a board already runs")
    empty = tmp_path / "empty"
    assert_one_line_error(invoke("board", "stop", "-w", str(empty)), "no board runs")
    taken = info["ssh"].rsplit(":", 1)[1]
    assert_one_line_error(invoke("board", "start", "-w", str(empty), "--ssh-port", taken),
                          f"127.0.0.1:{taken} is already in use")
    assert_one_line_error(invoke("board", "start", "-w", str(empty), "--ssh-port", str(free_port()),
                                 "--kernel", str(tmp_path / "no-such-vmlinuz")), "kernel missing")
    assert qemu_processes() == before
    assert not (empty / "board" / "board.json").exists()


def test_a_stale_board_is_reported_and_cleared(tmp_path):
    stale = tmp_path / "board"
    stale.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (stale / "board.json").write_text(json.dumps({"pid": dead.pid, "ssh_port": 1, "serial_port": 2,
                                                  "memory": 1024, "started": time.time()}))
    proc = invoke("board", "status", "-w", str(tmp_path), "--json")
    assert proc.returncode == 3 and json.loads(proc.stdout)["state"] == "stale"
    proc = invoke("board", "stop", "-w", str(tmp_path))
    assert proc.returncode == 0 and "stale" in proc.stdout
    assert not (stale / "board.json").exists()


# --- last: a reboot ----------------------------------------------------------------------------

def _service_status(ws: Path) -> str:
    code, out, _ = emulated.ssh_run(ws, "sh /opt/alog-edge/current/service/alog-edge.init status")
    return out.decode().strip() if code in (0, 3) else f"exit {code}"


def test_opt_survives_a_reboot_and_the_service_of_the_installed_release_starts_at_boot(board, models):
    ws, _ = board
    model_dir, test_log = models
    token = os.urandom(8).hex()
    # a release laid out as install.sh leaves it, from what the runtime test copied
    ssh(ws, "P=/opt/alog-edge && rm -rf $P && mkdir -p $P/releases/v1/service $P/etc && "
            "cp -a /opt/test/runtime/bin /opt/test/runtime/lib $P/releases/v1/ && "
            "cp -a /opt/test/models $P/releases/v1/models && ln -s releases/v1 $P/current && "
            f"echo {token} > /opt/test/token && echo gone > /tmp/token")
    ssh(ws, "cat > /opt/alog-edge/releases/v1/service/alog-edge.init",
        stdin=(REPO / "deploy" / "alog-edge.init").read_bytes())
    ssh(ws, "cat > /opt/alog-edge/etc/alog-edge.conf",
        stdin=b"ALOG_EDGE_LOG=/var/log/fleet.log\nALOG_EDGE_HEALTH_SECONDS=1\n")
    emulated.reboot(ws)
    assert ssh(ws, "cat /opt/test/token").decode().strip() == token
    assert ssh(ws, "cat /tmp/token 2>/dev/null || echo none").decode().strip() == "none"
    assert _service_status(ws).startswith("running")
    # the service follows the configured log: lines appended to it come out as anomalies
    lines = "".join(test_log.read_text().splitlines(keepends=True)[:SLICE_LINES])
    ssh(ws, "cat >> /var/log/fleet.log", stdin=lines.encode())
    deadline, found = time.monotonic() + 120, b""
    while time.monotonic() < deadline and b'"deeplog"' not in found:
        time.sleep(2)
        found = ssh(ws, "cat /opt/alog-edge/var/anomalies.jsonl 2>/dev/null || true")
    events = [json.loads(line) for line in found.splitlines()]
    assert events and all(e["anomalous"] for e in events)
