"""The emulated aarch64 board (`invoke board`): real qemu-system-aarch64, Debian's arm64 kernel, dropbear
and busybox. One boot for the session (the `board` fixture of conftest); the reboot test runs last."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import paramiko
import pytest
import serial
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from alog_edge.delivery import board as emulated, board_demo
from board_support import free_port, small_model_dir
from bundle_fixtures import make_bundle
from conftest import REPO, invoke

pytestmark = pytest.mark.board

SLICE_LINES = 300  # about 3 minutes of the 2-host demo log: DeepLog verdicts and a few MSCRED windows
SERIAL_BAUD = 921600  # a real UART rate; qemu's socket carries it with flow control
TOLERANCE = 1e-4   # aarch64 vs x86_64 onnxruntime (DESIGN: they differ in the last bits)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(workspace with the checkpoints, model directory, held-out log)."""
    ws = tmp_path_factory.mktemp("board-models")
    return (ws, *small_model_dir(ws))


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


def test_board_console_is_an_interactive_terminal_on_the_serial_line(board):
    import pty
    import select
    import sys

    ws, _ = board
    pid, fd = pty.fork()
    if pid == 0:  # the child: `invoke board console` on a terminal, as a user types it
        os.execv(sys.executable, [sys.executable, "-m", "invoke", "--search-root", str(REPO), "board", "console",
                                  "-w", str(ws)])
    got = b""
    try:
        time.sleep(3)
        os.write(fd, b"echo console-$((40+2))\r")
        deadline = time.monotonic() + 30
        while b"console-42\r" not in got and time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                got += os.read(fd, 4096)
        os.write(fd, b"\x1d")  # Ctrl-]: miniterm's exit
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
            time.sleep(0.2)
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    assert b"console-42\r" in got, got


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


# --- flashing the board: SSH, serial, a rollback, a reboot (in this order) -------------------------

PREFIX = "/opt/alog-edge"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, models, signing_key, runtime_aarch64):
    """aarch64 bundles: the first release, a model-only update (DeepLog re-exported at opset 17), and a
    signed update whose selftest fails on the device (its DeepLog model is cut short)."""
    ws, model_dir, _ = models
    out = tmp_path_factory.mktemp("board-bundles")
    update = board_demo.model_only_update(model_dir, ws, out / "models-update")
    broken = shutil.copytree(update, out / "models-broken")
    (broken / "deeplog.onnx").write_bytes((update / "deeplog.onnx").read_bytes()[:4096])
    return tuple(make_bundle(out, m, signing_key.secret, "aarch64", runtime=runtime_aarch64)
                 for m in (model_dir, update, broken))


def device_status(ws: Path) -> dict:
    return json.loads(ssh(ws, f"sh {PREFIX}/current/install.sh status --prefix {PREFIX}"))


