"""DeepLog's decision rule: what makes a key (or a session's end) anomalous, and its calibration.

One object holds everything a verdict needs (window, seen keys, session keys, rule and its parameters),
read from a checkpoint or from deeplog.onnx.meta.json, so Python and the C runtime decide alike.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from alog_edge.errors import AlogError
from alog_edge.models import deeplog_keysets
from alog_edge.models.deeplog_keysets import KeySets

RULE_TOP_K, RULE_PROBABILITY = "top_k", "probability"
RULES = (RULE_TOP_K, RULE_PROBABILITY)


@dataclass(frozen=True)
class DeepLogRule:
    window: int                   # h
    seen_keys: frozenset[int]
    unk_index: int
    top_k: int                    # g of the paper's rule
    kind: str = RULE_TOP_K        # "top_k": rank >= g is anomalous; "probability": p < threshold
    threshold: float = 0.0        # probability rule: a predicted key below it is anomalous
    start_key: int | None = None  # None: the first h keys are not predicted, nor is the end
    end_key: int | None = None
    key_sets: KeySets | None = None  # the key-set check (deeplog_keysets), None: off

    def __post_init__(self) -> None:
        if self.kind not in RULES:
            raise AlogError(None, f"DeepLog rule {self.kind!r} is not one of {', '.join(RULES)}")
        if self.key_sets is not None and self.end_key is None:
            raise AlogError(None, "key_sets need session keys (start_key and end_key): a session's end is judged")

    def flags(self, rank: np.ndarray, probability: np.ndarray) -> np.ndarray:
        """Which predicted keys the rule flags (unseen keys aside)."""
        if self.kind == RULE_PROBABILITY:
            return probability.astype(np.float32) < np.float32(self.threshold)
        return rank >= self.top_k

    def overridden(self, kind: str | None = None, top_k: int | None = None,
                   threshold: float | None = None, key_sets: bool | None = None) -> "DeepLogRule":
        """The same rule with some parameters replaced (no retraining); a threshold alone selects its rule;
        key_sets=False turns the key-set check off."""
        if key_sets is False:
            return replace(self, key_sets=None).overridden(kind, top_k, threshold)
        if threshold is not None and kind is None:
            kind = RULE_PROBABILITY
        if top_k is not None and kind is None and threshold is None:
            kind = RULE_TOP_K
        return replace(self, kind=kind or self.kind, top_k=self.top_k if top_k is None else int(top_k),
                       threshold=self.threshold if threshold is None else float(threshold))

    def meta(self) -> dict[str, Any]:
        """The fields of deeplog.onnx.meta.json (and of the checkpoint) that carry the rule."""
        return {"rule": self.kind, "top_k": self.top_k, "probability_threshold": self.threshold,
                "start_key": self.start_key, "end_key": self.end_key,
                **(self.key_sets.meta() if self.key_sets is not None else {"key_sets": None})}


def from_fields(fields: dict[str, Any], window: int) -> DeepLogRule:
    """From a checkpoint payload or a meta.json; files written before session keys and rules mean top-g."""
    return DeepLogRule(window=int(window), seen_keys=frozenset(int(k) for k in fields["seen_keys"]),
                       unk_index=int(fields["unk_index"]), top_k=int(fields["top_k"]),
                       kind=str(fields.get("rule") or RULE_TOP_K),
                       threshold=float(fields.get("probability_threshold") or 0.0),
                       start_key=_key(fields.get("start_key")), end_key=_key(fields.get("end_key")),
                       key_sets=deeplog_keysets.from_fields(fields, int(fields["unk_index"])))


def from_payload(payload: dict[str, Any]) -> DeepLogRule:
    return from_fields(payload, int(payload["model_args"]["window"]))


def from_meta(meta: dict[str, Any]) -> DeepLogRule:
    return from_fields(meta, int(meta["seq_len"]))


def _key(value: Any) -> int | None:
    return None if value is None else int(value)


def calibrate_threshold(session_min_probability: Sequence[float], target_fpr: float) -> float:
    """The probability threshold that flags at most target_fpr of these normal sessions: a session is flagged
    when one of its predicted keys lies strictly below the threshold, so the threshold is the (k+1)-th lowest
    session minimum, k = floor(target_fpr x sessions)."""
    if not 0 <= target_fpr < 1:
        raise AlogError("--target-fpr", f"must be in [0, 1), not {target_fpr}")
    scores = np.sort(np.asarray(session_min_probability, dtype=np.float32))
    if len(scores) == 0:
        raise AlogError(None, "no normal validation session to calibrate the probability threshold on")
    return float(scores[int(np.floor(target_fpr * len(scores)))])
