"""Figures for the serial flasher: throughput through the paced relay (`invoke serial-bench`) and a soak of
random faults during transfers (`invoke serial-soak`). Effective throughput = file bytes delivered and verified
on the device / seconds from opening the port (login included) to the device's last answer, as a share of
the line rate (baud / 10 bytes per second for 8N1)."""
from __future__ import annotations

import hashlib
import logging
import random
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..errors import AlogError
from . import flash
from .serial_device import SerialTestDevice
from .serial_transport import SerialTransport

log = logging.getLogger(__name__)
FACTORY_BAUD = 20_000_000  # first installs of the soak and the demo: 2 MB/s


@dataclass
class Figure:
    case: str
    baud: int
    bytes: int
    wire_bytes: int
    seconds: float  # from opening the port (wake, login, agent, line probe) to the verified file
    transfer_seconds: float  # send_file alone
    encoding: str
    compression: str

    @property
    def share(self) -> float:
        return self.bytes / self.seconds / (self.baud / 10)

    def row(self) -> str:
        return (f"{self.case:<24} {self.baud:>7} {self.bytes:>10} {self.wire_bytes:>10} {self.seconds:>8.1f} "
                f"{self.bytes / self.seconds:>9.0f} {100 * self.share:>6.0f}% "
                f"{100 * self.bytes / self.transfer_seconds / (self.baud / 10):>8.0f}%  "
                f"{self.encoding}/{self.compression}")

    def as_dict(self) -> dict:
        return {**asdict(self), "bytes_per_second": round(self.bytes / self.seconds), "share": round(self.share, 3)}


HEADER = (f"{'case':<24} {'baud':>7} {'bytes':>10} {'wire':>10} {'seconds':>8} {'B/s':>9} {'share':>7} "
          f"{'transfer':>9}  framing")


def measure(case: str, data: bytes, baud: int, encoding: str = "auto", compress: str = "auto",
            chunk_size: int | None = None, root: Path | None = None, bar: bool = True) -> Figure:
    """One file over a fresh device and session, timed from opening the port to the verified file."""
    with tempfile.TemporaryDirectory(prefix="alog-serial-bench-", dir=root) as tmp, \
            SerialTestDevice(Path(tmp) / "device", baud) as dev:
        remote = str(Path(tmp) / "device" / "incoming" / "file")
        t0 = time.monotonic()
        tr = SerialTransport(dev.url, baud, encoding=encoding, compress=compress, chunk_size=chunk_size,
                             workdir=str(Path(tmp) / "device" / "agent"))
        try:
            with tqdm(total=len(data), unit="B", unit_scale=True, desc=f"{case} @{baud}", disable=not bar,
                      leave=False) as pbar:
                t1 = time.monotonic()
                wire = tr.send_file(data, remote, pbar.update)
            seconds, transfer = time.monotonic() - t0, time.monotonic() - t1
        finally:
            tr.close()
        if Path(remote).read_bytes() != data:
            raise AlogError(remote, "the device's copy differs from the file sent")
        return Figure(case[:24], baud, len(data), wire, seconds, transfer, tr.encoding, tr.senders[-1].wire.method)


def default_sample(repo: Path) -> Path | None:
    """The aarch64 libonnxruntime.so (the bulk of an aarch64 bundle) from the Conan cache, when it is there."""
    for lib in sorted((repo / ".tools" / "conan" / "p").glob("*/*/p/lib/libonnxruntime.so.*.*.*")):
        with open(lib, "rb") as f:
            head = f.read(20)
        if head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183:  # EM_AARCH64
            return lib
    return None


def bench(bauds: list[int], sample: Path | None, random_seconds: float, chunk_size: int | None = None,
          bar: bool = True) -> list[Figure]:
    """Random data sized to `random_seconds` of line at each baud (so login weighs the same at every rate)."""
    figures = []
    for baud in bauds:
        noise = random.Random(1).randbytes(int(baud / 10 * random_seconds))
        figures.append(measure("random, 8-bit", noise, baud, "8bit", "auto", chunk_size, bar=bar))
        figures.append(measure("random, base64", noise, baud, "base64", "auto", chunk_size, bar=bar))
        if sample is not None:
            figures.append(measure(sample.name[:28], sample.read_bytes(), baud, "auto", "auto", chunk_size, bar=bar))
    return figures


