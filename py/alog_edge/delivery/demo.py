"""The end of `invoke demo`: bundle for x86_64, install into a fresh prefix, run the installed
`alog-edge run` on the held-out log, then a model-only update (models converted again at another
opset: only model files change and only they are sent) and a rollback, with `status` around each.

The demo signs with a key made in a temporary folder (removed at the end): it never touches the
per-user default key.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from alog_edge.export import convert as export
from alog_edge.parity import harness as runtime
from ..errors import AlogError
from alog_edge.formats.vocab import Vocab
from . import bundle as b
from . import keys, local

log = logging.getLogger(__name__)


@dataclass
class DeliveryDemo:
    lines: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return "\n".join(self.lines)


# The demo's serial line runs at 921600 baud to stay short; `invoke serial-bench` and the README give the
# 115200 figures (the demo models' update takes about 100 s there).
SERIAL_DEMO_BAUD = 921600


def _state(status: dict[str, Any]) -> str:
    return f"current {status.get('current')}, previous {status.get('previous')}"


def run(workdir: Path, model_dir: Path, convert_request: export.ConvertRequest, test_log: Path,
        frame: pd.DataFrame, voc: Vocab, label_files: Sequence[Path], events: Path | None, table: str,
        timed: Callable[[str, Callable[[], Any]], Any]) -> DeliveryDemo:
    """`table`: the evaluation the build's runtime printed; the installed one must print the same."""
    out = DeliveryDemo()
    bundles, prefix = workdir / "bundles", workdir / "device"
    for folder in (bundles, prefix):
        if folder.exists():
            shutil.rmtree(folder)
    with tempfile.TemporaryDirectory(prefix="alog-edge-demo-key.") as tmp:
        pair = keys.generate(Path(tmp) / "demo.key")
        first = timed("bundle x86_64", lambda: b.build(b.BundleRequest(
            "x86_64", key=pair.secret, models=model_dir, out=bundles / "first.tar.gz")))
        before = local.status(prefix)
        installed = timed("install", lambda: local.install(first.path, prefix, trust_key=pair.public))
        out.lines += [
            f"Delivery: {first.path.name} signed by {first.key_id}: {first.archive_bytes / 1e6:.1f} MB "
            f"(runtime {first.parts['runtime']['bytes'] / 1e6:.1f} MB, models {first.parts['models']['bytes'] / 1e6:.1f} MB), "
            f"built in {first.seconds:.1f}s",
            f"  install into {prefix}: {installed.message} in {installed.seconds:.1f}s; "
            f"status {_state(before)} -> {_state(installed.status)}"]
        current = prefix / "current"
        c = timed("installed alog-edge run", lambda: runtime.run_c(current / "bin" / "alog-edge", current / "models",
                                                                     test_log))
        same = runtime.c_report(c, frame, label_files, events).text() == table
        if not same:
            raise AlogError(current, "the installed alog-edge run gives another evaluation than the build's")
        out.lines.append(f"  the installed `{current}/bin/alog-edge run` on the held-out part prints the same table")

        new_models = workdir / "models" / "onnx-opset17"
        timed("convert (opset 17)", lambda: export.convert(export.ConvertRequest(
            **{**convert_request.__dict__, "output_dir": new_models, "opset": 17})))
        second = timed("bundle update", lambda: b.build(b.BundleRequest(
            "x86_64", key=pair.secret, models=new_models, out=bundles / "update.tar.gz")))
        updated = timed("model-only update", lambda: local.update(second.path, prefix))
        out.lines.append(
            f"  model-only update to {second.version}: {updated.sent} of {len(second.files)} files sent "
            f"({', '.join(updated.sent_paths)}), the other {len(second.files) - updated.sent} hard-linked on the device; "
            f"{updated.result.seconds:.1f}s; status {_state(installed.status)} -> {_state(updated.result.status)}")
        from . import serial_demo  # the same update over a paced serial console (busybox ash on a pty)
        ser = timed("serial model-only update", lambda: serial_demo.model_only_update(
            first.path, second.path, pair.public, workdir / "serial", baud=SERIAL_DEMO_BAUD,
            install_first=lambda p: local.install(first.path, p, trust_key=pair.public)))
        out.lines.append(ser.text())
        rolled = timed("rollback", lambda: local.rollback(prefix))
        out.lines.append(f"  rollback: {rolled.seconds:.1f}s; status {_state(updated.result.status)} -> "
                         f"{_state(rolled.status)}")
        out.summary = {"bundle": first.summary(), "update": second.summary(), "install_seconds":
                       round(installed.seconds, 2), "update_seconds": round(updated.result.seconds, 2),
                       "update_files_sent": updated.sent, "rollback_seconds": round(rolled.seconds, 2),
                       "same_table": same, "status": rolled.status, "serial_update": ser.summary}
    return out
