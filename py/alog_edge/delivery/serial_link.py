"""The console line: pyserial port, a reader thread that splits the agent's replies from the rest of the console
output, waking the console, logging in, and starting the agent (serial_agent.sh) in raw mode."""
from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import serial

from ..errors import AlogError

log = logging.getLogger(__name__)

AGENT = (Path(__file__).with_name("serial_agent.sh")).read_bytes()
REPLY = re.compile(rb"~ae ([A-Z]) ?([^\r\n]*)")
REQUIRED_APPLETS = ("stty", "dd", "sha256sum", "cat", "cp", "mv", "rm", "mkdir", "dirname", "head", "wc",
                    "base64", "timeout", "sh")
OPTIONAL_APPLETS = ("unxz", "gunzip")
KEEP_TEXT = 65536  # console text kept for prompt matching


class LinkLost(Exception):
    """The line dropped (the port closed or failed): reconnect and resume."""


class LineTrouble(AlogError):
    """The console did not answer as it should (noise, a stall): worth another try on a fresh session."""


@dataclass
class Reply:
    op: str
    args: list[str]

    def number(self, i: int) -> int | None:
        """args[i] as an int when it is doubled identically at args[i+1] (so a flipped digit never passes)."""
        try:
            a, b = self.args[i], self.args[i + 1]
        except IndexError:
            return None
        return int(a) if a == b and a.isdigit() else None


class Line:
    """One open port with a reader thread. `write`, `reply()` for agent lines, `text()` for the console."""

    def __init__(self, port: str, baud: int):
        self.port = port
        try:
            self.ser = serial.serial_for_url(port, baudrate=baud, timeout=0.05, write_timeout=30)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise AlogError(port, f"cannot open the serial port: {_short(exc)}") from None
        self.replies: queue.Queue[Reply] = queue.Queue()
        self.console = bytearray()
        self.cond = threading.Condition()
        self.lost: str | None = None
        self.closing = False
        self.wire_out = 0
        self.thread = threading.Thread(target=self._read_loop, daemon=True, name="serial-reader")
        self.thread.start()

    def _read_loop(self) -> None:
        pending = b""
        while not self.closing:
            try:
                data = self.ser.read(4096)
            except Exception as exc:  # pyserial raises SerialException/OSError/TypeError on a dead socket
                with self.cond:
                    self.lost = _short(exc)
                    self.cond.notify_all()
                return
            if not data:
                continue
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                m = REPLY.search(raw)
                if m:
                    self.replies.put(Reply(m.group(1).decode(), m.group(2).decode("ascii", "replace").split()))
            with self.cond:
                self.console += data
                del self.console[:-KEEP_TEXT]
                self.cond.notify_all()
            if len(pending) > KEEP_TEXT:
                pending = pending[-256:]

    def check(self) -> None:
        if self.lost is not None:
            raise LinkLost(self.lost)

    def write(self, data: bytes) -> None:
        self.check()
        try:
            self.ser.write(data)
        except Exception as exc:
            raise LinkLost(_short(exc)) from None
        self.wire_out += len(data)

    def reply(self, timeout: float) -> Reply | None:
        end = time.monotonic() + timeout
        while True:
            try:
                return self.replies.get(timeout=min(0.2, max(0.0, end - time.monotonic())))
            except queue.Empty:
                self.check()
                if time.monotonic() >= end:
                    return None

    def flush_replies(self) -> None:
        while not self.replies.empty():
            self.replies.get_nowait()

    def mark(self) -> int:
        with self.cond:
            return len(self.console)

    def text_since(self, mark: int) -> str:
        with self.cond:
            return bytes(self.console[mark:]).decode("utf-8", "replace") if mark <= len(self.console) else ""

    def settle(self, mark: int, quiet: float, limit: float) -> str:
        """Console text after `mark` once the line has been quiet for `quiet` s (at most `limit` s)."""
        end = time.monotonic() + limit
        last, seen = time.monotonic(), -1
        while time.monotonic() < end:
            self.check()
            with self.cond:
                n = len(self.console)
                if n != seen:
                    seen, last = n, time.monotonic()
                self.cond.wait(0.05)
            if time.monotonic() - last >= quiet:
                break
        return self.text_since(mark)

    def wait_for(self, mark: int, needle: str, timeout: float) -> str | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check()
            text = self.text_since(mark)
            if needle in text:
                return text
            with self.cond:
                self.cond.wait(0.05)
        return None

    def close(self) -> None:
        self.closing = True
        try:
            self.ser.close()
        except Exception:
            pass
        self.thread.join(timeout=2)


def open_header(tok: str, path: str) -> bytes:
    """The agent's O line: which file the next chunks go to, with the first 16 hex digits of the sha256 of
    "tok path" (the agent refuses a header whose path a fault changed)."""
    check = hashlib.sha256(f"{tok} {path}".encode()).hexdigest()[:16]
    return f"\nO {tok} {path} {check}\n".encode()


