"""Labels, metrics and tables: label files, precision/recall/F1 (and at a given normal:abnormal mix),
recall per anomaly kind, parser grouping accuracy, and the plain-text tables every report prints."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from alog_edge.errors import AlogError
from alog_edge.fileio import require_file


# --- labels ---------------------------------------------------------------------------------

_TRUE = {"1", "anomaly", "anomalous", "abnormal", "true", "yes"}
_FALSE = {"0", "normal", "false", "no"}


@dataclass
class Labels:
    level: str            # "session" or "line"
    frame: pd.DataFrame   # columns: id (session str or line_no int), label (0/1), kind (str)


def load_labels(path: Path) -> Labels:
    path = require_file(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise AlogError(path, f"not a readable CSV ({exc})") from None
    cols = {c.lower(): c for c in frame.columns}
    label_col = cols.get("label")
    if label_col is None:
        raise AlogError(path, "needs a Label column")
    if "line_no" in cols:
        level, id_col = "line", cols["line_no"]
    else:
        id_col = cols.get("session") or cols.get("blockid") or cols.get("block_id")
        if id_col is None:
            raise AlogError(path, "needs a session (or BlockId) column or a line_no column")
        level = "session"
    raw = frame[label_col].str.strip().str.lower()
    bad = raw[~raw.isin(_TRUE | _FALSE)]
    if len(bad):
        raise AlogError(path, f"row {bad.index[0] + 2}: label {frame[label_col][bad.index[0]]!r} is not "
                              "Normal/Anomaly or 0/1")
    ids: Any = frame[id_col].astype("int64") if level == "line" else frame[id_col]
    kind = frame[cols["kind"]] if "kind" in cols else pd.Series([""] * len(frame))
    return Labels(level, pd.DataFrame({"id": ids, "label": raw.isin(_TRUE).astype(int), "kind": kind}))


# --- metrics --------------------------------------------------------------------------------

@dataclass
class Metrics:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fpr(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def tpr(self) -> float:
        return self.recall

    def as_dict(self) -> dict[str, float | int]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "fpr": round(self.fpr, 6), "tpr": round(self.tpr, 4),
                "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


@dataclass
class RatioMetrics:
    """The precision/recall/F1 that measured FPR and TPR give at another normal:abnormal ratio."""

    normal: int
    abnormal: int
    fpr: float
    tpr: float

    @property
    def fp(self) -> float:
        return self.fpr * self.normal

    @property
    def tp(self) -> float:
        return self.tpr * self.abnormal

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.tpr
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"ratio": f"{self.normal}:{self.abnormal}", "precision": round(self.precision, 4),
                "recall": round(self.tpr, 4), "f1": round(self.f1, 4), "fp": round(self.fp, 1),
                "fn": round(self.abnormal - self.tp, 1)}


def parse_ratio(text: str) -> tuple[int, int]:
    """`N:M` normal to abnormal (the DeepLog paper's HDFS test set is 553366:16838)."""
    try:
        normal, abnormal = (int(part) for part in text.split(":"))
    except ValueError:
        raise AlogError("--ratio", f"{text!r} is not N:M (normal:abnormal counts, e.g. 553366:16838)") from None
    if normal <= 0 or abnormal <= 0:
        raise AlogError("--ratio", f"{text!r}: both counts must be positive")
    return normal, abnormal


def at_ratio(m: Metrics, ratio: tuple[int, int]) -> RatioMetrics:
    return RatioMetrics(ratio[0], ratio[1], m.fpr, m.tpr)


def metrics(label: np.ndarray, verdict: np.ndarray) -> Metrics:
    label, verdict = np.asarray(label, bool), np.asarray(verdict, bool)
    return Metrics(int((label & verdict).sum()), int((~label & verdict).sum()),
                   int((label & ~verdict).sum()), int((~label & ~verdict).sum()))


def recall_by_kind(scored: pd.DataFrame) -> dict[str, float]:
    """Recall per anomaly kind; a row with kinds 'a;b' counts for both."""
    out: dict[str, float] = {}
    anomalies = scored[scored["label"] == 1]
    kinds = anomalies.assign(kind=anomalies["kind"].astype(str).str.split(";")).explode("kind")
    for kind, group in kinds[kinds["kind"] != ""].groupby("kind"):
        out[str(kind)] = round(float(group["verdict"].mean()), 4)
    return out


def grouping_accuracy(predicted: Sequence[Any], truth: Sequence[Any]) -> float:
    """Share of lines whose predicted group holds exactly the lines of their true group (logparser's measure)."""
    frame = pd.DataFrame({"p": np.asarray(predicted), "t": np.asarray(truth)})
    true_sizes = frame.groupby("t").size()
    correct = 0
    for _, group in frame.groupby("p"):
        truths = group["t"].unique()
        if len(truths) == 1 and true_sizes[truths[0]] == len(group):
            correct += len(group)
    return correct / len(frame) if len(frame) else 0.0


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths)))
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])
