"""The board part of `invoke demo`: boot the emulated aarch64 board, flash the aarch64 bundle over SSH,
send a model-only update over the board's serial console, run the board's detector on a slice of the
held-out log, compare it with the x86_64 runtime here, and power the board off."""
from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alog_edge.export import convert as export
from alog_edge.toolchain import build as native
from ..errors import AlogError
from . import board, bundle, flash, keys

log = logging.getLogger(__name__)

PREFIX = "/opt/alog-edge"
SLICE_LINES = 600       # emulation runs ~150 lines/s: a slice around the first labelled anomaly
TOLERANCE = 1e-4        # aarch64 vs x86_64 onnxruntime probabilities and scores
SERIAL_BAUD = 921600    # a real UART rate; qemu's socket chardev carries it with flow control
SHOWN = 12              # anomalies printed


@dataclass
class BoardDemo:
    timings: dict[str, float] = field(default_factory=dict)
    flashes: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    verdicts: int = 0
    same_as_x86_64: bool = False
    max_difference: float = 0.0
    slice: str = ""
    first_line: int = 1     # line number in the held-out log of the slice's first line

    def summary(self) -> dict[str, Any]:
        return {"timings_s": self.timings, "flashes": self.flashes, "anomalies": len(self.anomalies),
                "verdicts": self.verdicts, "same_as_x86_64": self.same_as_x86_64,
                "max_difference": self.max_difference, "slice": self.slice}

    def text(self) -> str:
        t = self.timings
        lines = [f"aarch64 board (qemu -M virt): SSH after {t.get('boot to SSH', 0):.0f}s"]
        for f in self.flashes:
            lines.append(f"  {f['how']}: {f['kind']} {f['version_before'] or '-'} -> {f['version_after']}, "
                         f"{f['files_sent']} files, {flash.human_bytes(f['bytes_sent'])} in {f['seconds']:.0f}s, "
                         f"selftest {f['selftest'] or 'unknown'}")
        lines.append(f"  alog-edge run on the board, {self.slice}: {len(self.anomalies)} anomalies in "
                     f"{t.get('run', 0):.0f}s; {self.verdicts} verdicts "
                     + ("identical to the x86_64 runtime here" if self.same_as_x86_64 else "DIFFER from x86_64")
                     + f" (largest probability difference {self.max_difference:.1e})")
        for e in self.anomalies[:SHOWN]:
            if e["model"] == "deeplog":
                what = f"{e['reason']}" + (f" rank {e['rank']} p={e['probability']:.2e}" if e["rank"] is not None else "")
                text = e["template"] or "(unknown) " + e["line"].split(": ", 1)[-1]
                lines.append(f"    line {e['line_no'] + self.first_line - 1:>5} {e['host']} {e['session']}: {what}: "
                             f"{text[:90]}")
            else:
                lines.append(f"    window {e['slot_start']} {e['host']}: MSCRED score {e['score']:.0f} > "
                             f"{e['threshold']:.0f}")
        if len(self.anomalies) > SHOWN:
            lines.append(f"    ... {len(self.anomalies) - SHOWN} more")
        return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((board.HOST, 0))
        return s.getsockname()[1]


def model_only_update(model_dir: Path, workdir: Path, out: Path) -> Path:
    """A second model directory that differs from model_dir in DeepLog only (re-exported at opset 17)."""
    staging = workdir / "deeplog-opset17"
    export.convert(export.ConvertRequest(vocab=workdir / "vocab.json", parser=workdir / "parser.json",
                                         output_dir=staging, deeplog_model=workdir / "deeplog.pth",
                                         sequences=workdir / "sequences.parquet", opset=17))
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(model_dir, out)
    for name in ("deeplog.onnx", "deeplog.onnx.meta.json"):
        shutil.copy2(staging / name, out / name)
    shutil.rmtree(staging)
    return out


