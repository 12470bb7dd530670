"""convert: trained checkpoints -> the model directory the device runs (ONNX + meta + vocab + parser + golden).

The models are exported with the legacy TorchScript exporter, checked against torch with onnxruntime
(always on one batch; on many shapes and real data with `validate`), optionally simplified
(`portable`), and the whole directory is built beside its final place and renamed in at the end.
The `OnnxModel`/`run_onnx`/`check_golden` helpers run a finished model directory from Python.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from . import __version__, checkpoint, dataset, parse
from . import vocab as vocab_mod
from .errors import AlogError
from . import modeldir_check
from .fileio import AtomicDir, read_json, sha256_file
from .vocab import Vocab

log = logging.getLogger(__name__)

DEFAULT_OPSET = 11
TOLERANCE = 1e-5
TRACE_BATCH = 2  # a size-1 axis would be frozen into the traced graph
FORMAT_VERSION = 1
LOG_NAME = "convert.log"
GOLDEN_NAME = "golden.json"
GOLDEN_SAMPLED = 256  # an output larger than this records this many elements (the largest, the smallest and
                      # spread ones): a wrong weight moves most of them, and golden.json stays small
VALIDATE_BATCHES = (1, 3, 64)
REAL_WINDOWS = 256  # real DeepLog windows checked under `validate`
REAL_COUNT_WINDOWS = 64  # real MSCRED windows: each is a whole ConvLSTM run, far dearer than a DeepLog window


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


# --- request and result ----------------------------------------------------------------------

@dataclass
class ConvertRequest:
    vocab: Path                         # training-form vocab.json
    parser: Path                        # parser.json from parse, copied as is
    output_dir: Path                    # the model directory, replaced whole on success
    deeplog_model: Path | None = None
    mscred_model: Path | None = None
    sequences: Path | None = None       # sequences.parquet: real DeepLog windows for validation and golden
    counts: Path | None = None          # counts.parquet: real MSCRED count windows for validation and golden
    seq_len: int | None = None          # default: the checkpoint's window h
    feature_dim: int | None = None      # default: the checkpoint's; must be vocab size + 1
    window_size: int | None = None      # default: the checkpoint's
    opset: int = DEFAULT_OPSET
    portable: bool = False
    validate: bool = False
    session_idle: float | None = None   # seconds without a line that end a DeepLog session on the device
    closing_templates: Sequence[str] = ()  # templates (vocab strings) that end their session on the device


@dataclass
class CaseResult:
    name: str
    shape: tuple[int, ...]
    max_abs_diff: float


@dataclass
class Validation:
    onnx_file: str
    cases: list[CaseResult]
    tolerance: float = TOLERANCE

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.cases), default=0.0)


@dataclass
class ModelReport:
    kind: str
    file: str
    exporter: str
    nodes_plain: int
    nodes_portable: int | None
    simplifier: str | None
    validation: Validation
    export_seconds: float
    simplify_seconds: float
    validate_seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass
class FileReport:
    name: str
    size: int
    sha256: str
    nodes: int | None = None
    opset: int | None = None


@dataclass
class ConvertResult:
    output_dir: Path
    opset: int
    portable: bool
    validated: bool
    models: list[ModelReport]
    files: list[FileReport]
    notes: list[str]
    seconds: float


# --- capturing the exporter's chatter --------------------------------------------------------

@contextlib.contextmanager
def _fd_redirect(fd: int, target: int) -> Iterator[None]:
    try:
        saved = os.dup(fd)
    except OSError:  # no such descriptor (closed stdio): nothing to hide
        yield
        return
    try:
        os.dup2(target, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@contextlib.contextmanager
def quiet_into(log_file: Path) -> Iterator[None]:
    """Keep the exporter's deprecation and tracer warnings, and anything C++ code prints, out of
    the user's view but in `log_file`."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with open(log_file, "ab") as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with _fd_redirect(1, sink.fileno()), _fd_redirect(2, sink.fileno()):
                yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            sink.flush()
            for w in caught:
                line = warnings.formatwarning(w.message, w.category, w.filename, w.lineno, None)
                sink.write(line.encode("utf-8", "replace"))


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """The models and batches here are tiny: a thread pool only costs (100x on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _log_line(log_file: Path, text: str) -> None:
    with open(log_file, "a", encoding="utf-8") as handle:
        handle.write(text.rstrip("\n") + "\n")


# --- checks before anything is exported ----------------------------------------------------

def check_feature_dim(feature_dim: int | None, voc: Vocab, vocab_path: Path) -> None:
    if feature_dim is not None and feature_dim != voc.num_classes:
        raise AlogError(vocab_path, f"--feature-dim {feature_dim} disagrees with the vocab: {voc.size} templates "
                                    f"+ unknown = {voc.num_classes} features")


def _missing(payload: dict[str, Any], fields: Sequence[str], args: Sequence[str] = ()) -> list[str]:
    model_args = payload.get("model_args")
    missing = [f for f in fields if f not in payload]
    if not isinstance(model_args, dict):
        return missing + ["model_args"]
    return missing + [f"model_args.{a}" for a in args if a not in model_args]


def check_deeplog_payload(payload: dict[str, Any], voc: Vocab, path: Path, vocab_path: Path) -> None:
    missing = _missing(payload, DEEPLOG_FIELDS, DEEPLOG_ARGS)
    if missing:
        raise AlogError(path, f"checkpoint lacks {', '.join(missing)}; retrain with `invoke train-deeplog`")
    classes = int(payload["model_args"]["num_classes"])
    expected = voc.num_classes + (2 if payload.get("start_key") is not None else 0)
    if classes != expected:
        raise AlogError(path, f"has {classes} classes but {vocab_path} has {voc.size} templates, which need "
                              f"{expected} (templates + unknown{' + start and end keys' if expected > voc.num_classes else ''})"
                              "; use the vocab it was trained with")


def check_mscred_payload(payload: dict[str, Any], voc: Vocab, path: Path, vocab_path: Path,
                         window_size: int | None) -> None:
    missing = _missing(payload, MSCRED_FIELDS)
    if missing:
        raise AlogError(path, f"checkpoint lacks {', '.join(missing)}; retrain with `invoke train-mscred`")
    if int(payload["feature_dim"]) != voc.num_classes:
        raise AlogError(path, f"has feature_dim {payload['feature_dim']} but {vocab_path} has {voc.size} templates, "
                              f"which need {voc.num_classes} (templates + unknown)")
    if window_size is not None and window_size != int(payload["window_size"]):
        # the threshold was calibrated on windows of the trained size
        raise AlogError(path, f"was trained with window_size {payload['window_size']}, not --window-size {window_size}")


def check_output_dir(path: Path) -> None:
    """Fail before the slow part when the model directory cannot be made (AtomicDir checks again)."""
    if path.exists() and not path.is_dir():
        raise AlogError(path, "exists and is not a directory")
    base = path.absolute().parent
    while not base.exists():
        base = base.parent
    if not base.is_dir():
        raise AlogError(base, "is not a directory: cannot make the model directory under it")
    if not os.access(base, os.W_OK | os.X_OK):
        raise AlogError(base, "is not writable: cannot make the model directory under it")


def _check_opset(opset: int) -> None:
    from torch.onnx import _constants

    low, high = 9, _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    if not low <= opset <= high:
        raise AlogError(None, f"--opset {opset} is not supported by torch {torch.__version__}'s "
                              f"TorchScript exporter ({low}..{high})")


def _check_checkpoint(path: Path, kind: str, voc: Vocab, req: ConvertRequest) -> None:
    payload = checkpoint.load(path, kind)  # vocab hash checked when the model is built, after the clearer size check
    if kind == "deeplog":
        check_deeplog_payload(payload, voc, path, req.vocab)
    else:
        check_mscred_payload(payload, voc, path, req.vocab, req.window_size)


def _build(path: Path, kind: str, voc: Vocab) -> tuple[nn.Module, dict[str, Any]]:
    from . import train

    model, payload = (train.load_deeplog if kind == "deeplog" else train.load_mscred)(path, voc)
    return model.eval(), payload


# --- inputs: tracing, validation and golden cases ------------------------------------------

@dataclass
class Case:
    name: str
    array: np.ndarray


def real_deeplog_windows(path: Path, seq_len: int, voc: Vocab, limit: int = REAL_WINDOWS,
                         start_key: int | None = None, end_key: int | None = None) -> np.ndarray:
    """Up to `limit` distinct windows of `seq_len` keys from sequences.parquet, spread over the file (padded with
    start keys as the model sees them)."""
    seqs = dataset.read_sequences(path)
    x = dataset.windows([list(k) for k in seqs["keys"]], seq_len, start_key, end_key).x
    if len(x) == 0:
        raise AlogError(path, f"no session is longer than --seq-len {seq_len}: no real window to check")
    if np.where(x == start_key, 0, x).max() >= voc.num_classes or x.min() < 0:
        raise AlogError(path, f"holds keys outside 0..{voc.unk_index}: built with another vocab")
    x = np.unique(x, axis=0)
    pick = np.linspace(0, len(x) - 1, num=min(limit, len(x))).round().astype(int)
    return np.ascontiguousarray(x[np.unique(pick)])


def real_mscred_windows(path: Path, window_size: int, voc: Vocab, limit: int = REAL_COUNT_WINDOWS) -> np.ndarray:
    """Up to `limit` count windows [n, 1, window_size, feature_dim] from counts.parquet, spread over it."""
    from . import counts

    series, _, meta = counts.load(path)
    if meta.get("feature_dim") != voc.num_classes or meta.get("vocab_sha256") != voc.sha256:
        raise AlogError(path, "was counted with another vocab; rebuild it with `invoke build-mscred`")
    x, _ = counts.windows(series, window_size, max(1, window_size // 4))
    if len(x) == 0:
        raise AlogError(path, f"no count series is as long as the window ({window_size} buckets)")
    pick = np.unique(np.linspace(0, len(x) - 1, num=min(limit, len(x))).round().astype(int))
    return np.ascontiguousarray(x[pick], dtype=np.float32)


def deeplog_validation_cases(num_classes: int, seq_len: int, real: np.ndarray | None, full: bool,
                             seed: int = 0) -> list[Case]:
    """Random keys (unknown included) over batch sizes x lengths, plus real windows; one batch unless `full`."""
    rng = np.random.default_rng(seed)
    if not full:
        if real is not None:
            return [Case(f"real windows b{min(64, len(real))}", real[:64])]
        return [Case(f"random b64 l{seq_len}", rng.integers(0, num_classes, (64, seq_len), dtype=np.int64))]
    cases = [Case(f"random b{b} l{n}", rng.integers(0, num_classes, (b, n), dtype=np.int64))
             for b in VALIDATE_BATCHES for n in dict.fromkeys((seq_len, 1, 2 * seq_len))]
    if real is not None:
        cases.append(Case(f"real windows b{len(real)}", real))
    return cases


def _random_counts(rng: np.random.Generator, batch: int, window: int, features: int) -> np.ndarray:
    # sparse, bursty counts like a real template-count series: most templates are quiet in a bucket
    counts = rng.poisson(rng.gamma(0.5, 4.0, size=(batch, 1, 1, features)), size=(batch, 1, window, features))
    return counts.astype(np.float32)


def mscred_validation_cases(window_size: int, feature_dim: int, real: np.ndarray | None, full: bool,
                            seed: int = 0) -> list[Case]:
    rng = np.random.default_rng(seed)
    quiet = Case("all-zero window", np.zeros((2, 1, window_size, feature_dim), np.float32))
    if not full:
        sample = real[:8] if real is not None else _random_counts(rng, 8, window_size, feature_dim)
        return [Case(f"{'real' if real is not None else 'random'} windows b{len(sample)}", sample)]
    cases = [Case(f"random b{b}", _random_counts(rng, b, window_size, feature_dim)) for b in VALIDATE_BATCHES]
    cases.append(quiet)  # quiet periods are common on a device; a NaN there would be silent
    if real is not None:
        cases.append(Case(f"real windows b{len(real)}", real))
    return cases


def deeplog_golden_cases(seq_len: int, seen_keys: Sequence[int], unk_index: int,
                         real: np.ndarray | None, start_key: int | None = None) -> list[Case]:
    rng = np.random.default_rng(1)
    pool = np.asarray(sorted(seen_keys) or [0], dtype=np.int64)
    windows = real[:4] if real is not None else rng.choice(pool, size=(4, seq_len))
    with_unk = windows[:1].copy()
    with_unk[0, -1] = unk_index
    longer = np.concatenate([windows[:1], windows[1:2]], axis=1)
    cases = [Case("real windows" if real is not None else "windows of seen keys", windows),
             Case("length-1 sequence", pool[:1].reshape(1, 1)),
             Case("unknown key last", with_unk),
             Case(f"sequence of {longer.shape[1]} keys", longer)]
    if start_key is not None:  # the first key's window (all start keys) and the second's; the end key's output
        first = np.full((2, seq_len), start_key, np.int64)
        first[1, -1] = windows[0, -1]
        cases.append(Case("start keys (a session's first and second key)", first))
    return cases


def mscred_golden_cases(window_size: int, feature_dim: int, real: np.ndarray | None) -> list[Case]:
    rng = np.random.default_rng(1)
    windows = real[:1] if real is not None else _random_counts(rng, 1, window_size, feature_dim)
    burst = np.zeros((1, 1, window_size, feature_dim), np.float32)
    burst[0, 0, -1, :] = 50.0
    return [Case("real windows" if real is not None else "random count windows", windows),
            Case("all-zero window", np.zeros((1, 1, window_size, feature_dim), np.float32)),
            Case("burst in the last bucket", burst)]


# --- export ------------------------------------------------------------------------------------

def _ort_session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: its errors come back as exceptions, its log lines would precede ours
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a file it cannot load
        reason = re.sub(r"^.*Load model from \S+ failed:", "", str(exc).strip())  # the path is named already
        raise AlogError(path, f"onnxruntime cannot load it: {reason.splitlines()[0][:200]}") from None


def torch_export(model: nn.Module, example: torch.Tensor, path: Path, spec: ModelSpec, opset: int,
                 label: str | None = None) -> str:
    """Legacy TorchScript export; returns the exporter's description for meta.json."""
    kwargs: dict[str, Any] = dict(input_names=[spec.input_name], output_names=list(spec.output_names),
                                  dynamic_axes=spec.dynamic_axes, opset_version=opset, do_constant_folding=True)
    try:
        with torch.no_grad():
            try:
                torch.onnx.export(model, (example,), str(path), dynamo=False, **kwargs)
                return f"torch.onnx.export(dynamo=False) torch {torch.__version__}"
            except TypeError as exc:
                if "dynamo" not in str(exc):
                    raise
                torch.onnx.export(model, (example,), str(path), **kwargs)  # a torch from before `dynamo`
                return f"torch.onnx.export torch {torch.__version__}"
    except (RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:
        raise AlogError(label or path, f"ONNX export failed at opset {opset}: {_first_line(exc)}") from None


def _outputs_of(model: nn.Module, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().cpu().numpy() for o in outs]


def validate_onnx(onnx_path: Path, model: nn.Module, spec: ModelSpec, cases: Sequence[Case],
                  tolerance: float = TOLERANCE, label: str | None = None) -> Validation:
    """Run torch and onnxruntime side by side; AlogError on any shape change or difference above `tolerance`."""
    name = label or str(onnx_path)
    session = _ort_session(onnx_path)
    results = []
    for case in cases:
        with one_torch_thread():
            expected = _outputs_of(model, case.array)
        got = session.run(list(spec.output_names), {spec.input_name: case.array})
        worst = 0.0
        for out_name, want, have in zip(spec.output_names, expected, got):
            if not np.isfinite(want).all():
                raise AlogError(name, f"the torch model gives non-finite {out_name} on {case.name}; "
                                      "the device would score garbage there")
            if want.shape != have.shape:
                raise AlogError(name, f"{out_name} has shape {list(have.shape)} in onnxruntime but "
                                      f"{list(want.shape)} in torch on {case.name}")
            diff = float(np.max(np.abs(want.astype(np.float64) - have.astype(np.float64)), initial=0.0))
            if not diff <= tolerance:  # also catches NaN
                raise AlogError(name, f"the ONNX model differs from torch by {diff:.3g} (> {tolerance:g}) "
                                      f"in {out_name} on {case.name} {list(case.array.shape)}")
            worst = max(worst, diff)
        results.append(CaseResult(case.name, tuple(case.array.shape), worst))
    return Validation(onnx_path.name, results, tolerance)


def node_count(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)


def _dims(model: Any) -> list[list[str | int]]:
    return [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(model.graph.input) + list(model.graph.output)]


def _opset_of(model: Any) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _simplifiers() -> list[tuple[str, Callable[[Any], Any]]]:
    def with_onnxsim(model: Any) -> Any:
        import onnxsim

        simplified, ok = onnxsim.simplify(model)
        if not ok:
            raise RuntimeError("its own check of the simplified model failed")
        return simplified, f"onnxsim {getattr(onnxsim, '__version__', '?')}"

    def with_onnxslim(model: Any) -> Any:
        import onnxslim

        return onnxslim.slim(model), f"onnxslim {getattr(onnxslim, '__version__', '?')}"

    return [("onnxsim", with_onnxsim), ("onnxslim", with_onnxslim)]


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = (exc.message if isinstance(exc, AlogError) else str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:limit] if text else ''}"