def _short(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --- getting a shell ---------------------------------------------------------------------------------------------
def wake(line: Line, user: str | None, password: "callable", timeout: float = 40.0) -> bool:
    """Bring the console to a shell prompt: quit a stale agent, answer login prompts. `password()` is only
    called when the console asks for one. True when it logged in (so the session should log out)."""
    end = time.monotonic() + timeout
    sent_user = sent_password = False
    failures = 0
    secret = ""  # kept out of the debug log even if a console echoes it
    line.flush_replies()
    mark = line.mark()
    line.write(b"\n")
    answered = False  # just answered a password prompt: login takes seconds to say how it went
    newline_only = True  # the last thing sent was an empty line
    while time.monotonic() < end:
        out = line.settle(mark, quiet=0.6, limit=4.0)
        if answered:
            answered = False
            low = out.lower()
            t_end = time.monotonic() + 8.0
            while time.monotonic() < t_end and not any(k in low for k in ("incorrect", "login:", "#", "$", ">")):
                out = line.settle(mark, quiet=0.6, limit=2.0)
                low = out.lower()
            out = line.settle(mark, quiet=0.4, limit=2.0)
        tail = out.rstrip()
        log.debug("console: %r", tail[-60:].replace(secret, "***") if secret else tail[-60:])
        # An agent from an earlier session answers with ~ae lines, or says nothing to an empty line (a shell
        # or a login prompt would print a prompt): ask it to quit.
        if _agent_answered(line) or (newline_only and not out.strip()):
            line.settle(mark, quiet=1.3, limit=8.0)
            mark = line.mark()
            line.write(b"\nQ\n")
            line.wait_for(mark, "~ae Q", 3.0)
            line.flush_replies()
            mark = line.mark()
            line.write(b"\n")
            newline_only = False
            continue
        newline_only = False
        if "incorrect" in out.lower() and sent_password:  # twice: once may be noise on the line
            failures += 1
            if failures >= 2:
                raise AlogError(line.port, f"login incorrect for user {user!r}")
            sent_user = sent_password = False
        if tail.lower().endswith("login:"):
            if not user:
                raise AlogError(line.port, "the console asks for a login: pass --user")
            mark = line.mark()
            line.write(user.encode() + b"\n")
            sent_user = True
            continue
        if tail.lower().endswith("password:"):
            mark = line.mark()
            answered = True
            if not sent_user:  # a prompt left by someone else: fail it to get a fresh login prompt
                line.write(b"\n")
                continue
            secret = password()
            line.write(secret.encode() + b"\n")
            sent_password = True
            continue
        mark = line.mark()
        line.write(b"printf '~%s\\n' ae-sh\n")  # the echo shows '~%s', only the output says ~ae-sh
        text = line.wait_for(mark, "~ae-sh", 3.0)
        if text is not None and "~ae-sh" in text.replace("'~%s", "") and not _agent_answered(line):
            line.settle(line.mark(), quiet=0.3, limit=2.0)
            return sent_password
        log.debug("shell probe failed: %r", line.text_since(mark)[-300:].replace(secret or "\0", "***"))
        mark = line.mark()
        line.write(b"\x03\n")  # ^C: out of a half-typed line or an open quote that noise left behind
        newline_only = True
    raise LineTrouble(line.port, f"no shell prompt on the console within {timeout:.0f} s")


def _agent_answered(line: Line) -> bool:
    seen = False
    while not line.replies.empty():
        seen = line.replies.get_nowait().op in "FRKASDY" or seen
    return seen


def check_applets(line: Line) -> tuple[str, ...]:
    """Fail with one line when an applet the protocol needs is missing; return the optional ones present."""
    names = " ".join(REQUIRED_APPLETS + OPTIONAL_APPLETS)
    mark = line.mark()
    line.write(f"printf '~%s' ae-apps; for a in {names}; do command -v $a >/dev/null 2>&1 || printf ' %s' $a; "
               f"done; printf '\\n'\n".encode())
    text = line.wait_for(mark, "~ae-apps", 5.0)
    if text is None:
        raise LineTrouble(line.port, "the shell did not answer the applet probe")
    line.settle(mark, quiet=0.3, limit=3.0)
    missing_line = line.text_since(mark).split("~ae-apps", 1)[1].splitlines()[0]
    missing = set(missing_line.split())
    required = [a for a in REQUIRED_APPLETS if a in missing]
    if required:
        raise AlogError(line.port, f"the device lacks {' '.join(required)} (busybox applets the transfer needs)")
    return tuple(a for a in OPTIONAL_APPLETS if a not in missing)


def start_agent(line: Line, workdir: str, attempts: int = 3) -> None:
    """Upload serial_agent.sh with dd in raw mode, check its sha256 and run it; the console's own stty
    settings come back when it ends."""
    digest = hashlib.sha256(AGENT).hexdigest()
    cmd = (f"o=$(stty -g); (stty raw -echo min 0 time 10; mkdir -p {workdir} && cd {workdir} && "
           f"printf '~%s\\n' 'ae L go' && dd of=a.sh bs={len(AGENT)} count=1 iflag=fullblock 2>/dev/null; "
           f"set -- $(sha256sum a.sh); if [ \"$1\" = {digest} ]; then sh a.sh \"$o\"; "
           f"else printf '~%s\\n' 'ae L bad'; fi); stty \"$o\"\n")
    for _ in range(attempts):
        line.flush_replies()
        mark = line.mark()
        line.write(cmd.encode())
        if line.wait_for(mark, "~ae L go", 8.0) is None:
            raise LineTrouble(line.port, "the shell did not start the transfer agent")
        line.write(AGENT)
        r = line.reply(10.0 + len(AGENT) * 10 / max(1, line.ser.baudrate))
        while r is not None and not (r.op == "K" and r.args[:1] == ["up"]) and r.args[:1] != ["bad"]:
            r = line.reply(5.0)
        if r is not None and r.op == "K":
            return
        line.settle(line.mark(), quiet=1.5, limit=6.0)
    raise LineTrouble(line.port, f"the transfer agent did not start after {attempts} tries")
