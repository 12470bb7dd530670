"""What convert exports for each model: the module, its checkpoint's decision fields for meta.json,
and the inputs to trace, validate and record in golden.json."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from alog_edge.errors import AlogError
from alog_edge.export.inputs import (TRACE_BATCH, _random_counts, deeplog_golden_cases, deeplog_validation_cases,
                                    mscred_golden_cases, mscred_validation_cases, real_deeplog_windows,
                                    real_mscred_windows)
from alog_edge.export.onnx_export import ModelJob
from alog_edge.formats.modeldir import DEEPLOG, MSCRED, MSCRED_META_KEYS
from alog_edge.formats.vocab import Vocab


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
    from alog_edge.models import deeplog_rule

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