def _keeps_shapes(before: list[list[str | int]], after: list[list[str | int]], axes: set[str]) -> bool:
    """Every dynamic axis and fixed size stays; a dim the exporter left unnamed may become a number."""
    if [len(d) for d in before] != [len(d) for d in after]:
        return False
    return all(a == b or (isinstance(a, str) and a not in axes and isinstance(b, int) and b > 0)
               for dims_a, dims_b in zip(before, after) for a, b in zip(dims_a, dims_b))


def _simplified(tool: Callable[[Any], Any], original: Any, axes: set[str], log_file: Path) -> tuple[Any, str]:
    """Run one simplifier; refuse a result that changed the opset or any input/output shape."""
    import onnx

    with quiet_into(log_file):
        simplified, used = tool(original)
    onnx.checker.check_model(simplified)
    if not _keeps_shapes(_dims(original), _dims(simplified), axes):
        raise ValueError(f"changed the input/output shapes {_dims(original)} -> {_dims(simplified)}")
    if _opset_of(simplified) != _opset_of(original):
        raise ValueError(f"changed the opset to {_opset_of(simplified)}")
    return simplified, used


def make_portable(job: "ModelJob", path: Path, log_file: Path) -> tuple[str, Validation, list[str]]:
    """onnxsim, falling back to onnxslim: the first result that passes the plain model's validation
    replaces it; AlogError when none does."""
    import onnx

    original = onnx.load(str(path))
    candidate = path.with_name(f".{path.name}.portable")
    axes = {name for dims in job.spec.dynamic_axes.values() for name in dims.values()}
    failures = []
    for name, tool in _simplifiers():
        try:
            simplified, used = _simplified(tool, original, axes, log_file)
            onnx.save(simplified, str(candidate))
            validation = validate_onnx(candidate, job.model, job.spec, job.validation,
                                       label=f"{job.checkpoint} ({name})")
        except Exception as exc:  # import errors, simplifier bugs and failed validation alike
            failures.append(f"{name} failed ({_first_line(exc, 120)})")
            _log_line(log_file, f"{name} failed:\n{traceback.format_exc()}")
            candidate.unlink(missing_ok=True)
            continue
        os.replace(candidate, path)
        return used, validation, failures
    raise AlogError(job.checkpoint, "--portable: no simplifier gave a model that passes validation ("
                                    + "; ".join(failures) + "); convert without --portable")


