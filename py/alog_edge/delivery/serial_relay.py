"""A serial line for tests: relays a TCP client (pyserial's socket://) to a pty master at the pace of a UART
(10 bits per byte for 8N1) and injects faults on command (drop the line, flip bits, lose or duplicate bytes,
stall). Commands arrive as text lines on a second TCP port on 127.0.0.1 (see `Relay.command`)."""
from __future__ import annotations

import logging
import os
import random
import select
import socket
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

DOWN, UP = "down", "up"  # down: host -> device, up: device -> host
SLICE_SECONDS = 0.004  # pacing granularity: a few ms of bytes per write


@dataclass
class _Faults:
    flips: int = 0  # bytes left to corrupt (one random bit each)
    lose: int = 0  # bytes left to swallow
    dup: int = 0  # bytes left to send twice
    stall_until: float = 0.0
    gap: int = 0  # clean bytes before the next flip (spreads a burst of flips)
    seven_bit: bool = False  # a line that clears the 8th bit (`clean off`)


@dataclass
class Stats:
    bytes: dict = field(default_factory=lambda: {DOWN: 0, UP: 0})
    faults: int = 0
    connections: int = 0


class Relay:
    """Owns the listening sockets and the pumps; `close()` stops everything it started."""

    def __init__(self, master_fd: int, baud: int, port: int = 0, control_port: int = 0, seed: int | None = None):
        self.master_fd = master_fd
        self.baud = baud
        self.rate = baud / 10.0
        self.rng = random.Random(seed)
        self.faults = {DOWN: _Faults(), UP: _Faults()}
        self.stats = Stats()
        self.lock = threading.Lock()
        self.client: socket.socket | None = None
        self.stop = threading.Event()
        self.listener = self._listen(port)
        self.control = self._listen(control_port)
        self.port = self.listener.getsockname()[1]
        self.control_port = self.control.getsockname()[1]
        self.threads = [threading.Thread(target=f, daemon=True, name=f.__name__)
                        for f in (self._accept_loop, self._control_loop, self._up_pump)]
        for t in self.threads:
            t.start()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(4)
        s.settimeout(0.2)
        return s

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    # --- the line -------------------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                old, self.client = self.client, conn  # a new caller takes the line
                self.stats.connections += 1
            if old is not None:
                _close(old)
            threading.Thread(target=self._down_pump, args=(conn,), daemon=True).start()

    def _pace(self, direction: str, data: bytes, clock: list[float]) -> bytes:
        """Sleep so that `data` leaves no faster than the baud rate; apply the pending faults to it."""
        now = time.monotonic()
        clock[0] = max(clock[0], now)  # an idle line earns no credit
        f = self.faults[direction]
        while f.stall_until > time.monotonic() and not self.stop.is_set():
            time.sleep(0.01)
            clock[0] = time.monotonic()
        data = self._apply(f, data)
        delay = clock[0] - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        clock[0] += len(data) / self.rate
        return data

    def _apply(self, f: _Faults, data: bytes) -> bytes:
        if f.seven_bit:
            data = bytes(b & 0x7F for b in data)
        with self.lock:
            if not (f.flips or f.lose or f.dup):
                return data
            out = bytearray()
            for b in data:
                if f.lose:
                    f.lose -= 1
                    continue
                if f.flips:
                    if f.gap:
                        f.gap -= 1
                    else:
                        b ^= 1 << self.rng.randrange(8)
                        f.flips -= 1
                        f.gap = self.rng.randrange(64)
                out.append(b)
                if f.dup:
                    f.dup -= 1
                    out.append(b)
            return bytes(out)

    def _down_pump(self, conn: socket.socket) -> None:
        clock = [0.0]
        step = max(1, int(self.rate * SLICE_SECONDS))
        while not self.stop.is_set():
            try:
                r, _, _ = select.select([conn], [], [], 0.2)
                if not r:
                    continue
                data = conn.recv(step)
            except OSError:
                break
            if not data:
                break
            data = self._pace(DOWN, data, clock)
            with self.lock:
                live = self.client is conn
            if not live:
                break
            try:
                _write_all(self.master_fd, data)
            except OSError:
                break
            self.stats.bytes[DOWN] += len(data)
        with self.lock:
            if self.client is conn:
                self.client = None
        _close(conn)

    def _up_pump(self) -> None:
        clock = [0.0]
        step = max(1, int(self.rate * SLICE_SECONDS))
        while not self.stop.is_set():
            r, _, _ = select.select([self.master_fd], [], [], 0.2)
            if not r:
                continue
            try:
                data = os.read(self.master_fd, step)
            except OSError:  # the console's process is gone
                time.sleep(0.1)
                continue
            data = self._pace(UP, data, clock)
            with self.lock:
                conn = self.client
            if conn is None:
                continue  # nobody on the line: the console's output is lost, as on a real UART
            try:
                conn.sendall(data)
                self.stats.bytes[UP] += len(data)
            except OSError:
                pass

    # --- faults ---------------------------------------------------------------------------------------------
    def command(self, line: str) -> str:
        """`drop` | `flip N [down|up]` | `lose N [dir]` | `dup N [dir]` | `stall SECONDS [dir]` |
        `clean off|on [dir]` (a 7-bit line) | `stats`."""
        words = line.split()
        if not words:
            return "error: empty command"
        op, args = words[0], words[1:]
        direction = args[1] if len(args) > 1 else DOWN
        if direction not in (DOWN, UP):
            return f"error: direction {direction!r}: use down or up"
        if op == "stats":
            s = self.stats
            return f"ok down={s.bytes[DOWN]} up={s.bytes[UP]} faults={s.faults} connections={s.connections}"
        if op == "drop":
            with self.lock:
                conn, self.client = self.client, None
                self.stats.faults += 1
            if conn is not None:
                _close(conn)
            return "ok"
        if op == "clean" and args[:1] in (["on"], ["off"]):
            self.faults[direction].seven_bit = args[0] == "off"
            return "ok"
        if op not in ("flip", "lose", "dup", "stall") or not args:
            return f"error: unknown command {line.strip()!r}"
        try:
            amount = float(args[0]) if op == "stall" else int(args[0])
        except ValueError:
            return f"error: {args[0]!r} is not a number"
        f = self.faults[direction]
        with self.lock:
            self.stats.faults += 1
            if op == "stall":
                f.stall_until = time.monotonic() + amount
            else:
                setattr(f, {"flip": "flips"}.get(op, op), int(amount))
        return "ok"

    def _control_loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.control.accept()
            except (socket.timeout, OSError):
                continue
            with conn, conn.makefile("rw", encoding="utf-8", newline="\n") as f:
                conn.settimeout(5)
                try:
                    for line in f:
                        f.write(self.command(line) + "\n")
                        f.flush()
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        with self.lock:
            conn, self.client = self.client, None
        if conn is not None:
            _close(conn)
        for s in (self.listener, self.control):
            _close(s)
        for t in self.threads:
            t.join(timeout=2)


def send_command(control_port: int, line: str, timeout: float = 5.0) -> str:
    """One fault command to a running relay; returns its one-line answer."""
    with socket.create_connection(("127.0.0.1", control_port), timeout=timeout) as s:
        s.sendall(line.strip().encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            part = s.recv(256)
            if not part:
                break
            buf += part
    return buf.decode().strip()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
