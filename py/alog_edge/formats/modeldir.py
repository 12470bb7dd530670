"""The model directory: what convert writes and the device, bundle, bench and parity harness read.

`<model>.onnx` with its `<model>.onnx.meta.json` (the ModelSpec of each model: names, dtypes, dynamic
axes; the meta keys each model carries), `vocab.json` (C form), `parser.json` and `golden.json`
(inputs with the outputs onnxruntime gave, replayed by `alog-edge selftest` and `check_golden`).
The device's acceptance rules for these files are in `modeldir_check`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from alog_edge.errors import AlogError
from alog_edge.fileio import read_json
from alog_edge.formats import vocab as vocab_mod
from alog_edge.formats.parser_json import load_parser
from alog_edge.formats.vocab import Vocab


TOLERANCE = 1e-5


FORMAT_VERSION = 1


GOLDEN_NAME = "golden.json"
GOLDEN_SAMPLED = 256  # an output larger than this records this many elements (the largest, the smallest and
                      # spread ones): a wrong weight moves most of them, and golden.json stays small


# --- what each model looks like in ONNX ----------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    input_name: str
    input_dtype: str
    output_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]

    @property
    def file_name(self) -> str:
        return f"{self.kind}.onnx"


DEEPLOG = ModelSpec("deeplog", "input_sequence", "int64", ("predictions",),
                    {"input_sequence": {0: "batch_size", 1: "sequence_length"}, "predictions": {0: "batch_size"}})
MSCRED = ModelSpec("mscred", "input_features", "float32", ("reconstruction", "anomaly_score"),
                   {"input_features": {0: "batch_size"}, "reconstruction": {0: "batch_size"},
                    "anomaly_score": {0: "batch_size"}})
SPECS = {s.kind: s for s in (DEEPLOG, MSCRED)}

DEEPLOG_FIELDS = ("top_k", "seen_keys", "unk_index")
DEEPLOG_ARGS = ("num_classes", "window")
MSCRED_FIELDS = ("threshold", "broken_cell_level", "window_size", "feature_dim")


@dataclass
class CaseResult:
    name: str
    shape: tuple[int, ...]
    max_abs_diff: float


@dataclass
class Case:
    name: str
    array: np.ndarray


def first_line(exc: BaseException, limit: int = 200) -> str:
    text = (exc.message if isinstance(exc, AlogError) else str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:limit] if text else ''}"


def ort_session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: its errors come back as exceptions, its log lines would precede ours
    options.intra_op_num_threads = 1  # as the device runs (an int8 LSTM's results depend on the thread count)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a file it cannot load
        reason = re.sub(r"^.*Load model from \S+ failed:", "", str(exc).strip())  # the path is named already
        raise AlogError(path, f"onnxruntime cannot load it: {reason.splitlines()[0][:200]}") from None


def ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


# what the device needs besides the graph: how to bucket counts (`counts`), and what was learned from data
MSCRED_META_KEYS = ("scales", "steps", "gap", "score_scales", "counts", "normalisation", "broken_cell_levels",
                    "val_score_max")


# --- golden.json -----------------------------------------------------------------------------


def _tensor_json(arr: np.ndarray) -> dict[str, Any]:
    # float32 -> Python float is exact, so the JSON value round-trips to the same float32; whole counts
    # are written as integers (the same value, a third of the text)
    flat = arr.reshape(-1)
    data = flat.astype(np.int64).tolist() if arr.dtype == np.float32 and np.array_equal(flat, np.round(flat)) \
        and np.abs(flat).max(initial=0) < 2 ** 24 else flat.tolist()
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "data": data}


def sampled_indices(arr: np.ndarray, count: int = GOLDEN_SAMPLED) -> np.ndarray:
    """Flat positions to record of a large output: its extremes and evenly spread ones."""
    flat = arr.reshape(-1)
    spread = np.linspace(0, flat.size - 1, num=count - 2).round().astype(np.int64)
    return np.unique(np.concatenate([spread, [int(flat.argmax()), int(flat.argmin())]]))


def _output_json(arr: np.ndarray) -> dict[str, Any]:
    if arr.size <= GOLDEN_SAMPLED:
        return _tensor_json(arr)
    idx = sampled_indices(arr)
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "indices": idx.tolist(),
            "data": arr.reshape(-1)[idx].tolist()}


def golden_entries(path: Path, spec: ModelSpec, cases: Sequence[Case]) -> list[dict[str, Any]]:
    session = ort_session(path)
    entries = []
    for case in cases:
        outs = session.run(list(spec.output_names), {spec.input_name: case.array})
        outputs = {}
        for name, arr in zip(spec.output_names, outs):
            if not np.isfinite(arr).all():
                raise AlogError(path.name, f"onnxruntime gives non-finite {name} on {case.name}")
            outputs[name] = _output_json(arr)
        entries.append({"model": spec.file_name, "name": case.name,
                        "inputs": {spec.input_name: _tensor_json(case.array)}, "outputs": outputs})
    return entries


def write_golden(out_dir: Path, entries: list[dict[str, Any]]) -> None:
    golden = {"format_version": FORMAT_VERSION, "tolerance": TOLERANCE,
              "notes": "outputs onnxruntime gave for these inputs; compare with max abs difference <= tolerance "
                       "(an output with indices recorded only the values at those flat positions)",
              "onnxruntime": ort_version(), "cases": entries}
    (out_dir / GOLDEN_NAME).write_text(json.dumps(golden, separators=(",", ":")) + "\n", encoding="utf-8")


# --- running a model directory from Python (the demo, tests) -------------------------------


class OnnxModel:
    """One exported model with its meta.json, run by onnxruntime."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        meta_path = self.path.with_name(self.path.name + ".meta.json")
        self.meta: dict[str, Any] = read_json(meta_path) if meta_path.exists() else {}
        self.session = ort_session(self.path)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: x})))