# --- soak ----------------------------------------------------------------------------------------------------
FAULTS = (("flip", 4), ("lose", 3), ("dup", 3), ("stall", 2), ("drop", 2))


@dataclass
class SoakResult:
    faults: int = 0
    transfers: int = 0
    completed: int = 0
    stopped: list[str] = field(default_factory=list)  # the one line each stopped transfer ended with
    corrupted: int = 0
    resumes: int = 0
    max_resent_chunks: int = 0
    bad_chunks: int = 0
    line_drops: int = 0
    seconds: float = 0.0
    by_kind: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    @property
    def ok(self) -> bool:
        return self.corrupted == 0 and self.max_resent_chunks <= 1 and \
            all(len(s.splitlines()) == 1 for s in self.stopped)

    def report(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items()))
        lines = [f"faults injected: {self.faults} ({kinds})",
                 f"transfers: {self.transfers}, completed {self.completed}, stopped with one line "
                 f"{len(self.stopped)}, corrupted {self.corrupted}",
                 f"bad chunks caught: {self.bad_chunks}, line drops: {self.line_drops}, resumes: {self.resumes}, "
                 f"most whole chunks resent after a resume: {self.max_resent_chunks}",
                 f"time: {self.seconds:.0f} s", "result: " + ("ok" if self.ok else "FAILED")]
        lines += [f"stopped: {s}" for s in self.stopped[:5]]
        return "\n".join(lines)


