"""The serial Transport of flash.py: a console session (wake, login, agent) that survives dropped lines by
reconnecting and resuming. `run` executes each command exactly once (the agent keys it by id), `read_file` and
`send_file` check sha256 on both ends."""
from __future__ import annotations

import base64
import getpass
import hashlib
import logging
import os
import re
import secrets
import sys
import time

from ..errors import AlogError
from . import serial_link as link
from .serial_link import Line, LineTrouble, LinkLost
from .serial_protocol import COMPRESSIONS, ENCODINGS, Sender, choose_compression, default_chunk_size

log = logging.getLogger(__name__)

PASSWORD_ENV = "ALOG_EDGE_SERIAL_PASSWORD"
PROBE = bytes(range(256)) * 2


RECONNECT_SECONDS = 60.0


class SerialTransport:
    label: str

    def __init__(self, port: str, baud: int = 115200, user: str | None = None, password_env: str = PASSWORD_ENV,
                 encoding: str = "auto", compress: str = "auto", chunk_size: int | None = None,
                 workdir: str = "/tmp/alog-edge-serial", reconnects: int = 12):
        if encoding not in ENCODINGS:
            raise AlogError("--encoding", f"{encoding!r}: use one of {', '.join(ENCODINGS)}")
        if compress not in COMPRESSIONS:
            raise AlogError("--compress", f"{compress!r}: use one of {', '.join(COMPRESSIONS)}")
        if chunk_size is not None and not 256 <= chunk_size <= 1 << 20:
            raise AlogError("--chunk-size", f"{chunk_size}: use 256 .. 1048576 bytes")
        if baud <= 0:
            raise AlogError("--baud", f"{baud}: must be positive")
        self.port, self.baud, self.user, self.password_env = port, baud, user, password_env
        self.wanted_encoding, self.compress = encoding, compress
        self.chunk = chunk_size or default_chunk_size(baud)
        self.workdir, self.reconnects = workdir, reconnects
        self.label = f"serial {port}"
        self.rate = baud / 10.0
        self._password: str | None = None
        self.encoding = "8bit" if encoding == "8bit" else "base64"
        self.applets: tuple[str, ...] = ()
        self.wire_bytes = 0
        self.line_drops = 0
        self.senders: list[Sender] = []
        self.line: Line | None = None
        self.logged_in = False  # this session logged in: close() logs out, as a person would
        self._reconnect("connect", first=True)

    # -- session --
    def _secret(self) -> str:
        if self._password is None:
            self._password = os.environ.get(self.password_env)
            if self._password is None:
                if not sys.stdin.isatty():
                    raise AlogError(self.port, f"the console asks for a password: set {self.password_env}")
                self._password = getpass.getpass(f"password for {self.user} on {self.port}: ")
        return self._password

    def _connect(self) -> None:
        self.line = Line(self.port, self.baud)
        try:
            self.logged_in = link.wake(self.line, self.user, self._secret) or self.logged_in
            self.applets = link.check_applets(self.line)
            link.start_agent(self.line, self.workdir)
            if self.wanted_encoding == "auto":
                self.encoding = "8bit" if self._probe_8bit() else "base64"
                log.debug("%s: %s framing", self.port, self.encoding)
        except BaseException:
            self.line.close()
            raise

    def _probe_8bit(self) -> bool:
        """One chunk of every byte value; clean when the device verifies it (two tries: a fault may hit it)."""
        for _ in range(2):
            tok = f"p{secrets.token_hex(3)}"
            line = self.line
            line.flush_replies()
            line.write(link.open_header(tok, f"{self.workdir}/probe") + b"T\n")
            digest = hashlib.sha256(PROBE).hexdigest()
            line.write(f"C 0 {len(PROBE)} {len(PROBE)} r {digest}\n".encode() + PROBE)
            end = time.monotonic() + 5.0 + 2 * len(PROBE) / self.rate
            while time.monotonic() < end:
                r = line.reply(end - time.monotonic())
                if r is None or r.args[:1] != [tok]:
                    continue
                if r.op == "A" and r.number(1) == len(PROBE):
                    return True
                if r.op == "F":
                    self._await(tok, "R", 10.0)
                    break
        return False

    def _await(self, tok: str, op: str, timeout: float) -> link.Reply | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = self.line.reply(end - time.monotonic())
            if r is not None and r.op == op and r.args[:1] == [tok]:
                return r
        return None

    def _retry(self, what: str, body):
        """Run `body(line)`; when the line drops, reconnect (a fresh login and agent) and run it again."""
        for attempt in range(self.reconnects + 1):
            try:
                return body(self.line)
            except LinkLost as exc:
                self.line_drops += 1
                log.info("%s: line lost during %s (%s): reconnecting", self.port, what, exc)
                self.line.close()
                if attempt == self.reconnects:
                    raise AlogError(self.port, f"{what}: the line dropped {attempt + 1} times ({exc})") from None
                self._reconnect(what)
        raise AssertionError("unreachable")

    def _reconnect(self, what: str, first: bool = False) -> None:
        """Connect again, backing off (0.2 s doubling to 5 s) for up to RECONNECT_SECONDS: a burst of faults
        can spoil several logins in a row, and a line that recovers should not end the flash."""
        last: Exception | None = None
        deadline = time.monotonic() + RECONNECT_SECONDS
        for attempt in range(1000):
            if attempt >= 8 and time.monotonic() > deadline:
                break
            pause = 0.0 if first and not attempt else min(5.0, 0.2 * 2 ** max(0, attempt - 1))
            time.sleep(max(pause, 1.0) if isinstance(last, AlogError) else pause)
            try:
                self._connect()
                return
            except (LinkLost, LineTrouble) as exc:
                log.debug("%s: connect failed: %s", self.port, exc)
                last = exc
            except AlogError as exc:
                if "cannot open" not in exc.message or first:
                    raise
                last = exc
        if isinstance(last, AlogError):
            raise AlogError(self.port, f"{what}: {last.message}") from None
        raise AlogError(self.port, f"{what}: the line keeps dropping ({last})") from None

    # -- Transport --
    def run(self, command: str, timeout: float) -> tuple[int, bytes, bytes]:
        rid = f"r{secrets.token_hex(6)}"
        payload = command.encode()
        digest = hashlib.sha256(payload).hexdigest()

        def body(line: Line) -> tuple[int, bytes, bytes]:
            line.flush_replies()
            line.write(b"\nW " + rid.encode() + b"\n")  # after a reconnect: did it already run?
            r = self._await(rid, "Y", 10.0)
            if r is None or r.number(1) is None:
                line.write(f"X {rid} {len(payload)} {digest} {max(1, int(timeout))}\n".encode() + payload)
                r = self._await_run(rid, timeout)
            rc = r.number(1)
            return rc, self._get(line, "run.out") or b"", self._get(line, "run.err") or b""
        return self._retry("run", body)

    def _await_run(self, rid: str, timeout: float) -> link.Reply:
        end = time.monotonic() + timeout + 15.0
        while time.monotonic() < end:
            r = self._await(rid, "Y", 5.0)
            if r is not None and r.number(1) is not None:
                return r
            self.line.write(b"\nW " + rid.encode() + b"\n")  # answered once the command ends
        raise LinkLost(f"no answer from a command within {timeout:.0f} s")

    def _get(self, line: Line, path: str) -> bytes | None:
        for _ in range(6):
            line.flush_replies()
            mark = line.mark()
            line.write(f"\nG {path}\n".encode())
            r = None
            end = time.monotonic() + 10.0
            while time.monotonic() < end and (r is None or r.op != "B"):
                r = line.reply(end - time.monotonic())
            if r is None or r.op != "B" or len(r.args) != 2:
                continue
            if r.args == ["-", "-"]:
                return None
            size = int(r.args[0]) if r.args[0].isdigit() else -1
            text = line.wait_for(mark, "~ae Z z z", 10.0 + 3 * max(size, 0) / self.rate)
            if text is None:
                continue
            m = re.search(r"~ae B [^\n]*\n(.*?)\n~ae Z z z", text, re.S)
            try:
                data = base64.b64decode("".join(m.group(1).split()), validate=True) if m else None
            except ValueError:
                data = None
            if data is not None and len(data) == size and hashlib.sha256(data).hexdigest() == r.args[1]:
                self.wire_bytes += len(path) + 4
                return data
        raise LinkLost(f"could not read {path} intact")

    def read_file(self, path: str) -> bytes | None:
        return self._retry(f"read {path}", lambda line: self._get(line, path))

    def send_file(self, data: bytes, remote: str, progress) -> int:
        method = choose_compression(data, self.compress, self.applets)
        sender = Sender(data, remote, method, self.encoding, self.chunk, self.rate, progress)
        self.senders.append(sender)

        def body(line: Line) -> None:
            sender.encoding = self.encoding  # a reconnect may have probed the line again
            sender.send(line)
        self._retry(f"send {remote}", body)
        self.wire_bytes += sender.stats.wire_bytes
        return sender.stats.wire_bytes

    def close(self) -> None:
        if self.line is None:
            return
        try:
            mark = self.line.mark()
            self.line.write(b"\nQ\n")
            self.line.wait_for(mark, "~ae Q", 5.0)
            if self.logged_in:
                self.line.settle(self.line.mark(), quiet=0.3, limit=2.0)
                self.line.write(b"exit\n")
                self.line.settle(self.line.mark(), quiet=0.3, limit=2.0)
        except (LinkLost, AlogError):
            pass
        self.line.close()
        self.line = None
