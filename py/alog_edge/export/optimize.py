"""Optimised graphs saved at convert time, so that a device loads them without optimising again.

For each `<model>.onnx` of a model directory, onnxruntime optimises the graph once (level
"extended": constant folding and node fusions that every CPU build of onnxruntime runs, without the
layout changes of level "all", which depend on the CPU's vector width) and saves it as
`<model>.opt-<FNV-1a 64 of the model file, hex>.onnx`, so that it belongs to exactly that model file
(a model replaced by hand no longer finds it). The runtime loads it, when it is there, with graph optimisation off
(MSCRED: about 19 ms of CPU instead of 72 ms). The saved graph is kept only when it reproduces every
golden.json output of its model within the file's tolerance, run exactly as the device runs it.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)


def fnv1a64(data: bytes) -> int:
    """FNV-1a 64, as the runtime's ae_fnv1a."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def optimized_path(model: Path) -> Path:
    """`deeplog.onnx` -> `deeplog.opt-<hash of deeplog.onnx>.onnx` beside it."""
    return model.with_name(f"{model.name.removesuffix('.onnx')}.opt-{fnv1a64(model.read_bytes()):016x}.onnx")


def _session(path: Path, level: Any, save_to: Path | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = level
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _worst_difference(path: Path, cases: Sequence[dict[str, Any]]) -> float:
    import onnxruntime as ort

    session = _session(path, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)  # as the device loads it
    worst = 0.0
    for case in cases:
        (name, given), = case["inputs"].items()
        x = np.asarray(given["data"], dtype=given["dtype"]).reshape(given["shape"])
        wanted = list(case["outputs"])
        for out_name, got in zip(wanted, session.run(wanted, {name: x})):
            want = case["outputs"][out_name]
            if list(got.shape) != list(want["shape"]):
                return float("inf")
            expected = np.asarray(want["data"], dtype=want["dtype"]).reshape(-1)
            actual = got.reshape(-1)
            if "indices" in want:  # a large output records the values at these flat positions only
                actual = actual[np.asarray(want["indices"], np.int64)]
            worst = max(worst, float(np.max(np.abs(actual.astype(np.float64) - expected), initial=0.0)))
    return worst


def save_optimized(model: Path, golden_cases: Sequence[dict[str, Any]], tolerance: float) -> Path | None:
    """Write `<model>.opt-<hash>.onnx` (temporary file beside, then rename) when it reproduces the model's
    golden cases; None, with a warning, when it does not (the device then optimises at load)."""
    import onnxruntime as ort

    target = optimized_path(model)
    tmp = target.with_name(target.name + ".tmp")
    try:
        _session(model, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, save_to=tmp)
        cases = [c for c in golden_cases if c.get("model") == model.name]
        worst = _worst_difference(tmp, cases)
        if not worst <= tolerance:
            log.warning("%s: the optimised graph differs from golden.json by %.3g (> %g); not kept",
                        model.name, worst, tolerance)
            return None
        os.replace(tmp, target)
        log.info("%s: optimised graph saved as %s (golden cases agree within %.3g)", model.name,
                 target.name, worst)
        return target
    finally:
        tmp.unlink(missing_ok=True)
