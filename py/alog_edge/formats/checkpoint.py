"""Checkpoints (deeplog.pth, mscred.pth): everything needed to rebuild a model and decide with it, loaded
without pickle; `load_deeplog`/`load_mscred` rebuild the module from the checkpoint alone."""
from __future__ import annotations

import io
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alog_edge import __version__
from alog_edge.errors import AlogError
from alog_edge.fileio import AtomicOutputs
from alog_edge.formats.vocab import Vocab
from alog_edge.models.deeplog import DeepLog, DeepLogConfig
from alog_edge.models.mscred import MSCRED, MSCREDConfig

FORMAT_VERSION = 1
REQUIRED = ("format_version", "model_type", "model_args", "state_dict", "vocab_sha256")


def first_line(exc: BaseException, limit: int = 120) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__


def versions() -> dict[str, str]:
    return {"alog_edge": __version__, "torch": str(torch.__version__), "numpy": str(np.__version__),
            "python": platform.python_version()}


def save(payload: dict[str, Any], path: Path) -> None:
    payload = {"format_version": FORMAT_VERSION, "versions": versions(), **payload}
    with AtomicOutputs() as out:
        buffer = io.BytesIO()  # torch reports a failed file write without its reason: write it ourselves
        torch.save(payload, buffer)
        with open(out.path(path), "wb") as handle:
            handle.write(buffer.getbuffer())


def load(path: str | Path, model_type: str, vocab_sha256: str | None = None) -> dict[str, Any]:
    """Load and check a checkpoint; `weights_only` keeps it to tensors and plain values."""
    path = Path(path)
    if not path.exists():
        raise AlogError(path, "no such checkpoint")
    if path.is_dir():
        raise AlogError(path, "is a directory, expected a checkpoint file")
    if path.stat().st_size == 0:
        raise AlogError(path, "is empty, not a checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise AlogError(path, f"not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED):
        raise AlogError(path, f"not an alog-edge checkpoint (needs {', '.join(REQUIRED)})")
    if payload["model_type"] != model_type:
        raise AlogError(path, f"is a {payload['model_type']} checkpoint, expected {model_type}")
    if vocab_sha256 is not None and payload["vocab_sha256"] != vocab_sha256:
        raise AlogError(path, "was trained with a different vocab (vocab sha256 differs); "
                              "use the vocab.json it was trained with or retrain")
    return payload


def load_deeplog(path: Path, vocab: Vocab | None = None) -> tuple[DeepLog, dict[str, Any]]:
    payload = load(path, "deeplog", vocab.sha256 if vocab is not None else None)
    try:
        model = DeepLog(DeepLogConfig(**payload["model_args"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError) as exc:
        raise AlogError(path, f"model_args do not rebuild the model ({str(exc).splitlines()[0][:120]})") from None
    model.eval()
    return model, payload


def load_mscred(path: Path, vocab: Vocab | None = None) -> tuple[MSCRED, dict[str, Any]]:
    payload = load(path, "mscred", vocab.sha256 if vocab is not None else None)
    try:
        args = dict(payload["model_args"])
        args["scales"], args["channels"] = tuple(args["scales"]), tuple(args["channels"])
        if args.get("score_scales"):
            args["score_scales"] = tuple(args["score_scales"])
        model = MSCRED(MSCREDConfig(**args))
        state = dict(payload["state_dict"])
        level = state.get("broken_cell_level")
        if isinstance(level, torch.Tensor) and level.dim() == 0:  # written before per-cell levels: one for all
            state["broken_cell_level"] = level.expand_as(model.broken_cell_level).clone()
        model.load_state_dict(state)
    except (TypeError, KeyError, ValueError, RuntimeError) as exc:
        raise AlogError(path, f"model_args do not rebuild the model ({str(exc).splitlines()[0][:120]})") from None
    if vocab is not None and model.config.feature_dim != vocab.num_classes:
        raise AlogError(path, f"feature_dim {model.config.feature_dim} disagrees with the vocab ({vocab.num_classes})")
    model.eval()
    return model, payload
