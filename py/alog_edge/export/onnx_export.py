"""One model to ONNX: trace with the legacy exporter, check against torch with onnxruntime, optionally
simplify (onnxsim, falling back to onnxslim) and check again, then write its meta.json."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from alog_edge import __version__
from alog_edge.errors import AlogError
from alog_edge.fileio import sha256_file
from alog_edge.formats.modeldir import (FORMAT_VERSION, TOLERANCE, Case, CaseResult, ModelSpec, first_line, ort_session,
                                        ort_version)

log = logging.getLogger(__name__)

LOG_NAME = "convert.log"


LOG_NAME = "convert.log"


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
        raise AlogError(label or path, f"ONNX export failed at opset {opset}: {first_line(exc)}") from None


def _outputs_of(model: nn.Module, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().cpu().numpy() for o in outs]


def validate_onnx(onnx_path: Path, model: nn.Module, spec: ModelSpec, cases: Sequence[Case],
                  tolerance: float = TOLERANCE, label: str | None = None) -> Validation:
    """Run torch and onnxruntime side by side; AlogError on any shape change or difference above `tolerance`."""
    name = label or str(onnx_path)
    session = ort_session(onnx_path)
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
            failures.append(f"{name} failed ({first_line(exc, 120)})")
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
    session = ort_session(path)
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
        "versions": {"alog_edge": __version__, "torch": str(torch.__version__), "onnxruntime": ort_version(),
                     "onnx": _onnx_version()},
    }
    (path.parent / f"{spec.file_name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _onnx_version() -> str:
    import onnx

    return str(onnx.__version__)
