"""The C runtime from Python: run `alog-edge run --all` on a log, compare every verdict with Python
onnxruntime on the same model directory, and evaluate the C verdicts with the Python evaluation."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from alog_edge.data import counts, dataset
from alog_edge.models import deeplog_rule
from alog_edge.evaluation import evaluate, timeline
from alog_edge.evaluation import metrics
from alog_edge.formats import modeldir
from alog_edge.errors import AlogError
from alog_edge.formats.vocab import Vocab

PROBABILITY_TOLERANCE = 1e-5
KEY_COLUMNS = ["session", "line_no", "end", "index", "anomalous", "reason", "rank", "probability"]
SCORE_TOLERANCE = 1e-4


@dataclass
class Verdicts:
    """Every DeepLog verdict (one per line and session) and every MSCRED window of one run."""

    keys: pd.DataFrame     # session, line_no, end, index, anomalous, reason, rank, probability (end: the
                           # verdict on the session's end, at its last line, index = the end key)
    windows: pd.DataFrame  # group, last_bucket, slot_start, end, score, verdict


def run_c(binary: Path, model_dir: Path, log: Path, *args: str, timeout: float = 600) -> Verdicts:
    """`alog-edge run --all MODEL_DIR LOG`: every verdict as JSON lines."""
    proc = subprocess.run([str(binary), "run", "--all", *args, str(model_dir), str(log)],
                          capture_output=True, timeout=timeout)
    meta_path = model_dir / "deeplog.onnx.meta.json"
    end_key = json.loads(meta_path.read_text()).get("end_key") if meta_path.exists() else None
    if proc.returncode not in (0, 3):
        raise AlogError(log, f"alog-edge run failed (exit {proc.returncode}): "
                             f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    keys, windows = [], []
    for raw in proc.stdout.splitlines():
        ev = json.loads(raw)
        if ev["model"] == "deeplog":
            keys.append({"session": ev["session"], "line_no": ev["line_no"], "end": end_key is not None and ev["index"] == end_key, "index": ev["index"],
                         "anomalous": bool(ev["anomalous"]), "reason": ev["reason"],
                         "rank": -1 if ev["rank"] is None else ev["rank"],
                         "probability": np.nan if ev["probability"] is None else ev["probability"]})
        else:
            windows.append({"group": ev["host"], "last_bucket": ev["bucket"], "slot_start": ev["slot_start"],
                            "end": ev["end"], "score": ev["score"], "verdict": int(ev["anomalous"])})
    keys_frame = pd.DataFrame(keys, columns=KEY_COLUMNS)
    win = pd.DataFrame(windows, columns=["group", "last_bucket", "slot_start", "end", "score", "verdict"])
    for col in ("slot_start", "end"):
        win[col] = pd.to_datetime(win[col], utc=True).dt.tz_localize(None).astype("datetime64[us]")
    return Verdicts(keys_frame, win)


def run_python(model_dir: Path, frame: pd.DataFrame, voc: Vocab, *, mscred: bool = True,
               rule_overrides: dict[str, Any] | None = None) -> Verdicts:
    """The same verdicts from Python onnxruntime on the same model directory (a session ends with its last
    line, as `alog-edge run` ends it at end of input); `rule_overrides` as DeepLogRule.overridden."""
    md = modeldir.load_model_dir(model_dir)
    keys = pd.DataFrame(columns=KEY_COLUMNS)
    if "deeplog" in md.meta:
        rule = deeplog_rule.from_meta(md.meta["deeplog"]).overridden(**(rule_overrides or {}))
        seqs = dataset.sequences_from_parsed(frame, voc)
        verdicts = evaluate.deeplog_verdicts(modeldir.OnnxDeepLog(model_dir), [list(k) for k in seqs["keys"]], rule)
        parts = []
        for s, k, ln, v in zip(seqs["session"], seqs["keys"], seqs["line_no"], verdicts):
            parts.append(pd.DataFrame({"session": s, "line_no": np.asarray(ln, np.int64), "end": False,
                                       "index": np.asarray(k, np.int64), "anomalous": v.anomalous,
                                       "reason": v.reason, "rank": v.rank, "probability": v.probability}))
            if rule.end_key is not None and len(ln):
                parts.append(pd.DataFrame({"session": [s], "line_no": [int(ln[-1])], "end": [True],
                                           "index": [rule.end_key], "anomalous": [v.end_anomalous],
                                           "reason": [v.end_reason],
                                           "rank": [v.end_rank], "probability": [v.end_probability]}))
        keys = pd.concat(parts, ignore_index=True) if parts else keys
    windows = pd.DataFrame(columns=["group", "last_bucket", "slot_start", "end", "score", "verdict"])
    if mscred and "mscred" in md.meta:
        meta = md.meta["mscred"]
        spec = counts.CountSpec(**meta["counts"])
        model = OnnxMSCRED(model_dir, int(meta["gap"]), int(meta["window_size"]))
        windows = timeline.score_windows(model, counts.count_series(frame, voc, spec), spec,  # type: ignore[arg-type]
                                         float(meta["threshold"]))
    return Verdicts(keys, windows)


class OnnxMSCRED:
    """The exported MSCRED behind the torch module's call signature, for `timeline.score_windows`."""

    @dataclass
    class _Config:
        gap: int
        window_size: int

    def __init__(self, model_dir: Path, gap: int, window_size: int) -> None:
        self.model, self.config = modeldir.open_model(model_dir, "mscred"), self._Config(gap, window_size)

    def __call__(self, x: Any) -> tuple[Any, Any]:
        import torch

        out = self.model.run(x.numpy().astype(np.float32))
        return torch.from_numpy(out["reconstruction"]), torch.from_numpy(out["anomaly_score"])


