"""`convert --quantize int8`: DeepLog's weights in int8 (onnxruntime's dynamic quantisation, which has
an LSTM operator), kept only when its verdicts agree with the float32 model's on every validation window.

The validation windows are the real ones of sequences.parquet (every (h keys, next key) pair, up to a
bound, spread over the file). A verdict is the DeepLog rule of the model's meta.json (top-g rank or
probability threshold) on the key that followed; unseen keys are flagged by both models alike and are
not counted; verdicts must agree at batch 256 and one window at a time (activations are quantised per call).
The int8 graph is saved with onnxruntime's fusions applied, so the device computes what golden.json records.
The speed-up is windows/s of both models on one thread at batch 256, by CPU time.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data import dataset
from ..models import deeplog_rule
from ..errors import AlogError

log = logging.getLogger(__name__)

MAX_WINDOWS = 20000
CHOICES = ("none", "int8")


@dataclass
class QuantizeReport:
    windows: int
    agreement: float           # share of windows with the same verdict
    disagreements: int
    fp32_windows_per_s: float
    int8_windows_per_s: float
    speedup: float
    kept: bool


def check_choice(value: str | None) -> str:
    """The --quantize value: none (default) or int8."""
    choice = (value or "none").lower()
    if choice not in CHOICES:
        raise AlogError("--quantize", f"must be one of {', '.join(CHOICES)} (got {value!r})")
    return choice


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _fused(src: Path, dst: Path) -> None:
    """The int8 graph with onnxruntime's fusions applied and saved (level "extended", as optimize.py
    saves graphs), so that optimising it again at load changes nothing and golden.json holds."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def _logits(sess: Any, x: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([sess.run(None, {"input_sequence": x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def flagged(logits: np.ndarray, y: np.ndarray, rule: deeplog_rule.DeepLogRule) -> np.ndarray:
    """The rule's verdict on each window's next key (True: anomalous)."""
    target = logits[np.arange(len(y)), y][:, None]
    rank = (logits > target).sum(axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(shifted[np.arange(len(y)), y]) / np.exp(shifted).sum(axis=1)
    return rule.flags(rank, prob)


def _rate(sess: Any, x: np.ndarray, seconds: float = 0.5, batch: int = 256) -> float:
    chunk = np.ascontiguousarray(np.resize(x, (batch, x.shape[1])))
    sess.run(None, {"input_sequence": chunk})
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        sess.run(None, {"input_sequence": chunk})
        n += batch
    return n / (time.process_time() - t0)


def validation_windows(sequences: Path, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    rule = deeplog_rule.from_meta(meta)
    seqs = dataset.read_sequences(sequences)
    w = dataset.windows([list(k) for k in seqs["keys"]], rule.window, rule.start_key, rule.end_key)
    seen = np.isin(w.y, np.fromiter(rule.seen_keys, np.int64, len(rule.seen_keys)))
    x, y = w.x[seen], w.y[seen]
    if len(x) == 0:
        raise AlogError(sequences, "no window with a seen next key to compare the int8 model on")
    pick = np.unique(np.linspace(0, len(x) - 1, num=min(MAX_WINDOWS, len(x))).round().astype(int))
    return np.ascontiguousarray(x[pick]), y[pick]


def quantize_deeplog(model: Path, sequences: Path | None) -> QuantizeReport:
    """Quantise `model` (deeplog.onnx) in place when the int8 verdicts agree on every validation window;
    its meta.json gets the new sha256 and the report either way."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if sequences is None:
        raise AlogError("--quantize", "int8 needs validation data: pass --sequences (sequences.parquet)")
    meta_path = model.with_name(model.name + ".meta.json")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    x, y = validation_windows(sequences, meta)
    raw, tmp = model.with_name(model.stem + ".int8raw.tmp.onnx"), model.with_name(model.stem + ".int8.tmp.onnx")
    try:
        quantize_dynamic(str(model), str(raw), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["LSTM", "MatMul", "Gemm"])
        _fused(raw, tmp)
        fp32, int8 = _session(model), _session(tmp)
        rule = deeplog_rule.from_meta(meta)
        want = flagged(_logits(fp32, x), y, rule)
        # Activations are quantised per call: a window's result may depend on the rest of its batch, so the
        # verdicts must agree both in batches (as `run` scores a file) and one by one (as `--follow` does).
        same = (want == flagged(_logits(int8, x), y, rule)) & (want == flagged(_logits(int8, x, 1), y, rule))
        r32, r8 = _rate(fp32, x), _rate(int8, x)
        report = QuantizeReport(windows=len(x), agreement=round(float(same.mean()), 6),
                                disagreements=int((~same).sum()), fp32_windows_per_s=round(r32),
                                int8_windows_per_s=round(r8), speedup=round(r8 / r32, 3), kept=bool(same.all()))
        if report.kept:
            os.replace(tmp, model)
            import hashlib
            meta["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
        meta["quantization"] = {"requested": "int8", **asdict(report)}
        meta_tmp = meta_path.with_name(meta_path.name + ".tmp")
        meta_tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        os.replace(meta_tmp, meta_path)
    finally:
        raw.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    log.info("deeplog int8: %s; verdicts agree on %.4f%% of %d windows (%d differ), %.2fx the float32 speed",
             "kept" if report.kept else "not kept (float32 stays)", 100 * report.agreement, report.windows,
             report.disagreements, report.speedup)
    return report