class FaultInjector:
    """Fires random relay faults at random moments (`gap` seconds apart on average) until stopped."""

    def __init__(self, device: SerialTestDevice, gap: float, seed: int, limit: int, result: SoakResult):
        self.device, self.gap, self.rng, self.limit, self.result = device, gap, random.Random(seed), limit, result
        self.stop = threading.Event()
        self.armed = threading.Event()  # faults only while a transfer runs (its reconnects included)
        self.phase = "transfer"  # what the flash is doing when a fault fires (FlashSoakResult.by_phase)
        self.thread = threading.Thread(target=self._loop, daemon=True, name="fault-injector")

    def fire(self) -> None:
        kind = self.rng.choices([k for k, _ in FAULTS], [w for _, w in FAULTS])[0]
        direction = "up" if self.rng.random() < 0.25 else "down"
        arg = {"flip": lambda: self.rng.randint(1, 4), "lose": lambda: self.rng.randint(1, 40),
               "dup": lambda: self.rng.randint(1, 20), "stall": lambda: round(self.rng.uniform(0.2, 2.5), 2),
               "drop": lambda: ""}[kind]()
        answer = self.device.fault(f"{kind} {arg} {direction}".strip() if kind != "drop" else "drop")
        if answer == "ok":
            self.result.faults += 1
            self.result.by_kind[kind] = self.result.by_kind.get(kind, 0) + 1
            if hasattr(self.result, "by_phase"):
                self.result.by_phase[self.phase] = self.result.by_phase.get(self.phase, 0) + 1

    def _loop(self) -> None:
        while not self.stop.wait(self.rng.uniform(0.2, 2 * self.gap)):
            if self.result.faults >= self.limit:
                return
            if self.armed.is_set():
                self.fire()

    def __enter__(self) -> "FaultInjector":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def soak(faults: int, baud: int, seed: int = 1, file_bytes: int | None = None, gap: float | None = None,
         bar: bool = True, root: Path | None = None) -> SoakResult:
    """Transfers random and compressible files until `faults` faults have hit them; every copy on the device
    is compared with the original."""
    rng = random.Random(seed)
    rate = baud / 10
    file_bytes = file_bytes or int(rate * 10)  # ten seconds of line per file
    gap = gap or 3.0  # mean seconds between faults: most land in the stream, some in logins and resumes
    result = SoakResult()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="alog-serial-soak-", dir=root) as tmp, \
            SerialTestDevice(Path(tmp) / "device", baud, seed=seed) as dev, \
            FaultInjector(dev, gap, seed, faults, result) as injector, \
            tqdm(total=faults, desc="faults", unit="fault", disable=not bar) as pbar:
        workdir = str(Path(tmp) / "device" / "agent")
        tr = None
        retry = None  # a stopped transfer is started again, as a person would: it resumes from the .part
        while result.faults < faults:
            if retry is None:
                data = rng.randbytes(file_bytes) if result.transfers % 2 == 0 else \
                    b"".join(f"line {i} value {rng.randint(0, 99)}\n".encode() for i in range(file_bytes // 18))
                remote = Path(tmp) / "device" / "incoming" / f"f{result.transfers}"
            retry = None
            result.transfers += 1
            try:
                tr = tr or SerialTransport(dev.url, baud, workdir=workdir, reconnects=20)
                injector.armed.set()
                try:
                    tr.send_file(data, str(remote), None)
                finally:
                    injector.armed.clear()
                result.completed += 1
            except AlogError as exc:
                result.stopped.append(f"error: {exc}")
                if tr is not None:
                    _collect(result, tr)
                tr = None
                retry = remote
            if remote.exists() and hashlib.sha256(remote.read_bytes()).digest() != hashlib.sha256(data).digest():
                result.corrupted += 1
            pbar.n = min(result.faults, faults)
            pbar.refresh()
        if tr is not None:
            _collect(result, tr)
    result.seconds = time.monotonic() - t0
    return result


def _collect(result, tr: SerialTransport) -> None:
    result.line_drops += tr.line_drops
    for s in tr.senders:
        result.resumes += len(s.stats.resumed_from)
        result.max_resent_chunks = max(result.max_resent_chunks, s.stats.max_resent_chunks)
        if hasattr(result, "bad_chunks"):
            result.bad_chunks += s.stats.bad_chunks
    try:
        tr.close()
    except AlogError:
        pass


# --- soak of whole flashes: faults during uploads and during install.sh ------------------------------------------
@dataclass
class FlashSoakResult:
    runs: int = 0
    faults: int = 0
    completed: int = 0
    stopped: list[str] = field(default_factory=list)  # one line each
    broken: list[str] = field(default_factory=list)  # `current` neither old nor new, or damaged: must stay empty
    old: int = 0
    new: int = 0
    max_resent_chunks: int = 0
    resumes: int = 0
    line_drops: int = 0
    seconds: float = 0.0
    by_kind: dict = field(default_factory=dict)
    by_phase: dict = field(default_factory=dict)  # transfer (uploads, probes, login) / install (install.sh)
    after_stop: int = 0            # flashes that followed a stopped one (under faults too)
    after_stop_completed: int = 0
    final: str = ""                # a last flash without faults: "completed" or its one line

    @property
    def ok(self) -> bool:
        return not self.broken and self.max_resent_chunks <= 1 and all("\n" not in s for s in self.stopped) \
            and self.final in ("", "completed")

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def report(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items()))
        phases = ", ".join(f"{v} {k}" for k, v in sorted(self.by_phase.items()))
        lines = [f"faults injected: {self.faults} ({kinds}; {phases or 'none'}) over {self.runs} flashes",
                 f"flashes completed {self.completed}, stopped with one line {len(self.stopped)}; afterwards "
                 f"current = old {self.old}, new {self.new}, broken {len(self.broken)}",
                 f"after a stopped flash the next one completed {self.after_stop_completed} of {self.after_stop}"
                 + (f"; a last flash without faults: {self.final}" if self.final else ""),
                 f"line drops {self.line_drops}, resumed uploads {self.resumes}, most whole chunks resent after a "
                 f"resume: {self.max_resent_chunks}", f"time: {self.seconds:.0f} s",
                 "result: " + ("ok" if self.ok else "FAILED")]
        return "\n".join(lines + [f"stopped: {s}" for s in self.stopped[:5]] + [f"BROKEN: {b}" for b in self.broken])


def flash_soak(bundles: list, public_key: Path, runs: int | None = None, faults: int | None = None,
               baud: int = 115200, seed: int = 1, gap: float = 2.0, root: Path | None = None,
               bar: bool = True, device: SerialTestDevice | None = None, user: str | None = None,
               final_flash: bool = False, install_only: bool = False) -> FlashSoakResult:
    """Flash two bundles in turn onto a serial test device while random faults hit the line (uploads, install.sh
    and status alike), for `runs` flashes or until `faults` faults; after each flash the device's `current`
    must be the old or the new release, complete and passing selftest. `device`: one that already runs one of
    the bundles (else a new one gets bundles[0] first, on a fast line without faults). `install_only`: faults
    only while the device's install.sh runs (its command, answers and status), `gap` apart on average."""
    with tempfile.TemporaryDirectory(prefix="alog-serial-flash-soak-", dir=root) as tmp:
        if device is not None:
            return _flash_soak(device, bundles, public_key, runs, faults, baud, seed, gap, bar, user, final_flash,
                               install_only)
        with SerialTestDevice(Path(tmp) / "device", FACTORY_BAUD, seed=seed) as dev:
            tr = SerialTransport(dev.url, FACTORY_BAUD, compress="gz", workdir=str(dev.root / "agent"))
            try:
                flash.flash(tr, bundles[0], str(dev.root / "opt" / "alog-edge"), trust_key=public_key)
            finally:
                tr.close()
            dev.fault(f"baud {baud}")
            return _flash_soak(dev, bundles, public_key, runs, faults, baud, seed, gap, bar, None, final_flash,
                               install_only)


def _flash_soak(dev: SerialTestDevice, bundles: list, public_key: Path, runs: int | None, faults: int | None,
                baud: int, seed: int, gap: float, bar: bool, user: str | None = None,
                final_flash: bool = False, install_only: bool = False) -> FlashSoakResult:
    from .flash_soak import check_device
    result = FlashSoakResult()
    versions = {b.version: i for i, b in enumerate(bundles)}
    prefix, workdir = dev.root / "opt" / "alog-edge", str(dev.root / "agent")
    current = versions[check_device(prefix, set(versions))]
    last_stopped = False
    t0 = time.monotonic()
    with FaultInjector(dev, gap, seed, faults or 10 ** 9, result) as injector, \
            tqdm(total=runs or faults, desc="flashes" if runs else "faults", disable=not bar) as pbar:
        while (runs is None or result.runs < runs) and (faults is None or result.faults < faults):
            target = 1 - current
            result.runs += 1
            if not install_only:
                injector.armed.set()
            tr = None
            follows_stop, last_stopped = last_stopped, False
            result.after_stop += follows_stop
            try:
                tr = SerialTransport(dev.url, baud, user=user, workdir=workdir, reconnects=20)
                _watch_phase(tr, injector, arm=install_only)
                flash.flash(tr, bundles[target], str(prefix))
                result.completed += 1
                result.after_stop_completed += follows_stop
            except AlogError as exc:
                result.stopped.append(f"error: {exc}")
                last_stopped = True
            finally:
                injector.armed.clear()
                injector.phase = "transfer"
                if tr is not None:
                    _collect(result, tr)
            try:
                current = versions[check_device(prefix, set(versions))]
                result.new += current == target
                result.old += current != target
            except AlogError as exc:
                result.broken.append(str(exc))
                break
            pbar.n = result.runs if runs else min(result.faults, faults)
            pbar.refresh()
    if final_flash and not result.broken:
        result.final = _final_flash(dev, bundles, 1 - current, baud, user, prefix, workdir, set(versions))
    result.seconds = time.monotonic() - t0
    return result


def _final_flash(dev: SerialTestDevice, bundles: list, target: int, baud: int, user: str | None, prefix: Path,
                 workdir: str, versions: set) -> str:
    """After the faults, the next flash (none on the line now) must complete and leave the new release."""
    from .flash_soak import check_device
    tr = None
    try:
        tr = SerialTransport(dev.url, baud, user=user, workdir=workdir, reconnects=20)
        flash.flash(tr, bundles[target], str(prefix))
        return "completed" if check_device(prefix, versions) == bundles[target].version else "did not switch"
    except AlogError as exc:
        return f"error: {exc}"
    finally:
        if tr is not None:
            try:
                tr.close()
            except AlogError:
                pass


def _watch_phase(tr: SerialTransport, injector: FaultInjector, arm: bool = False) -> None:
    """Tell the injector while the device's install.sh runs, so faults count by phase (`arm`: and fire then only)."""
    run = tr.run

    def watched(command: str, timeout: float):
        installing = " install --staged " in command
        injector.phase = "install" if installing else "transfer"
        if arm and installing:
            injector.armed.set()
        try:
            return run(command, timeout)
        finally:
            injector.phase = "transfer"
            if arm:
                injector.armed.clear()
    tr.run = watched  # type: ignore[method-assign]
