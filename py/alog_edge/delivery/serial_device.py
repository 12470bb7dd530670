"""A test device with a serial console: busybox ash on a pseudo-terminal (PATH = busybox applets only), a login
prompt in front of it when a user is set, behind the paced fault relay of serial_relay.py.

By hand: `invoke device-serial start` runs `python -m alog_edge.delivery.serial_device` in the background and
writes its ports and pid to a state file; `invoke device-serial stop` ends it."""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

from ..errors import AlogError
from .serial_relay import Relay
from .sshdevice import processes_under

log = logging.getLogger(__name__)

PASSWORD_ENV = "ALOG_EDGE_SERIAL_PASSWORD"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

# A getty-like loop: a login prompt when a user is configured, then an interactive busybox ash; when the shell
# exits, the prompt comes back (as init respawns getty on a real console).
CONSOLE_SH = r"""
trap 'echo' INT
while :; do
  if [ -n "$AE_USER" ]; then
    printf '%s login: ' "$AE_HOST"
    IFS= read -r user || { sleep 1; continue; }
    printf 'Password: '
    stty -echo; IFS= read -r pw; stty echo; echo
    got=$(printf %s "$pw" | sha256sum); got=${got%% *}
    if [ "$user" != "$AE_USER" ] || [ "$got" != "$AE_PWHASH" ]; then
      sleep 1; echo 'Login incorrect'; continue
    fi
  fi
  HOME=$AE_HOME PS1='~ # ' ash -i
  stty sane 2>/dev/null
done
"""


def find_busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("busybox")
    if not found:
        raise AlogError("busybox", "not installed (apt-get install busybox)")
    return found


def applet_dir(root: Path, without: tuple[str, ...] = ()) -> Path:
    """A folder of busybox applet links: the device's whole PATH."""
    busybox = find_busybox()
    bindir = root / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        link = bindir / name
        if name in without or link.exists() or link.is_symlink():
            continue
        link.symlink_to(busybox)
    return bindir


class SerialTestDevice:
    """Console process on a pty + relay. Use as a context manager; `url` is what `--serial` takes."""

    def __init__(self, root: Path, baud: int = 115200, user: str | None = None, password: str | None = None,
                 without: tuple[str, ...] = (), port: int = 0, control_port: int = 0, seed: int | None = None,
                 extra_path: tuple[str, ...] = ()):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        bindir = applet_dir(self.root, without)
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        # The device's prefix (flashers pass it as --prefix): its service follows a log of the device's own
        prefix = self.root / "opt" / "alog-edge"
        (prefix / "etc").mkdir(parents=True, exist_ok=True)
        (prefix / "var" / "log").mkdir(parents=True, exist_ok=True)
        (prefix / "var" / "log" / "app.log").touch()
        conf = prefix / "etc" / "alog-edge.conf"
        if not conf.exists():
            conf.write_text(f"ALOG_EDGE_LOG={prefix}/var/log/app.log\nALOG_EDGE_HEALTH_SECONDS=1\n")
        master, slave = os.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[4] = attrs[5] = termios.B115200  # what a UART console would report; the relay does the pacing
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        env = {"PATH": ":".join((*extra_path, str(bindir))), "AE_USER": user or "", "AE_HOME": str(home),
               "AE_HOST": "alog-edge-test", "TERM": "vt100",
               "AE_PWHASH": hashlib.sha256((password or "").encode()).hexdigest()}
        self.proc = subprocess.Popen([str(bindir / "ash"), "-c", CONSOLE_SH], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=home, preexec_fn=_controlling_tty,
                                     close_fds=True)
        os.close(slave)
        self.master = master
        self.relay = Relay(master, baud, port=port, control_port=control_port, seed=seed)

    @property
    def url(self) -> str:
        return self.relay.url

    def fault(self, command: str) -> str:
        return self.relay.command(command)

    def close(self) -> None:
        self.relay.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the console's session: ash and whatever it runs
            self.proc.wait(timeout=10)
        for pid in processes_under(self.root / "opt"):  # what left the session: the device's alog-edge service
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os.close(self.master)

    def __enter__(self) -> "SerialTestDevice":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _controlling_tty() -> None:
    import fcntl
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


# --- background device for `invoke device-serial start|stop` ----------------------------------------------------
def start_background(state: Path, root: Path, baud: int, user: str | None, port: int, control_port: int) -> dict:
    """Start the device in its own process; return its state (url, control port, pid, root)."""
    if state.exists():
        info = json.loads(state.read_text())
        if _alive(info.get("pid")):
            raise AlogError(state, f"a device is already running (pid {info['pid']}): invoke device-serial stop")
        state.unlink()
    state.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "alog_edge.delivery.serial_device", "--state", str(state), "--root", str(root),
           "--baud", str(baud), "--port", str(port), "--control-port", str(control_port)]
    if user:
        cmd += ["--user", user]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(state.with_suffix(".log"), "w"), start_new_session=True)
    for _ in range(100):
        if state.exists():
            return json.loads(state.read_text())
        if proc.poll() is not None:
            last = (state.with_suffix(".log").read_text().strip().splitlines() or ["no output"])[-1]
            raise AlogError(state.with_suffix(".log"), f"the device did not start: {last}")
        time.sleep(0.1)
    proc.kill()
    raise AlogError(state, "the device did not start within 10 s")


def manage(action: str, root: Path, baud: int = 115200, user: str | None = None, port: int = 0,
           command: str | None = None) -> str:
    """`invoke device-serial start|stop|status|fault`: one line about the device."""
    from .serial_relay import send_command
    state = root / "state.json"
    if action == "start":
        if user and PASSWORD_ENV not in os.environ:
            raise AlogError("--user", f"set {PASSWORD_ENV} to the password the console should ask for")
        info = start_background(state, root, baud, user, port, 0)
        return (f"serial device on {info['url']} at {baud} baud (faults: invoke device-serial fault --command "
                f"'flip 3'); prefix for flash: {root.resolve() / 'opt' / 'alog-edge'}")
    if action == "stop":
        return "stopped" if stop_background(state) else "no serial device running"
    info = json.loads(state.read_text()) if state.exists() else None
    if info is None or not _alive(info.get("pid")):
        raise AlogError(root, "no serial device running: invoke device-serial start")
    if action == "status":
        return json.dumps(info)
    if action == "fault":
        if not command:
            raise AlogError("--command", "name the fault: drop | flip N | lose N | dup N | stall SECONDS")
        answer = send_command(info["control_port"], command)
        if answer != "ok" and not answer.startswith("ok "):
            raise AlogError("--command", answer.removeprefix("error: "))
        return answer
    raise AlogError("action", f"{action!r}: use start, stop, status or fault")


def stop_background(state: Path) -> bool:
    if not state.exists():
        return False
    info = json.loads(state.read_text())
    pid = info.get("pid")
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)
    state.unlink(missing_ok=True)
    return True


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--state", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--user")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    a = p.parse_args(argv)
    password = os.environ.get(PASSWORD_ENV) if a.user else None
    dev = SerialTestDevice(Path(a.root), a.baud, a.user, password, port=a.port, control_port=a.control_port)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    state = Path(a.state)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": dev.url, "control_port": dev.relay.control_port, "pid": os.getpid(),
                               "root": str(Path(a.root).resolve()), "baud": a.baud, "user": a.user}))
    tmp.rename(state)
    try:
        while not stopping and dev.proc.poll() is None:
            time.sleep(0.2)
    finally:
        dev.close()


if __name__ == "__main__":
    main()