def anomaly_slice(test_log: Path, line_labels: Path, out: Path, lines: int = SLICE_LINES) -> tuple[str, int]:
    """`lines` lines of the held-out log starting a little before its first labelled anomalous line:
    (description, number of its first line)."""
    first = next((int(row.split(",")[0]) for row in line_labels.read_text().splitlines()[1:]
                  if row.split(",")[1] == "1"), 1)
    start = max(1, first - lines // 4)
    with open(test_log) as f:
        chosen = [line for n, line in enumerate(f, 1) if start <= n < start + lines]
    out.write_text("".join(chosen))
    return f"lines {start}-{start + len(chosen) - 1} of {test_log.name}", start


def _verdicts(jsonl: bytes) -> dict[tuple, dict]:
    rows = {}
    for raw in jsonl.splitlines():
        ev = json.loads(raw)
        key = (ev["model"], ev.get("session"), ev.get("line_no")) if ev["model"] == "deeplog" else \
            (ev["model"], ev.get("host"), ev.get("bucket"))
        rows[key] = ev
    return rows


def compare(board_out: bytes, here_out: bytes) -> tuple[bool, float, int]:
    """(same verdicts, largest probability/score difference, verdicts compared)."""
    got, want = _verdicts(board_out), _verdicts(here_out)
    if got.keys() != want.keys():
        return False, float("inf"), len(want)
    worst, same = 0.0, True
    for key, w in want.items():
        g = got[key]
        same &= g["anomalous"] == w["anomalous"] and g.get("reason") == w.get("reason")
        for name in ("probability", "score"):
            if w.get(name) is not None:
                worst = max(worst, abs(g[name] - w[name]))
    return same and worst <= TOLERANCE, worst, len(want)


def run(repo: Path, workdir: Path, model_dir: Path, test_log: Path, line_labels: Path) -> BoardDemo:
    """The board part of the demo; the board is powered off at the end whatever happens."""
    from .serial_transport import SerialTransport
    from .ssh import HostSpec, SshOptions, SshTransport

    demo = BoardDemo()
    started = time.monotonic()

    def mark(name: str, since: float) -> float:
        now = time.monotonic()
        demo.timings[name] = round(now - since, 1)
        return now

    runtime = native.build_runtime(repo, "aarch64", quiet=True)
    dist = workdir / "dist"
    first = bundle.build(bundle.BundleRequest("aarch64", models=model_dir, runtime=runtime, repo=repo,
                                              out=dist / "first-aarch64.tar.gz"))
    second = bundle.build(bundle.BundleRequest(
        "aarch64", key=first.key, runtime=runtime, repo=repo, out=dist / "model-update-aarch64.tar.gz",
        models=model_only_update(model_dir, workdir, dist / "models-update")))
    t = mark("bundles", started)
    info = board.start(repo, workdir, ssh_port=_free_port(), serial_port=_free_port())
    try:
        t = mark("boot to SSH", t)
        files = board.BoardFiles(workdir.resolve())
        # a clean device each run: the disk image keeps what the last demo installed
        board.ssh_run(workdir, f"rm -rf {PREFIX}", timeout=60)
        host = HostSpec("root", board.HOST, int(info["ssh"].rsplit(":", 1)[1]))
        ssh = SshTransport(host, SshOptions(known_hosts=files.known_hosts, identity=files.identity))
        try:
            res = flash.flash(ssh, first.path, PREFIX, trust_key=keys.public_path(first.key))
        finally:
            ssh.close()
        demo.flashes.append(dict(how="flash over SSH", **_flash_row(res)))
        t = mark("flash over SSH", t)
        serial = SerialTransport(info["serial"], SERIAL_BAUD)
        try:
            res = flash.flash(serial, second.path, PREFIX)
        finally:
            serial.close()
        demo.flashes.append(dict(how=f"model-only update over serial ({SERIAL_BAUD} baud)", **_flash_row(res)))
        if res.kind != "model-only":
            raise AlogError(second.path, f"expected a model-only update, the flasher planned {res.kind!r}")
        t = mark("update over serial", t)
        part = workdir / "board-slice.log"
        demo.slice, demo.first_line = anomaly_slice(test_log, line_labels, part)
        code, _, err = board.ssh_run(workdir, "cat > /tmp/slice.log", stdin=part.read_bytes())
        if code != 0:
            raise AlogError("board", f"cannot copy the slice: {err.decode(errors='replace').strip()}")
        code, out, err = board.ssh_run(workdir, f"{PREFIX}/current/bin/alog-edge run --all "
                                       f"{PREFIX}/current/models /tmp/slice.log", timeout=600)
        if code not in (0, 3):
            raise AlogError("board", f"alog-edge run failed (exit {code}): {err.decode(errors='replace').strip()}")
        t = mark("run", t)
        here = subprocess.run([str(native.build_runtime(repo, "x86_64", quiet=True) / "bin" / "alog-edge"), "run",
                               "--all", str(dist / "models-update"), str(part)], capture_output=True, timeout=600)
        if here.returncode not in (0, 3):
            raise AlogError(part, f"x86_64 alog-edge run failed: {here.stderr.decode(errors='replace').strip()}")
        demo.same_as_x86_64, demo.max_difference, demo.verdicts = compare(out, here.stdout)
        demo.anomalies = [e for e in _verdicts(out).values() if e["anomalous"]]
    finally:
        t = time.monotonic()
        board.stop(workdir)
        mark("stop", t)
    demo.timings["board part"] = round(time.monotonic() - started, 1)
    return demo


def _flash_row(res: flash.FlashResult) -> dict[str, Any]:
    return {"kind": res.kind, "version_before": res.version_before, "version_after": res.version_after,
            "files_sent": res.files_sent, "bytes_sent": res.bytes_sent, "seconds": round(res.seconds, 1),
            "selftest": res.selftest}
