"""`invoke board`: an emulated aarch64 device on this machine (qemu-system-aarch64, `-M virt`).

Everything of a board lives in `<workspace>/board/`:
  board.json      the running board: qemu's pid, ports, paths (absent when no board runs)
  id_ed25519      the key that logs in as root (and .pub); the only way in: dropbear runs with -s
  host_key        the board's dropbear host key; `known_hosts` records it for the SSH port
  opt.img         an ext4 disk image mounted on /opt, so installs survive reboots and restarts
  initrd.img      the base initramfs (.tools/board/) plus this workspace's keys
  serial.log      everything the serial console carried; qemu.log: qemu's own messages

The SSH port is forwarded by qemu's user-mode network to the board's dropbear; the serial console
(a root login shell) is a TCP socket on 127.0.0.1, reached with pyserial as `socket://127.0.0.1:PORT`.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from ..errors import AlogError
from . import board_image, board_keys
from .board_state import (HOST, QEMU, USER, BoardError, BoardFiles, BoardState, clear_state, files_of,  # noqa: F401
                          is_our_qemu, read_state, write_state)

log = logging.getLogger(__name__)
logging.getLogger("paramiko").setLevel(logging.CRITICAL)  # every refused probe while booting is expected

OPT_IMAGE_BYTES = 512 << 20
BOOT_TIMEOUT = 300.0  # TCG on a busy 2-core machine; a quiet one boots to SSH in well under a minute
STOP_TIMEOUT = 60.0


def _build_initrd(repo: Path, files: BoardFiles) -> None:
    board_image.workspace_initrd(repo, files.initrd, {
        "etc/dropbear/dropbear_ed25519_host_key": (0o600, files.host_key.read_bytes()),
        "root/.ssh/authorized_keys": (0o600, files.identity.with_suffix(".pub").read_bytes()),
    })


# ----------------------------------------------------------------------------------------------
# start / stop / status


def _check_port(port: int, flag: str) -> None:
    if not 1 <= port <= 65535:
        raise BoardError(flag, f"{port} is not a TCP port")
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            raise BoardError(flag, f"{HOST}:{port} is already in use") from None


def qemu_command(repo: Path, files: BoardFiles, kernel: Path, ssh_port: int, serial_port: int,
                 memory: int) -> list[str]:
    serial = (f"socket,id=console,host={HOST},port={serial_port},server=on,wait=off,"
              f"logfile={files.serial_log},logappend=on")
    return [QEMU, "-M", "virt", "-cpu", "cortex-a57", "-smp", "1", "-m", str(memory),
            "-display", "none", "-monitor", "none",
            "-kernel", str(kernel), "-initrd", str(files.initrd),
            "-append", "console=ttyAMA0 quiet",
            "-chardev", serial, "-serial", "chardev:console",
            "-netdev", f"user,id=net0,hostfwd=tcp:{HOST}:{ssh_port}-:22",
            "-device", "virtio-net-pci,netdev=net0,romfile=",
            "-drive", f"if=none,id=opt,format=raw,file={files.opt_image}",
            "-device", "virtio-blk-pci,drive=opt",
            "-device", "virtio-rng-pci",
            "-qmp", f"unix:{files.qmp},server=on,wait=off",
            "-pidfile", str(files.pidfile), "-daemonize"]


def start(repo: Path, workspace: Path, ssh_port: int = 2222, serial_port: int | None = None,
          memory: int = 1024, kernel: Path | None = None, timeout: float = BOOT_TIMEOUT) -> dict:
    """Boot the board and wait until its SSH server accepts the workspace's key; returns status()."""
    files = files_of(workspace)
    serial_port = serial_port if serial_port is not None else ssh_port + 1
    if kernel is None:
        board_image.refresh_board_image(repo)
    kernel = Path(kernel) if kernel else board_image.kernel_path(repo)
    state, old = read_state(workspace)
    if state == "running":
        assert old is not None
        raise BoardError(files.state, f"a board already runs (pid {old.pid}, ssh "
                         f"{USER}@{HOST}:{old.ssh_port}): `invoke board stop` first")
    if state == "stale":
        log.warning("board: removing the state of a board that no longer runs (%s)", files.state)
        clear_state(files)
    if memory < 256:
        raise BoardError("--memory", f"{memory} MB is too little for the board (at least 256)")
    if not kernel.is_file():
        raise BoardError(kernel, "kernel missing: run `invoke setup` (it fetches the board image)")
    if shutil.which(QEMU) is None:
        raise BoardError(QEMU, "not found: run `invoke setup` (Debian's qemu-system-arm)")
    if ssh_port == serial_port:
        raise BoardError("--serial-port", "must differ from --ssh-port")
    _check_port(ssh_port, "--ssh-port")
    _check_port(serial_port, "--serial-port")
    files.dir.mkdir(parents=True, exist_ok=True)
    board_keys.ensure_keys(files.identity, files.host_key)
    board_keys.ensure_opt_image(files.opt_image, OPT_IMAGE_BYTES)
    _build_initrd(repo, files)
    board_keys.write_known_hosts(files.known_hosts, files.host_key, f"[{HOST}]:{ssh_port}")
    files.pidfile.unlink(missing_ok=True)
    started = time.time()
    with open(files.qemu_log, "ab") as qlog:
        result = subprocess.run(qemu_command(repo, files, kernel, ssh_port, serial_port, memory),
                                stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.PIPE,
                                timeout=120)
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
        raise BoardError(QEMU, f"did not start: {reason[-1].removeprefix('qemu-system-aarch64: ')}")
    pid = int(files.pidfile.read_text().strip())
    board = BoardState(pid=pid, ssh_port=ssh_port, serial_port=serial_port, memory=memory,
                       started=started)
    write_state(files, board)
    try:
        wait_for_ssh(workspace, timeout)
    except BaseException:
        _kill(files, pid)
        clear_state(files)
        raise
    board.ssh_seconds = time.time() - started
    write_state(files, board)
    log.info("board: SSH answers after %.1fs", board.ssh_seconds)
    return status(workspace)


