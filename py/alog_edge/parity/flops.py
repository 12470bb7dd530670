"""The physical bound on DeepLog's batched throughput: floating-point operations per window (the
LSTM layers' gate products, their element-wise work, the output layer) at the single-core GFLOP/s
this machine reaches on a matrix product of the LSTM's own shape."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import AlogError

# One core's single-precision matrix product at the shape of a batched LSTM step, timed by CPU time.
_GEMM = """
import json, time, numpy as np
b, k, n = {batch}, {k}, {n}
a = np.random.default_rng(0).standard_normal((b, k), dtype=np.float32)
w = np.random.default_rng(1).standard_normal((k, n), dtype=np.float32)
a @ w
reps, t0 = 0, time.process_time()
while time.process_time() - t0 < {seconds}:
    for _ in range(50):
        a @ w
    reps += 50
print(json.dumps({{"gflops": 2.0 * b * k * n * reps / (time.process_time() - t0) / 1e9}}))
"""


def deeplog_window_flops(meta: dict[str, Any]) -> float:
    """Floating-point operations for one window of `seq_len` keys (an embedding lookup costs none)."""
    args = meta.get("model_args") or {}
    try:
        hidden, layers = int(args["hidden_size"]), int(args["num_layers"])
        embed = int(args.get("embedding_dim") or args.get("input_size") or 1)
        classes, steps = int(meta.get("num_classes") or meta["vocab_size"]), int(meta["seq_len"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AlogError("deeplog.onnx.meta.json", f"no model_args to count FLOPs from ({exc})") from None
    per_step = 0
    for layer in range(layers):
        inputs = embed if layer == 0 else hidden
        per_step += 2 * 4 * hidden * (inputs + hidden)  # the four gates' two products
        per_step += 2 * 4 * hidden + 10 * hidden        # biases, activations, cell and output update
    return float(steps * per_step + 2 * hidden * classes + classes)


def single_core_gflops(batch: int, k: int, n: int, seconds: float = 0.5) -> float:
    """GFLOP/s of numpy's float32 product (batch x k) @ (k x n) on one thread, in a process of its own."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = _GEMM.format(batch=batch, k=k, n=n, seconds=seconds)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise AlogError("numpy", f"the matrix product benchmark failed: {proc.stderr.strip()[-200:]}")
    return float(json.loads(proc.stdout)["gflops"])


def bound_rows(case: str, model_dir: Path, c_windows_per_s: float | None, batch: int) -> list[dict[str, Any]]:
    """FLOPs per window, the measured GFLOP/s and the windows/s they allow, beside the C runtime's."""
    meta_path = model_dir / "deeplog.onnx.meta.json"
    if not meta_path.exists() or not c_windows_per_s:
        return []
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    flops = deeplog_window_flops(meta)
    args = meta["model_args"]
    hidden = int(args["hidden_size"])
    gflops = single_core_gflops(batch, hidden + hidden, 4 * hidden)
    bound = gflops * 1e9 / flops
    achieved = c_windows_per_s * flops / 1e9
    row = {"case": case, "python": None, "c_advantage": None, "target": None, "met": None}
    return [{**row, "figure": "DeepLog MFLOP per window", "unit": "MFLOP", "c": round(flops / 1e6, 3)},
            {**row, "figure": "sgemm, 1 core (LSTM shape)", "unit": "GFLOP/s", "c": round(gflops, 2)},
            {**row, "figure": "DeepLog achieved", "unit": "GFLOP/s", "c": round(achieved, 2)},
            {**row, "figure": "DeepLog windows, FLOPs bound", "unit": "windows/s", "c": round(bound),
             "c_advantage": round(c_windows_per_s / bound, 3)}]
