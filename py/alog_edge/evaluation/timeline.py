"""Time-window evaluation: MSCRED scores per window, labels from anomaly intervals, DeepLog beside it,
the combined verdict (either model), and a plot of the score over time."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from alog_edge.data import counts as counts_mod
from alog_edge.errors import AlogError
from alog_edge.evaluation.metrics import Metrics, format_table, metrics
from alog_edge.fileio import AtomicOutputs, require_file
from alog_edge.models.mscred import MSCRED


def score_windows(model: MSCRED, series: list[counts_mod.Series], spec: counts_mod.CountSpec, threshold: float,
                  stride: int | None = None, broken_cell_level: float | None = None) -> pd.DataFrame:
    """One row per window: its group, time span, the slot it judges (its last `gap` buckets), score, verdict.
    `broken_cell_level`: one level for every cell instead of the model's (the model is left as it is)."""
    cfg = model.config
    stride = stride or cfg.gap
    x, where = counts_mod.windows(series, cfg.window_size, stride)
    if len(x) == 0:
        raise AlogError(None, f"no count series reaches the window of {cfg.window_size} buckets")
    scores = []
    with torch.no_grad():
        for i in range(0, len(x), 64):
            batch = torch.from_numpy(x[i:i + 64])
            if broken_cell_level is None:  # any model with the torch module's call signature (ONNX too)
                scores.append(model(batch)[1].numpy())
            else:
                mats = model.matrices(batch)
                scores.append(model.score((mats[:, -1] - model.reconstruct(mats)).abs(), broken_cell_level).numpy())
    score = np.concatenate(scores)
    by_group = {s.group: s for s in series}
    bucket = np.timedelta64(int(round((spec.bucket_seconds or 0) * 1e6)), "us")
    rows = []
    for (group, last), sc in zip(where, score):
        starts = by_group[group].start
        rows.append({"group": group, "last_bucket": last, "slot_start": starts[max(last - stride + 1, 0)],
                     "end": starts[last] + bucket, "score": float(sc)})
    frame = pd.DataFrame(rows)
    frame["verdict"] = (frame["score"] > threshold).astype(int)
    return frame


def load_events(path: Path) -> pd.DataFrame:
    """Anomaly intervals: CSV kind,host,start,end (host empty = every host)."""
    path = require_file(path)
    frame = pd.read_csv(path, dtype={"kind": str, "host": str}, keep_default_na=False)
    missing = {"kind", "host", "start", "end"} - set(frame.columns)
    if missing:
        raise AlogError(path, f"missing column(s): {', '.join(sorted(missing))}")
    for col in ("start", "end"):
        frame[col] = pd.to_datetime(frame[col], utc=True, errors="coerce").dt.tz_localize(None)
        if frame[col].isna().any():
            raise AlogError(path, f"row {int(frame[col].isna().idxmax()) + 2}: {col} is not a time")
    return frame


