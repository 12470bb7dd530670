"""convert: trained checkpoints -> the model directory the device runs (ONNX + meta + vocab + parser + golden).

The models are exported with the legacy TorchScript exporter, checked against torch with onnxruntime
(always on one batch; on many shapes and real data with `validate`), optionally simplified
(`portable`), and the whole directory is built beside its final place and renamed in at the end.
The `OnnxModel`/`run_onnx`/`check_golden` helpers run a finished model directory from Python.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from alog_edge.errors import AlogError
from alog_edge.export.jobs import deeplog_job, mscred_job
from alog_edge.export.onnx_export import ModelReport, export_model
from alog_edge.fileio import AtomicDir, sha256_file
from alog_edge.formats import checkpoint, modeldir_check, parser_json
from alog_edge.formats import vocab as vocab_mod
from alog_edge.formats.modeldir import (DEEPLOG_ARGS, DEEPLOG_FIELDS, MSCRED_FIELDS, TOLERANCE, golden_entries,
                                        write_golden)
from alog_edge.formats.vocab import Vocab

log = logging.getLogger(__name__)

DEFAULT_OPSET = 11


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
    quantize: str = "none"              # "int8": DeepLog in int8 when its verdicts agree (quantize.py)


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
    model, payload = (checkpoint.load_deeplog if kind == "deeplog" else checkpoint.load_mscred)(path, voc)
    return model.eval(), payload


# --- inputs: tracing, validation and golden cases ------------------------------------------


# --- export ------------------------------------------------------------------------------------


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
    parser = parser_json.load_parser(req.parser)
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
            if req.quantize != "none" and job.spec.kind == "deeplog":  # before golden.json: it records this file
                from .quantize import quantize_deeplog
                quantize_deeplog(staging / job.spec.file_name, req.sequences)
            reports.append(report)
            golden += golden_entries(staging / job.spec.file_name, job.spec, job.golden)
        if golden:
            write_golden(staging, golden)
            from alog_edge.export.optimize import save_optimized
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