def test_an_aarch64_bundle_flashed_over_ssh_installs_and_starts_its_service(board, bundles, signing_key):
    ws, info = board
    first = bundles[0]
    ssh(ws, f"rm -rf {PREFIX} && mkdir -p {PREFIX}/etc && printf 'ALOG_EDGE_LOG=/var/log/fleet.log\\n"
            f"ALOG_EDGE_HEALTH_SECONDS=1\\n' > {PREFIX}/etc/alog-edge.conf && touch /var/log/fleet.log")
    proc = invoke("flash", str(first.path), "--host", info["ssh"], "--identity", info["identity"],
                  "--known-hosts", info["known_hosts"], "--trust-key", str(signing_key.public), "--json",
                  timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["result"] == "ok" and result["kind"] == "first install", result
    status = device_status(ws)
    assert status["current"] == first.version and status["target"] == "aarch64"
    assert status["history"][-1]["selftest"] is True  # install.sh ran the aarch64 `alog-edge selftest` there
    assert status["service"] == "running"


def _verdicts(jsonl: bytes) -> dict[tuple, dict]:
    return board_demo._verdicts(jsonl)


def test_the_flashed_runtime_finds_what_x86_64_finds_on_the_same_lines(board, models, runtime_x86_64, tmp_path):
    ws, _ = board
    _, _, test_log = models
    part = tmp_path / "slice.log"
    part.write_text("".join(test_log.read_text().splitlines(keepends=True)[:SLICE_LINES]))
    ssh(ws, "cat > /tmp/slice.log", stdin=part.read_bytes())
    models_there = ssh(ws, f"cd {PREFIX}/current/models && sha256sum deeplog.onnx mscred.onnx golden.json")
    board_out = ssh(ws, f"{PREFIX}/current/bin/alog-edge run --all {PREFIX}/current/models /tmp/slice.log")
    here = subprocess.run([str(runtime_x86_64 / "bin" / "alog-edge"), "run", "--all", str(models[1]), str(part)],
                          capture_output=True, timeout=120)
    assert here.returncode == 0, here.stderr
    local = subprocess.run(["sha256sum", "deeplog.onnx", "mscred.onnx", "golden.json"], cwd=models[1],
                           capture_output=True, check=True).stdout
    assert models_there == local
    got, want = _verdicts(board_out), _verdicts(here.stdout)
    assert got.keys() == want.keys()
    assert sum(k[0] == "mscred" for k in want) > 0 and sum(e["anomalous"] for e in want.values()) > 0
    for key, w in want.items():
        g = got[key]
        assert g["anomalous"] == w["anomalous"] and g.get("reason") == w.get("reason"), key
        for field in ("probability", "score"):
            if w.get(field) is not None:
                assert abs(g[field] - w[field]) <= TOLERANCE, (key, field, g[field], w[field])


def test_a_model_only_update_goes_over_the_serial_console(board, bundles):
    ws, info = board
    first, update, _ = bundles
    proc = invoke("flash", str(update.path), "--serial", info["serial"], "--baud", str(SERIAL_BAUD), "--json",
                  timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["kind"] == "model-only" and result["version_after"] == update.version
    before = {e.path: e.sha256 for e in first.files}
    changed = {e.path for e in update.files if before.get(e.path) != e.sha256}
    assert changed == {"models/deeplog.onnx", "models/deeplog.onnx.meta.json"}
    assert {f["path"] for f in result["files"]} == changed | {"MANIFEST.json", "MANIFEST.json.minisig"}
    status = device_status(ws)
    assert status["current"] == update.version and status["previous"] == first.version
    assert status["history"][-1]["selftest"] is True and status["service"] == "running"


def test_a_bundle_whose_selftest_fails_on_the_board_is_rolled_back(board, bundles):
    ws, info = board
    _, update, broken = bundles
    proc = invoke("flash", str(broken.path), "--host", info["ssh"], "--identity", info["identity"],
                  "--known-hosts", info["known_hosts"], timeout=600)
    assert proc.returncode != 0
    assert "selftest" in proc.stderr.lower(), proc.stderr
    status = device_status(ws)
    assert status["current"] == update.version
    assert status["history"][-1]["version"] == broken.version and status["history"][-1]["result"] != "ok"
    assert ssh(ws, f"sh {PREFIX}/current/service/alog-edge.init status").decode().startswith("running")


# --- last: a reboot ----------------------------------------------------------------------------

def test_a_reboot_keeps_opt_and_the_release_and_restarts_the_service(board, bundles, models):
    ws, _ = board
    _, update, _ = bundles
    _, _, test_log = models
    token = os.urandom(8).hex()
    ssh(ws, f"echo {token} > /opt/token && echo gone > /tmp/token")
    emulated.reboot(ws)
    assert ssh(ws, "cat /opt/token").decode().strip() == token
    assert ssh(ws, "cat /tmp/token 2>/dev/null || echo none").decode().strip() == "none"
    assert b"recovery" not in ssh(ws, "dmesg | grep 'EXT4-fs (vda)'")  # /opt was released cleanly
    assert device_status(ws)["current"] == update.version
    assert ssh(ws, f"sh {PREFIX}/current/service/alog-edge.init status").decode().startswith("running")
    # the restarted service follows the configured log: lines appended to it come out as anomalies
    out = f"{PREFIX}/var/anomalies.jsonl"
    seen = int(ssh(ws, f"touch {out} && wc -c < {out}"))
    lines = "".join(test_log.read_text().splitlines(keepends=True)[:SLICE_LINES // 3])
    ssh(ws, "cat >> /var/log/fleet.log", stdin=lines.encode())
    deadline, found = time.monotonic() + 120, b""
    while time.monotonic() < deadline and b'"deeplog"' not in found:
        time.sleep(2)
        found = ssh(ws, f"tail -c +{seen + 1} {out}")
    events = [json.loads(line) for line in found.splitlines()]
    assert events and all(e["anomalous"] and e["line"] in lines for e in events)