def compare(python: Verdicts, c: Verdicts) -> dict[str, Any]:
    """Every verdict of both sides side by side: counts of disagreements and the largest differences."""
    on = ["session", "line_no", "end"]
    k = python.keys.merge(c.keys, on=on, how="outer", suffixes=("_py", "_c"), indicator=True)
    both = k[k["_merge"] == "both"]
    prob_py = both["probability_py"].astype(float).to_numpy()
    prob_c = both["probability_c"].astype(float).to_numpy()
    w = python.windows.merge(c.windows, on=["group", "last_bucket"], how="outer", suffixes=("_py", "_c"),
                             indicator=True)
    wboth = w[w["_merge"] == "both"]
    out = {
        "keys": len(python.keys), "keys_only_python": int((k["_merge"] == "left_only").sum()),
        "keys_only_c": int((k["_merge"] == "right_only").sum()),
        "index_differs": int((both["index_py"].astype(int) != both["index_c"].astype(int)).sum()),
        "verdict_differs": int((both["anomalous_py"].astype(bool) != both["anomalous_c"].astype(bool)).sum()),
        "reason_differs": int((both["reason_py"] != both["reason_c"]).sum()),
        "rank_differs": int((both["rank_py"].astype(int) != both["rank_c"].astype(int)).sum()),
        "max_probability_diff": float(np.nanmax(np.abs(prob_py - prob_c), initial=0.0)),
        "probability_nan_differs": int((np.isnan(prob_py) != np.isnan(prob_c)).sum()),
        "windows": len(python.windows), "windows_only_python": int((w["_merge"] == "left_only").sum()),
        "windows_only_c": int((w["_merge"] == "right_only").sum()),
        "window_verdict_differs": int((wboth["verdict_py"].astype(int) != wboth["verdict_c"].astype(int)).sum()),
        "max_score_diff": float(np.max(np.abs(wboth["score_py"].astype(float).to_numpy()
                                              - wboth["score_c"].astype(float).to_numpy()), initial=0.0)),
        "slot_differs": int(((wboth["slot_start_py"] != wboth["slot_start_c"]) | (wboth["end_py"] != wboth["end_c"])).sum()),
    }
    counts_zero = [key for key in out if key.endswith(("differs", "only_python", "only_c"))]
    out["same"] = (all(out[key] == 0 for key in counts_zero) and out["max_probability_diff"] <= PROBABILITY_TOLERANCE
                   and out["max_score_diff"] <= SCORE_TOLERANCE)
    return out


def c_report(c: Verdicts, frame: pd.DataFrame, label_files: Sequence[Path] = (),
             events: Path | None = None) -> evaluate.Report:
    """The Python evaluation's report, computed from the C runtime's verdicts."""
    labels = [metrics.load_labels(p) for p in label_files]
    keys = c.keys
    sessions = (keys.assign(key=~keys["end"].astype(bool)).groupby("session", sort=False)
                .agg(keys=("key", "sum"), verdict=("anomalous", "any")).reset_index())
    sessions["verdict"] = sessions["verdict"].astype(int)
    lines = (keys.assign(verdict=keys["anomalous"].astype(int))
             .sort_values(["line_no", "verdict"], ascending=[True, False]).drop_duplicates("line_no")
             [["line_no", "verdict", "reason", "rank", "probability"]].reset_index(drop=True))
    dl = evaluate.attach_labels("deeplog", sessions, lines, labels)
    tl = None
    if len(c.windows) and events is not None:
        where = lines.merge(frame[["line_no", "host", "timestamp"]].drop_duplicates("line_no"), on="line_no")
        tl = timeline.evaluate_timeline(c.windows, timeline.load_events(events), where)
    return evaluate.Report(dl, tl)


@dataclass
class DeviceRun:
    """`alog-edge run` on a labelled log: its report, and how it compares with Python onnxruntime."""

    report: evaluate.Report
    parity: dict[str, Any]
    seconds: float


def run_and_compare(binary: Path, model_dir: Path, log: Path, frame: pd.DataFrame, voc: Vocab,
                    label_files: Sequence[Path] = (), events: Path | None = None) -> DeviceRun:
    """Run the C runtime on a log, evaluate its verdicts like the Python ones, and compare every verdict."""
    import time

    started = time.perf_counter()
    c = run_c(binary, model_dir, log)
    seconds = time.perf_counter() - started
    parity = compare(run_python(model_dir, frame, voc), c)
    return DeviceRun(c_report(c, frame, label_files, events), parity, seconds)