def status(workspace: Path) -> dict:
    """One object: state ("running", "stale" or "stopped") and, for a running board, how to reach it."""
    files = files_of(workspace)
    state, board = read_state(workspace)
    if state == "running" and board is not None:
        return board.describe(files)
    result: dict = {"state": state, "workspace": str(files.workspace)}
    if state == "stale":
        result["note"] = f"{files.state} names a qemu that no longer runs; `invoke board start` replaces it"
    return result


def stop(workspace: Path, timeout: float = STOP_TIMEOUT) -> str:
    """Power the board off cleanly (busybox poweroff: service stopped, /opt unmounted); qemu's
    `quit` and then signals when it does not go down in time. Returns what happened."""
    files = files_of(workspace)
    state, board = read_state(workspace)
    if state == "stopped":
        raise BoardError(files.state, "no board runs in this workspace")
    if state == "stale" or board is None:
        clear_state(files)
        return "the board was not running (stale state removed)"
    how = "powered off"
    try:
        code, _, err = ssh_run(workspace, "poweroff", timeout=20)
        if code not in (0, -1):
            log.warning("board: poweroff exited %d: %s", code, err.decode(errors="replace").strip())
    except Exception as exc:  # paramiko's, socket's, ours: whatever it is, qemu is stopped below
        log.warning("board: cannot power off over SSH (%s): quitting qemu", exc or type(exc).__name__)
    if not _wait_gone(board.pid, timeout):
        how = "killed (did not power off in time)"
        _kill(files, board.pid)
    clear_state(files)
    return how


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _kill(files: BoardFiles, pid: int) -> None:
    """qemu's `quit` through QMP, then SIGTERM, then SIGKILL, each with a bounded wait."""
    try:
        with socket.socket(socket.AF_UNIX) as qmp:
            qmp.settimeout(5)
            qmp.connect(str(files.qmp))
            qmp.recv(4096)
            qmp.sendall(b'{"execute":"qmp_capabilities"}\n')
            qmp.recv(4096)
            qmp.sendall(b'{"execute":"quit"}\n')
    except OSError:
        pass
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None and is_our_qemu(pid, files):
            os.kill(pid, sig)
        if _wait_gone(pid, 10):
            return


# ----------------------------------------------------------------------------------------------
# SSH to the board (paramiko; the host key checked against the workspace's known_hosts)