@dataclass
class ModelJob:
    """One model to export: the module, its checkpoint and the inputs to check it with."""

    spec: ModelSpec
    model: nn.Module
    checkpoint: Path
    example: np.ndarray                 # traced input (batch 2)
    validation: list[Case]
    golden: list[Case]
    meta: dict[str, Any]                # model-specific meta fields


def export_model(job: ModelJob, out_dir: Path, opset: int, portable: bool) -> ModelReport:
    """Export, check against torch, optionally simplify (and check again), write meta.json."""
    spec, log_file = job.spec, out_dir / LOG_NAME
    path = out_dir / spec.file_name
    _log_line(log_file, f"== {spec.kind}: {job.checkpoint} -> {spec.file_name} (opset {opset})")
    started = time.perf_counter()
    with quiet_into(log_file), one_torch_thread():
        exporter = torch_export(job.model, torch.from_numpy(job.example), path, spec, opset, str(job.checkpoint))
        import onnx

        onnx.checker.check_model(str(path))
    export_seconds = time.perf_counter() - started
    nodes_plain = node_count(path)

    started = time.perf_counter()
    validation = validate_onnx(path, job.model, spec, job.validation, label=str(job.checkpoint))
    validate_seconds = time.perf_counter() - started
    _log_line(log_file, f"{spec.kind}: {nodes_plain} nodes; torch vs onnxruntime on {len(validation.cases)} "
                        f"case(s), max abs diff {validation.max_abs_diff:.3g}")

    nodes_portable, simplifier, simplify_seconds, notes = None, None, 0.0, []
    if portable:
        started = time.perf_counter()
        simplifier, validation, failures = make_portable(job, path, log_file)
        notes += [f"{spec.kind}: {f}; used {simplifier}" for f in failures]
        nodes_portable = node_count(path)
        simplify_seconds = time.perf_counter() - started
        _log_line(log_file, f"{spec.kind}: {simplifier}: {nodes_plain} -> {nodes_portable} nodes, "
                            f"max abs diff {validation.max_abs_diff:.3g}")
    _write_meta(job, path, exporter, opset, portable, simplifier, nodes_plain, nodes_portable, validation)
    return ModelReport(spec.kind, spec.file_name, exporter, nodes_plain, nodes_portable, simplifier, validation,
                       export_seconds, simplify_seconds, validate_seconds, notes)


