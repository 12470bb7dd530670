"""The transfer protocol over the agent: pipelined chunks (a window of unacknowledged bytes keeps the line
busy), each verified by sha256 on the device before it is appended to `<remote>.part`; a bad chunk makes
the agent drain the line and name the verified length, and the host goes back to it. A second session
resumes from the verified prefix of the partial file. Compression (xz, else gzip) is chosen when a sample
shows it pays, and runs in a thread while the first chunks are already on the line."""
from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import lzma
import threading
from collections import deque
import time
import zlib
from dataclasses import dataclass, field

from ..errors import AlogError
from .serial_link import Line, LinkLost, Reply, open_header

log = logging.getLogger(__name__)

ENCODINGS = ("auto", "8bit", "base64")
COMPRESSIONS = ("auto", "xz", "gz", "none")
SAMPLE = 256 * 1024
PAYS = 0.95  # compress when a sample shrinks below this fraction (on a slow line even 5% pays)
_tokens = itertools.count(1)


def default_chunk_size(baud: int) -> int:
    """The largest power of two the line carries in 0.75 s, within 1 KiB..64 KiB: small enough that a lost
    chunk costs little, large enough that the 90-byte header and the device's forks are noise."""
    target = baud / 10 * 0.75
    size = 1024
    while size * 2 <= target and size < 65536:
        size *= 2
    return size


class Wire:
    """The bytes a file becomes on the line: the data itself, or an xz/gzip stream produced by a thread."""

    def __init__(self, data: bytes, method: str):
        self.method, self.data = method, data
        self.buf = bytearray() if method != "none" else bytearray(data)
        self.fed = len(self.buf)  # input bytes behind the output so far
        self.done = threading.Event()
        self.cond = threading.Condition()
        self.error: BaseException | None = None
        if method == "none":
            self.done.set()
        else:
            threading.Thread(target=self._compress, daemon=True, name="serial-compress").start()

    def _compress(self) -> None:
        try:
            if self.method in XZ_FILTERS:
                comp = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                                           filters=XZ_FILTERS[self.method])
            else:
                comp = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip container, no name, no mtime
            for i in range(0, len(self.data), 1 << 20):
                self._add(comp.compress(self.data[i:i + (1 << 20)]), min(len(self.data), i + (1 << 20)))
            self._add(comp.flush(), len(self.data))
        except BaseException as exc:  # reported to the sender
            self.error = exc
        finally:
            with self.cond:
                self.done.set()
                self.cond.notify_all()

    def _add(self, part: bytes, fed: int) -> None:
        with self.cond:
            self.buf += part
            self.fed = fed
            self.cond.notify_all()

    def available(self, upto: int) -> int:
        """Wait until `upto` bytes exist or the stream ended; return how many exist."""
        with self.cond:
            while len(self.buf) < upto and not self.done.is_set():
                self.cond.wait(0.5)
            if self.error:
                raise AlogError(None, f"compression failed: {self.error}")
            return len(self.buf)

    def total(self) -> int | None:
        return len(self.buf) if self.done.is_set() else None

    def slice(self, start: int, end: int) -> bytes:
        self.available(end)
        with self.cond:
            return bytes(self.buf[start:end])


# LZMA2 at preset 6 (an 8 MiB dictionary: busybox unxz needs ~9 MiB); lc0/lp2 suits arrays of 4-byte numbers
# such as ONNX weights (~10% smaller there), the default suits code and text.
XZ_FILTERS = {"xz": [{"id": lzma.FILTER_LZMA2, "preset": 6}],
              "xz-aligned": [{"id": lzma.FILTER_LZMA2, "preset": 6, "lc": 0, "lp": 2, "pb": 2}]}