def open_model(model_dir: Path, kind: str) -> OnnxModel:
    path = Path(model_dir) / SPECS[kind].file_name
    if not path.exists():
        raise AlogError(path, f"no {kind} model in this model directory")
    return OnnxModel(path)


def run_onnx(model_dir: Path, kind: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run `<model_dir>/<kind>.onnx` on one input: int64 key windows (deeplog) or float32 counts (mscred)."""
    return open_model(model_dir, kind).run(np.ascontiguousarray(x, dtype=SPECS[kind].input_dtype))


class OnnxDeepLog:
    """Callable like the torch DeepLog (tensor in, logits tensor out), so `evaluate.deeplog_verdicts`
    can score with the exported model."""

    def __init__(self, model_dir: Path) -> None:
        self.model = open_model(model_dir, "deeplog")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.model.run(x.numpy().astype(np.int64))["predictions"])


@dataclass
class ModelDir:
    path: Path
    vocab: Vocab
    parser: dict[str, Any]
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_model_dir(model_dir: Path) -> ModelDir:
    """Read back vocab.json (C form), parser.json and every meta.json of a model directory."""
    model_dir = Path(model_dir)
    voc = vocab_mod.load_c_form(model_dir / "vocab.json")
    meta = {p.name.removesuffix(".onnx.meta.json"): read_json(p) for p in sorted(model_dir.glob("*.onnx.meta.json"))}
    return ModelDir(model_dir, voc, load_parser(model_dir / "parser.json"), meta)


def _golden_case(model_dir: Path, case: dict[str, Any], models: dict[str, OnnxModel],
                 tolerance: float) -> CaseResult:
    model = models.setdefault(case["model"], OnnxModel(model_dir / case["model"]))
    (_, given), = case["inputs"].items()
    x = np.asarray(given["data"], dtype=given["dtype"]).reshape(given["shape"])
    got = model.run(x)
    worst = 0.0
    for out_name, want in case["outputs"].items():
        if list(got[out_name].shape) != list(want["shape"]):
            raise AlogError(model_dir / GOLDEN_NAME, f"{case['model']} {case['name']}: {out_name} has shape "
                                                     f"{list(got[out_name].shape)}, expected {want['shape']}")
        expected = np.asarray(want["data"], dtype=want["dtype"])
        actual = got[out_name].reshape(-1)
        actual = actual[np.asarray(want["indices"], np.int64)] if "indices" in want else actual
        diff = float(np.max(np.abs(actual.astype(np.float64) - expected.reshape(-1)), initial=0.0))
        if not diff <= tolerance:
            raise AlogError(model_dir / GOLDEN_NAME, f"{case['model']} {case['name']}: {out_name} differs by "
                                                     f"{diff:.3g} (> {tolerance:g})")
        worst = max(worst, diff)
    return CaseResult(f"{case['model']}: {case['name']}", tuple(x.shape), worst)


def check_golden(model_dir: Path) -> list[CaseResult]:
    """Replay golden.json with onnxruntime (what `alog-edge selftest` does on the device);
    AlogError when an output moved beyond the file's tolerance."""
    model_dir = Path(model_dir)
    path = model_dir / GOLDEN_NAME
    golden = read_json(path)
    models: dict[str, OnnxModel] = {}
    try:
        tolerance = float(golden["tolerance"])
        return [_golden_case(model_dir, case, models, tolerance) for case in golden["cases"]]
    except (KeyError, TypeError, ValueError) as exc:  # a hand-edited or foreign file
        raise AlogError(path, f"malformed golden.json ({first_line(exc, 120)})") from None