def _write_meta(job: ModelJob, path: Path, exporter: str, opset: int, portable: bool, simplifier: str | None,
                nodes_plain: int, nodes_portable: int | None, validation: Validation) -> None:
    spec = job.spec
    session = _ort_session(path)
    observed = dict(zip(spec.output_names, session.run(list(spec.output_names), {spec.input_name: job.example})))
    axes = {name for dims in spec.dynamic_axes.values() for name in dims.values()}

    def shape(name: str, dims: list[Any]) -> list[Any]:
        # the exporter names some fixed sizes (e.g. after ConvTranspose) as if dynamic: give their size
        return [d if not isinstance(d, str) or d in axes or name not in observed else observed[name].shape[i]
                for i, d in enumerate(dims)]

    io = {"inputs": [{"name": i.name, "type": i.type, "shape": i.shape} for i in session.get_inputs()],
          "outputs": [{"name": o.name, "type": o.type, "shape": shape(o.name, o.shape)}
                      for o in session.get_outputs()]}
    meta = {
        "format_version": FORMAT_VERSION,
        "model_type": spec.kind,
        "file": spec.file_name,
        "sha256": sha256_file(path),
        **job.meta,
        "input_names": [spec.input_name],
        "output_names": list(spec.output_names),
        "dynamic_axes": {name: {str(k): v for k, v in dims.items()} for name, dims in spec.dynamic_axes.items()},
        **io,
        "opset_version": opset,
        "exporter": exporter,
        "portable": portable,
        "simplifier": simplifier,
        "nodes": {"plain": nodes_plain, "portable": nodes_portable},
        "validation": {"tolerance": validation.tolerance, "max_abs_diff": validation.max_abs_diff,
                       "cases": [c.name for c in validation.cases]},
        "checkpoint_sha256": sha256_file(job.checkpoint),
        "versions": {"alog_edge": __version__, "torch": str(torch.__version__), "onnxruntime": _ort_version(),
                     "onnx": _onnx_version()},
    }
    (path.parent / f"{spec.file_name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def _onnx_version() -> str:
    import onnx

    return str(onnx.__version__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def closing_keys(templates: Sequence[str], voc: Vocab) -> list[int]:
    """The vocab keys of the templates declared as ending a session."""
    missing = [t for t in templates if t not in voc.index]
    if missing:
        raise AlogError("--closing-template", f"{missing[0]!r} is not a template of the vocab")
    return sorted({int(voc.index[t]) for t in templates})


def deeplog_job(model: nn.Module, payload: dict[str, Any], ckpt: Path, voc: Vocab, seq_len: int | None,
                sequences: Path | None, full: bool, session_idle: float | None = None,
                closing_templates: Sequence[str] = ()) -> ModelJob:
    from . import deeplog_rule

    args = payload["model_args"]
    window = int(args["window"])
    seq_len = window if seq_len is None else seq_len
    if seq_len < 1:
        raise AlogError(None, f"--seq-len must be at least 1, not {seq_len}")
    if session_idle is not None and not 0 <= session_idle <= 1e9:
        raise AlogError("--session-idle", f"must be a number of seconds in 0..1e9, not {session_idle}")
    rule = deeplog_rule.from_payload(payload)
    classes = int(args["num_classes"])
    real = real_deeplog_windows(sequences, seq_len, voc, start_key=rule.start_key, end_key=rule.end_key) \
        if sequences is not None else None
    rng = np.random.default_rng(2)
    example = real[:TRACE_BATCH] if real is not None and len(real) >= TRACE_BATCH else \
        rng.integers(0, voc.num_classes, (TRACE_BATCH, seq_len), dtype=np.int64)
    keys_note = (f" Sessions are padded with seq_len start keys ({rule.start_key}), so every key is predicted, and the "
                 f"end key ({rule.end_key}) is predicted after a session's last key: a session end the rule flags is "
                 "anomalous." if rule.start_key is not None else
                 " The first seq_len keys of a session are only checked against seen_keys.")
    meta = {
        "vocab_size": voc.num_classes,  # templates + the unknown key
        "num_classes": classes,         # the output width: vocab_size, + the start and end keys when set
        "num_templates": voc.size,
        "unk_index": voc.unk_index,
        "seq_len": seq_len,
        "window": window,
        **rule.meta(),
        "seen_keys": sorted(int(k) for k in payload["seen_keys"]),
        "calibration": _jsonable(payload.get("calibration")),
        "session_idle_seconds": session_idle,
        "closing_keys": closing_keys(closing_templates, voc),
        "threshold": None,
        "vocab_sha256": voc.sha256,
        "model_args": _jsonable(args),
        "notes": ("predictions are logits for the key after the last one of input_sequence (keys 0.."
                  f"{voc.unk_index}, {voc.unk_index} = unknown template). DeepLog rule: a key is anomalous when "
                  "it is not in seen_keys (unknown included), or when `rule` flags its prediction from the seq_len "
                  "keys before it: top_k, not among the top_k predictions; probability, its softmax probability "
                  "(float32) below probability_threshold." + keys_note + (" key_sets (null: off) are the key sets of normal "
                  "training sessions: a key new to its session whose keys then fit inside none of them is anomalous "
                  "(key_set), and so is an end whose keys fit inside one without being one." if rule.key_sets else "")
                  + " On the device a session ends at the end "
                  "of input, on a closing key, or session_idle_seconds after its last line (null: never). Trained "
                  f"with window {window}; any sequence_length runs."),
    }
    return ModelJob(DEEPLOG, model, ckpt, example,
                    deeplog_validation_cases(classes, seq_len, real, full),
                    deeplog_golden_cases(seq_len, meta["seen_keys"], voc.unk_index, real, rule.start_key), meta)


# what the device needs besides the graph: how to bucket counts (`counts`), and what was learned from data
MSCRED_META_KEYS = ("scales", "steps", "gap", "score_scales", "counts", "normalisation", "broken_cell_levels",
                    "val_score_max")


def mscred_job(model: nn.Module, payload: dict[str, Any], ckpt: Path, voc: Vocab, counts_path: Path | None,
               full: bool) -> ModelJob:
    window_size, feature_dim = int(payload["window_size"]), int(payload["feature_dim"])
    real = real_mscred_windows(counts_path, window_size, voc) if counts_path is not None else None
    rng = np.random.default_rng(2)
    example = real[:TRACE_BATCH] if real is not None and len(real) >= TRACE_BATCH else \
        _random_counts(rng, TRACE_BATCH, window_size, feature_dim)
    args = payload["model_args"]
    extra = {k: _jsonable(payload[k] if k in payload else args[k]) for k in MSCRED_META_KEYS
             if k in payload or k in args}
    meta = {
        "feature_dim": feature_dim,
        "num_templates": voc.size,
        "unk_index": voc.unk_index,
        "window_size": window_size,
        "threshold": float(payload["threshold"]),
        "broken_cell_level": _jsonable(payload["broken_cell_level"]),
        **extra,
        "top_k": None,
        "vocab_sha256": voc.sha256,
        "model_args": _jsonable(args),
        "notes": ("input_features are raw per-bucket template counts, window_size buckets x feature_dim "
                  f"templates (column i = vocab key i, column {voc.unk_index} = unknown); normalisation and "
                  "signature matrices are computed inside the graph. anomaly_score is the number of poorly "
                  "reconstructed cells (each above its own level, inside the graph; broken_cell_level is the "
                  "lowest) of the score_scales (null: every scale); a window is anomalous when it exceeds "
                  "threshold."),
    }
    return ModelJob(MSCRED, model, ckpt, example, mscred_validation_cases(window_size, feature_dim, real, full),
                    mscred_golden_cases(window_size, feature_dim, real), meta)


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
    session = _ort_session(path)
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
              "onnxruntime": _ort_version(), "cases": entries}
    (out_dir / GOLDEN_NAME).write_text(json.dumps(golden, separators=(",", ":")) + "\n", encoding="utf-8")


# --- the step ----------------------------------------------------------------------------------

def _parser_coverage(parser: dict[str, Any], voc: Vocab, parser_path: Path) -> list[str]:
    known = {t.get("template") for t in parser.get("templates", []) if isinstance(t, dict)}
    missing = [t for t in voc.templates() if t not in known]
    if not missing:
        return []
    return [f"{len(missing)} of {voc.size} vocab templates are not among {parser_path}'s templates; "
            "the device maps lines of those to the unknown key"]


def _file_reports(out_dir: Path, models: list[ModelReport], opset: int) -> list[FileReport]:
    by_file = {m.file: m for m in models}
    reports = []
    for path in sorted(out_dir.iterdir()):
        m = by_file.get(path.name)
        nodes = None if m is None else (m.nodes_portable if m.nodes_portable is not None else m.nodes_plain)
        reports.append(FileReport(path.name, path.stat().st_size, sha256_file(path), nodes,
                                  None if m is None else opset))
    return reports


def convert(req: ConvertRequest) -> ConvertResult:
    """Checks first (cheap, naming the bad file), then export, check, simplify, and swap the directory in."""
    started = time.perf_counter()
    _check_opset(req.opset)
    voc = vocab_mod.load(req.vocab)  # refuses the template_id form, pointing to `invoke fix-vocab`
    check_feature_dim(req.feature_dim, voc, req.vocab)
    parser = parse.load_parser(req.parser)
    check_output_dir(req.output_dir)
    for kind, path in (("deeplog", req.deeplog_model), ("mscred", req.mscred_model)):
        if path is not None:
            _check_checkpoint(path, kind, voc, req)
    notes = _parser_coverage(parser, voc, req.parser)  # shown in the summary

    jobs = []
    if req.deeplog_model is not None:
        model, payload = _build(req.deeplog_model, "deeplog", voc)
        jobs.append(deeplog_job(model, payload, req.deeplog_model, voc, req.seq_len, req.sequences, req.validate,
                                req.session_idle, req.closing_templates))
    if req.mscred_model is not None:
        model, payload = _build(req.mscred_model, "mscred", voc)
        jobs.append(mscred_job(model, payload, req.mscred_model, voc, req.counts, req.validate))

    for job in jobs:  # the device's rules on what each checkpoint brings, before the slow part
        modeldir_check.check_job_meta(job.checkpoint, job.spec.kind, job.meta, voc.size, parser)

    reports: list[ModelReport] = []
    with AtomicDir(req.output_dir) as staging:
        (staging / "vocab.json").write_text(json.dumps(voc.c_form(), indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
        shutil.copyfile(req.parser, staging / "parser.json")
        golden: list[dict[str, Any]] = []
        for job in jobs:
            log.info("convert: exporting %s (opset %d%s)", job.spec.kind, req.opset,
                     ", portable" if req.portable else "")
            report = export_model(job, staging, req.opset, req.portable)
            reports.append(report)
            golden += golden_entries(staging / job.spec.file_name, job.spec, job.golden)
        if golden:
            write_golden(staging, golden)
            from .optimize import save_optimized
            for job in jobs:
                save_optimized(staging / job.spec.file_name, golden, TOLERANCE)
        modeldir_check.check_staged(staging, req.output_dir)  # the device's rules, before the swap
        result_files = _file_reports(staging, reports, req.opset)
    return ConvertResult(req.output_dir, req.opset, req.portable, req.validate, reports, result_files, notes,
                         time.perf_counter() - started)


# --- the one-screen summary ---------------------------------------------------------------

def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MiB"


def summary(result: ConvertResult) -> dict[str, Any]:
    """The result as plain data (for --json)."""
    data = asdict(result)
    data["output_dir"] = str(result.output_dir)
    for m, report in zip(data["models"], result.models):
        m["max_abs_diff"] = report.validation.max_abs_diff
    return data


def format_summary(result: ConvertResult) -> str:
    lines = [f"model directory {result.output_dir} (opset {result.opset}"
             f"{', portable' if result.portable else ''}) in {result.seconds:.1f}s"]
    width = max((len(f.name) for f in result.files), default=10)
    lines.append(f"  {'file':<{width}}  {'size':>10}  {'sha256':<12}  opset  nodes")
    for f in result.files:
        lines.append(f"  {f.name:<{width}}  {_size(f.size):>10}  {f.sha256[:12]:<12}  "
                     f"{'' if f.opset is None else f.opset:<5}  {'' if f.nodes is None else f.nodes}".rstrip())
    for m in result.models:
        nodes = f"{m.nodes_plain} nodes" if m.nodes_portable is None else \
            f"{m.nodes_plain} -> {m.nodes_portable} nodes ({m.simplifier})"
        lines.append(f"{m.kind}: {nodes}; exported in {m.export_seconds:.1f}s; torch vs onnxruntime on "
                     f"{len(m.validation.cases)} case(s) in {m.validate_seconds:.1f}s: max abs diff "
                     f"{m.validation.max_abs_diff:.1e} (limit {m.validation.tolerance:g})")
    if not result.models:
        lines.append("no model given: wrote the vocab and the parser only")
    lines += [f"note: {n}" for n in result.notes + [n for m in result.models for n in m.notes]]
    return "\n".join(lines)


# --- running a model directory from Python (the demo, tests) -------------------------------

class OnnxModel:
    """One exported model with its meta.json, run by onnxruntime."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        meta_path = self.path.with_name(self.path.name + ".meta.json")
        self.meta: dict[str, Any] = read_json(meta_path) if meta_path.exists() else {}
        self.session = _ort_session(self.path)
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
    return ModelDir(model_dir, voc, parse.load_parser(model_dir / "parser.json"), meta)


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
        raise AlogError(path, f"malformed golden.json ({_first_line(exc, 120)})") from None