def choose_compression(data: bytes, wanted: str, applets: tuple[str, ...]) -> str:
    """"none", "gz", "xz" or "xz-aligned" (the device unpacks both xz kinds with unxz)."""
    have = [m for m, applet in (("xz", "unxz"), ("gz", "gunzip")) if applet in applets]
    if wanted in ("xz", "gz") and wanted not in have:
        raise AlogError("--compress", f"{wanted}: the device has no {'unxz' if wanted == 'xz' else 'gunzip'}")
    if wanted == "none" or not have or len(data) < 512:
        return "none"
    piece = SAMPLE // 4
    sample = data if len(data) <= SAMPLE else \
        b"".join(data[k * (len(data) - piece) // 3:][:piece] for k in range(4))  # four spread, disjoint pieces
    if wanted == "gz" or "xz" not in have:
        return "gz" if wanted == "gz" or len(zlib.compress(sample, 9)) < PAYS * len(sample) else "none"
    sizes = {name: len(lzma.compress(sample, format=lzma.FORMAT_RAW, filters=f)) for name, f in XZ_FILTERS.items()}
    best = min(sizes, key=sizes.get)
    return best if wanted == "xz" or sizes[best] < PAYS * len(sample) else "none"


@dataclass
class Stats:
    wire_bytes: int = 0
    chunks: int = 0
    retransmitted_chunks: int = 0
    resumed_from: list[int] = field(default_factory=list)
    bad_chunks: int = 0
    max_resent_chunks: int = 0  # after a resume: whole chunks that had left the host and must go again


@dataclass
class _Frame:
    end: int  # wire offset after this chunk
    data: bytes  # header + payload
    written: int = 0

    @property
    def done(self) -> bool:
        return self.written == len(self.data)


class Sender:
    """Sends one file through the agent. `send()` raises LinkLost when the line drops; calling it again on a
    new line resumes from what the device verified."""

    def __init__(self, data: bytes, remote: str, method: str, encoding: str, chunk: int, rate: float,
                 progress=None):
        self.data, self.remote, self.encoding, self.chunk, self.rate = data, remote, encoding, chunk, rate
        self.sha = hashlib.sha256(data).hexdigest()
        self.wire = Wire(data, method)
        self.progress = progress or (lambda n: None)
        self.reported = 0
        self.stats = Stats()
        self.highest_sent = 0
        wire_chunk = chunk * 4 // 3 + 4 if encoding == "base64" else chunk
        lead = min(wire_chunk, max(wire_chunk // 4, int(rate * 0.15)))
        self.window = wire_chunk + 100 + lead  # frame bytes on the line not yet acknowledged
        self.highest_complete = 0  # end of the furthest chunk whose every byte left the host
        self.ack_timeout = self.window / rate + 4.0

    # -- helpers --
    def _expect(self, line: Line, tok: str, ops: str, timeout: float) -> Reply | None:
        end = time.monotonic() + timeout
        while True:
            r = line.reply(max(0.0, end - time.monotonic()))
            if r is None:
                return None
            if r.op == "E":
                raise AlogError(self.remote, f"the device failed: {' '.join(r.args)}")
            if r.op in ops and r.args[:1] == [tok]:
                return r

    def _resync(self, line: Line, tok: str) -> int:
        """Ask the device for its verified length until it answers (it ignores us while it drains)."""
        log.debug("%s: no answer in time: asking the device how much it has", self.remote)
        for _ in range(6):
            line.write(b"\nS\n")
            end = time.monotonic() + 3.0
            while time.monotonic() < end:
                r = self._expect(line, tok, "SRA", end - time.monotonic())
                if r is None:
                    break
                n = r.number(1)
                if r.op in "SR" and n is not None:
                    return n
        raise LinkLost("the device stopped answering")

    def _report(self, acked: int, total_wire: int | None) -> None:
        """Progress in file bytes: the acknowledged share of the wire stream, scaled to the input behind it."""
        if total_wire is not None:
            raw = len(self.data) if acked >= total_wire else acked * len(self.data) // max(1, total_wire)
        else:
            raw = acked * self.wire.fed // max(1, len(self.wire.buf))
        raw = min(raw, len(self.data))
        if raw > self.reported:
            self.progress(raw - self.reported)
            self.reported = raw

    def _frame(self, start: int, end: int) -> bytes:
        payload = self.wire.slice(start, end)
        digest = hashlib.sha256(payload).hexdigest()
        body = base64.b64encode(payload) if self.encoding == "base64" else payload
        enc = "b" if self.encoding == "base64" else "r"
        return f"C {start} {len(payload)} {len(body)} {enc} {digest}\n".encode() + body

    # -- the transfer --
    def send(self, line: Line) -> None:
        tok = f"t{next(_tokens)}"
        line.flush_replies()
        line.write(open_header(tok, self.remote))
        r = self._expect(line, tok, "S", 10.0)
        start = r.number(1) if r else None
        if start is None:
            start = self._resync(line, tok)
        if start:
            start = self._check_prefix(line, tok, start)
        if start:
            self.stats.resumed_from.append(start)
            resent = sum(1 for _ in range(start, self.highest_complete, self.chunk))
            self.stats.max_resent_chunks = max(self.stats.max_resent_chunks, resent)
        self._stream(line, tok, start)
        self._finish(line, tok)

    def _check_prefix(self, line: Line, tok: str, size: int) -> int:
        have = self.wire.available(size)
        if have >= size:
            line.write(f"H {size}\n".encode())
            r = self._expect(line, tok, "H", 30.0 + size / 20e6)
            if r is not None and r.args[1:2] == r.args[2:3] and \
                    r.args[1] == hashlib.sha256(self.wire.slice(0, size)).hexdigest():
                return size
        log.info("%s: the partial file on the device is not a prefix of this one: starting over", self.remote)
        line.write(b"T\n")
        if self._expect(line, tok, "S", 10.0) is None:
            raise LinkLost("no answer to truncate")
        return 0

    def _stream(self, line: Line, tok: str, start: int) -> None:
        """Keep `window` frame bytes unacknowledged on the line: one chunk plus a lead that covers the device's
        check of the previous chunk, so the line never idles and a fault costs little more than one chunk."""
        acked = sent = start
        frames: deque[_Frame] = deque()
        while True:
            total = self.wire.total()
            if total is not None and acked >= total:
                return
            unacked = sum(f.written for f in frames)
            if (not frames or frames[-1].done) and (total is None or sent < total) and unacked < self.window:
                end = min(self.wire.available(sent + self.chunk), sent + self.chunk)
                if end > sent:
                    frames.append(_Frame(end, self._frame(sent, end)))
                    self.stats.chunks += 1
                    if end <= self.highest_sent:
                        self.stats.retransmitted_chunks += 1
                    self.highest_sent = max(self.highest_sent, end)
                    sent = end
            budget = self.window - unacked
            for f in frames:
                if budget <= 0:
                    break
                if not f.done:
                    piece = f.data[f.written:f.written + budget]
                    line.write(piece)
                    f.written += len(piece)
                    self.stats.wire_bytes += len(piece)
                    budget -= len(piece)
                    if f.done:
                        self.highest_complete = max(self.highest_complete, f.end)
            more = budget > 0 and ((frames and not frames[-1].done) or (total is None or sent < total))
            r = self._expect(line, tok, "AFRS", 0.0 if more else self.ack_timeout)
            if r is None:
                if not more:
                    frames.clear()
                    acked = sent = self._resync(line, tok)
                continue
            n = r.number(1)
            if n is None:
                continue
            if r.op == "A":
                if n > acked:
                    acked = n
                    while frames and frames[0].end <= acked:
                        frames.popleft()
                    self._report(acked, self.wire.total())
                continue
            log.debug("%s: %s at %d", self.remote, "bad chunk" if r.op == "F" else "resync", n)
            if r.op == "F":  # the device drains the line, then says R
                self.stats.bad_chunks += 1
                r2 = self._expect(line, tok, "R", self.ack_timeout + 3.0)
                n2 = r2.number(1) if r2 else None
                n = n2 if n2 is not None else self._resync(line, tok)
            frames.clear()
            acked = sent = n

    def _finish(self, line: Line, tok: str) -> None:
        line.write(f"E {self.wire.method.split('-')[0]} {self.sha}\n".encode())
        deadline = time.monotonic() + 60.0 + len(self.data) / 2e6
        while time.monotonic() < deadline:
            r = self._expect(line, tok, "D", 8.0)
            if r is None:
                line.write(b"\nU\n")
                continue
            if r.args[1:2] != r.args[2:3] or r.args[1] == "-":
                continue
            if r.args[1] == "ok":
                self._report(1, 1)
                return
            raise AlogError(self.remote, f"the device rejected the file ({r.args[1]})")
        raise LinkLost("no answer to the end of the file")