def connect(workspace: Path, timeout: float = 20):
    """A paramiko SSHClient logged in as root with the workspace's key (host key checked)."""
    import paramiko

    files = files_of(workspace)
    state, board = read_state(workspace)
    if state != "running" or board is None:
        raise BoardError(files.state, "no board runs in this workspace: `invoke board start`")
    client = paramiko.SSHClient()
    client.load_host_keys(str(files.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(HOST, port=board.ssh_port, username=USER, key_filename=str(files.identity),
                       look_for_keys=False, allow_agent=False, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout)
    except BaseException:
        client.close()
        raise
    return client


def ssh_run(workspace: Path, command: str, timeout: float = 120, stdin: bytes | None = None
            ) -> tuple[int, bytes, bytes]:
    """Run a shell command on the board; (exit status, stdout, stderr). -1 when the channel closed
    without a status (as `poweroff` and `reboot` do)."""
    client = connect(workspace)
    try:
        channel = client.get_transport().open_session(timeout=timeout)
        channel.settimeout(timeout)
        channel.exec_command(command)
        if stdin is not None:
            channel.sendall(stdin)
        channel.shutdown_write()
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        while not (channel.exit_status_ready() and not channel.recv_ready()
                   and not channel.recv_stderr_ready()):
            if time.monotonic() > deadline:
                raise BoardError("ssh", f"{command!r} did not finish within {timeout:.0f}s")
            if channel.recv_ready():
                out += channel.recv(1 << 16)
            elif channel.recv_stderr_ready():
                err += channel.recv_stderr(1 << 16)
            elif channel.closed:
                break
            else:
                time.sleep(0.02)
        code = channel.recv_exit_status() if channel.exit_status_ready() else -1
        return code, bytes(out), bytes(err)
    finally:
        client.close()


def wait_for_ssh(workspace: Path, timeout: float = BOOT_TIMEOUT) -> float:
    """Wait until the board runs `true` over SSH; returns the seconds waited."""
    import paramiko

    files = files_of(workspace)
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < timeout:
        state, _ = read_state(workspace)
        if state != "running":
            raise BoardError(QEMU, f"exited while booting (see {files.qemu_log}, {files.serial_log})")
        try:
            code, _, _ = ssh_run(workspace, "true", timeout=20)
            if code == 0:
                return time.monotonic() - started
        except (OSError, EOFError, paramiko.SSHException) as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(1)
    raise BoardError("ssh", f"the board did not answer within {timeout:.0f}s ({last}; see "
                     f"{files.serial_log})")


def reboot(workspace: Path, timeout: float = BOOT_TIMEOUT) -> float:
    """Reboot the board (its init stops the service and releases /opt) and wait until SSH answers
    from the new boot (a different kernel boot_id); returns the seconds it took."""
    import paramiko

    started = time.monotonic()
    boot_id = _boot_id(workspace)
    console = files_of(workspace).serial_log
    mark = console.stat().st_size if console.exists() else 0
    try:
        ssh_run(workspace, "reboot", timeout=20)
    except (OSError, EOFError, paramiko.SSHException):
        pass  # the board may close the session before it answers
    # qemu's forwarded port accepts connections while the guest resets and leaves them hanging: log in
    # only once the console shows the reset and then the new boot's serial shell (init started dropbear)
    _wait_console(workspace, mark, (b"reboot: Restarting system", b"built-in shell"), started + timeout)
    while time.monotonic() - started < timeout:
        wait_for_ssh(workspace, timeout - (time.monotonic() - started))
        try:
            if _boot_id(workspace) != boot_id:
                return time.monotonic() - started
        except (OSError, EOFError, AlogError, paramiko.SSHException):
            pass  # the old dropbear, going down
        time.sleep(1)
    raise BoardError("ssh", f"the board did not come back within {timeout:.0f}s")


def _wait_console(workspace: Path, offset: int, texts: tuple[bytes, ...], deadline: float) -> None:
    """Wait until the console log, from `offset`, shows `texts` in this order."""
    console = files_of(workspace).serial_log
    while time.monotonic() < deadline:
        if read_state(workspace)[0] != "running":
            raise BoardError(QEMU, f"exited while rebooting (see {console})")
        seen = console.read_bytes()[offset:] if console.exists() else b""
        for text in texts:
            at = seen.find(text)
            if at < 0:
                break
            seen = seen[at + len(text):]
        else:
            return
        time.sleep(0.2)
    raise BoardError("ssh", f"the board did not reboot (see {console})")


def _boot_id(workspace: Path) -> bytes:
    code, out, _ = ssh_run(workspace, "cat /proc/sys/kernel/random/boot_id", timeout=20)
    if code != 0:
        raise BoardError("ssh", "cannot read the board's boot_id")
    return out.strip()