def label_slots(windows: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """A slot is anomalous when an anomaly interval of its host (or of every host) overlaps it."""
    labels, kinds = [], []
    for row in windows.itertuples():
        hit = events[((events["host"] == row.group) | (events["host"] == "") | (row.group == counts_mod.ALL))
                     & (events["start"] < row.end) & (events["end"] >= row.slot_start)]
        labels.append(int(len(hit) > 0))
        kinds.append(";".join(sorted(set(hit["kind"]))))
    return windows.assign(label=labels, kind=kinds)


def deeplog_slots(windows: pd.DataFrame, lines: pd.DataFrame) -> np.ndarray:
    """DeepLog's verdict per slot: any flagged line of that host inside it. `lines`: host, timestamp, verdict."""
    flagged = lines[lines["verdict"] == 1]
    out = np.zeros(len(windows), int)
    for i, row in enumerate(windows.itertuples()):
        same = flagged if row.group == counts_mod.ALL else flagged[flagged["host"] == row.group]
        out[i] = int(((same["timestamp"] >= row.slot_start) & (same["timestamp"] < row.end)).any())
    return out


@dataclass
class TimelineResult:
    windows: pd.DataFrame              # group, slot_start, end, score, verdict, label, kind, deeplog, combined
    metrics: dict[str, Metrics]        # per model: mscred, deeplog, combined
    recall_by_kind: dict[str, dict[str, float]]

    def summary(self) -> dict[str, Any]:
        return {"level": "window", "windows": len(self.windows), "alarms": int(self.windows["verdict"].sum()),
                "metrics": {k: m.as_dict() for k, m in self.metrics.items()},
                "recall_by_kind": self.recall_by_kind}

    def alarms_by_group(self) -> str:
        """Without labels: windows, alarms and the highest score per group."""
        rows = [{"group": g, "windows": len(w), "alarms": int(w["verdict"].sum()), "max score": f"{w['score'].max():g}"}
                for g, w in self.windows.groupby("group")]
        return (f"MSCRED: {int(self.windows['verdict'].sum())} of {len(self.windows)} windows alarm "
                "(no events file: no labels to score them against)\n"
                + format_table(rows, ["group", "windows", "alarms", "max score"]))

    def report(self) -> str:
        if not self.metrics:
            return self.alarms_by_group()
        rows = [{"model": k, "level": "window", "precision": f"{m.precision:.4f}", "recall": f"{m.recall:.4f}",
                 "f1": f"{m.f1:.4f}", "tp": m.tp, "fp": m.fp, "fn": m.fn, "tn": m.tn} for k, m in self.metrics.items()]
        text = format_table(rows, ["model", "level", "precision", "recall", "f1", "tp", "fp", "fn", "tn"])
        kinds = sorted({k for per in self.recall_by_kind.values() for k in per})
        table = [{"kind": k, **{m: f"{per.get(k, 0):.2f}" for m, per in self.recall_by_kind.items()}} for k in kinds]
        return text + "\nwindow recall by kind:\n" + format_table(table, ["kind", *self.recall_by_kind])


def evaluate_timeline(windows: pd.DataFrame, events: pd.DataFrame, deeplog_lines: pd.DataFrame | None) -> TimelineResult:
    w = label_slots(windows, events)
    models = {"mscred": w["verdict"].to_numpy()}
    if deeplog_lines is not None:
        w["deeplog"] = deeplog_slots(w, deeplog_lines)
        w["combined"] = ((w["verdict"] == 1) | (w["deeplog"] == 1)).astype(int)
        models = {"deeplog": w["deeplog"].to_numpy(), "mscred": models["mscred"], "combined": w["combined"].to_numpy()}
    result_metrics = {name: metrics(w["label"].to_numpy(), v) for name, v in models.items()}
    per_kind: dict[str, dict[str, float]] = {}
    exploded = w.assign(kind=w["kind"].str.split(";")).explode("kind")
    anomalous = exploded[(exploded["label"] == 1) & (exploded["kind"] != "")]
    for name, v in models.items():
        col = pd.Series(v, index=w.index)
        per_kind[name] = {str(k): round(float(col.loc[g.index].mean()), 4) for k, g in anomalous.groupby("kind")}
    return TimelineResult(w, result_metrics, per_kind)


def plot(result: TimelineResult, threshold: float, path: Path) -> None:
    """Score per window and host, the threshold, the windows that alarm, and the labelled slots shaded by kind
    (one colour per anomaly kind; a slot is shaded when the evaluation counts it anomalous)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    w_all = result.windows
    groups = sorted(w_all["group"].unique())
    labelled = w_all[w_all["label"] == 1]
    kinds = sorted({k for ks in labelled["kind"] for k in ks.split(";") if k})
    colour = {k: plt.get_cmap("tab10")((i + 1) % 10) for i, k in enumerate(kinds)}
    fig, axes = plt.subplots(len(groups), 1, figsize=(11, 1.8 * len(groups) + 0.8), sharex=True, squeeze=False)
    for ax, group in zip(axes[:, 0], groups):
        w = w_all[w_all["group"] == group]
        for row in labelled[labelled["group"] == group].itertuples():
            ax.axvspan(row.slot_start, row.end, color=colour.get(row.kind.split(";")[0], "tab:gray"), alpha=0.3, lw=0)
        ax.plot(w["end"], w["score"], lw=1, color="tab:blue")
        alarms = w[w["verdict"] == 1]
        ax.plot(alarms["end"], alarms["score"], "o", ms=3, color="tab:red")
        ax.axhline(threshold, color="tab:red", ls="--", lw=1)
        ax.set_ylabel(group, rotation=0, ha="right", fontsize=8)
    handles = [plt.Line2D([], [], color="tab:blue", lw=1, label="MSCRED score"),
               plt.Line2D([], [], color="tab:red", ls="--", lw=1, label=f"threshold {threshold:g}"),
               plt.Line2D([], [], color="tab:red", marker="o", ls="", ms=3, label="alarm"),
               *(Patch(color=c, alpha=0.3, label=k) for k, c in colour.items())]
    top = 1 - 0.75 / fig.get_figheight()
    title = "MSCRED anomaly score (broken cells) per window" + ("; shaded: labelled slots by kind" if kinds else "")
    fig.suptitle(title, fontsize=9, y=1 - 0.1 / fig.get_figheight(), va="top")
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.35 / fig.get_figheight()),
               ncol=min(len(handles), 9), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, top))
    with AtomicOutputs() as out:
        tmp = out.path(path)
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def write_scores(result: TimelineResult, path: Path) -> None:
    with AtomicOutputs() as out:
        result.windows.to_parquet(out.path(path), index=False)
