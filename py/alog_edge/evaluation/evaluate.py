"""DeepLog scoring and evaluation runs: verdicts per key and per session, labels attached, the DeepLog table,
and `evaluate_all` (DeepLog beside MSCRED's time windows and the combined verdict)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from alog_edge.data import counts, dataset, parse, template_list
from alog_edge.data.dataset import session_padded
from alog_edge.errors import AlogError
from alog_edge.evaluation import timeline
from alog_edge.evaluation.metrics import (Labels, Metrics, at_ratio, format_table, load_labels, metrics, parse_ratio,
                                          recall_by_kind)
from alog_edge.fileio import AtomicOutputs, read_parquet
from alog_edge.formats import checkpoint
from alog_edge.formats import vocab as vocab_mod
from alog_edge.models import deeplog_rule
from alog_edge.models.deeplog_rule import RULE_PROBABILITY, DeepLogRule
from alog_edge.models.deeplog import DeepLog

REASON_NONE, REASON_UNSEEN, REASON_TOP_K, REASON_PROBABILITY, REASON_END = "", "unseen", "top_k", "probability", "end"
REASON_KEY_SET = "key_set"


@dataclass
class KeyVerdicts:
    """Per-key results of one session, aligned with its keys, and the verdict on where it ended."""

    anomalous: np.ndarray   # bool
    reason: list[str]
    rank: np.ndarray        # int: classes with a strictly larger logit (-1 where not predicted)
    probability: np.ndarray  # float: softmax probability of the actual key (nan where not predicted)
    end_anomalous: bool = False   # the model did not expect the session to end there
    end_rank: int = -1
    end_probability: float = float("nan")
    end_reason: str = ""          # "end" (the model's rule) or "key_set" when end_anomalous

    @property
    def session_anomalous(self) -> bool:
        return bool(self.anomalous.any()) or self.end_anomalous

    @property
    def min_probability(self) -> float:
        """The lowest probability of a predicted key or of the end (1 when nothing was predicted)."""
        probs = np.append(self.probability, self.end_probability)
        probs = probs[~np.isnan(probs)]
        return float(probs.min()) if len(probs) else 1.0


def softmax_judge(logits: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank and probability of each row's target, as the C runtime computes them (double softmax of the float
    logits, probability stored as float32), so both apply a probability threshold to the same value."""
    actual = np.take_along_axis(logits, target[:, None], 1)
    ranks = (logits > actual).sum(axis=1).astype(np.int64)
    wide = logits.astype(np.float64)
    top = wide.max(axis=1, keepdims=True)
    probs = (np.exp(actual[:, 0].astype(np.float64) - top[:, 0]) / np.exp(wide - top).sum(axis=1)).astype(np.float32)
    return ranks, probs


def deeplog_verdicts(model: DeepLog, sessions: Sequence[Sequence[int]], rule: DeepLogRule,
                     batch_size: int = 4096) -> list[KeyVerdicts]:
    """DeepLog's verdicts: a key is anomalous when unseen in training, or when the rule flags its prediction
    from the h keys before it (rank >= g, or probability below the threshold). With session keys every key is
    predicted (the first from start keys) and so is the end of the session; without, only keys after the h-th."""
    h = rule.window
    results, owners, xs, ys = [], [], [], []
    for s, keys in enumerate(sessions):
        arr = np.asarray(keys, dtype=np.int64)
        unseen = np.array([k == rule.unk_index or k not in rule.seen_keys for k in arr], dtype=bool)
        results.append(KeyVerdicts(unseen.copy(), [REASON_UNSEEN if u else REASON_NONE for u in unseen],
                                   np.full(len(arr), -1, np.int64), np.full(len(arr), np.nan)))
        padded = session_padded(arr, h, rule.start_key, rule.end_key)
        if len(padded) > h:
            view = np.lib.stride_tricks.sliding_window_view(padded, h + 1)
            xs.append(view[:, :h])
            ys.append(view[:, h])
            first = 0 if rule.start_key is not None else h  # the key index of the first target
            owners.extend((s, first + i) for i in range(len(view)))
    if xs:
        x, y = np.concatenate(xs), np.concatenate(ys)
        ranks, probs = np.empty(len(x), np.int64), np.empty(len(x), np.float32)
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                logits = model(torch.from_numpy(x[start:start + batch_size])).numpy()
                part = slice(start, start + len(logits))
                ranks[part], probs[part] = softmax_judge(logits, y[part])
        flagged = rule.flags(ranks, probs)
        why = REASON_PROBABILITY if rule.kind == RULE_PROBABILITY else REASON_TOP_K
        for (s, pos), rank, prob, flag in zip(owners, ranks, probs, flagged):
            res = results[s]
            if pos == len(res.anomalous):  # the end key
                res.end_rank, res.end_probability, res.end_anomalous = int(rank), float(prob), bool(flag)
                continue
            res.rank[pos], res.probability[pos] = rank, prob
            if not res.anomalous[pos] and flag:
                res.anomalous[pos], res.reason[pos] = True, why
    for res in results:
        res.end_reason = REASON_END if res.end_anomalous else REASON_NONE
    if rule.key_sets is not None:
        for keys, res in zip(sessions, results):
            apply_key_sets(res, rule.key_sets.judge(keys))
    return results


def apply_key_sets(res: KeyVerdicts, judged: tuple[np.ndarray, bool]) -> None:
    """The key-set check after the model's: it marks only what is not anomalous already."""
    flags, end = judged
    for i in np.flatnonzero(flags & ~res.anomalous):
        res.anomalous[i], res.reason[i] = True, REASON_KEY_SET
    if end and not res.end_anomalous:
        res.end_anomalous, res.end_reason = True, REASON_KEY_SET


# --- one evaluation run ---------------------------------------------------------------------

@dataclass
class Evaluation:
    model: str
    sessions: pd.DataFrame          # session, keys, verdict, label (-1 = unlabelled), kind
    lines: pd.DataFrame | None      # line_no, verdict, reason, rank, probability, label, kind
    session_metrics: Metrics | None
    line_metrics: Metrics | None
    by_kind: dict[str, float]
    ratio: tuple[int, int] | None = None  # normal:abnormal to project the session rates onto

    def summary(self) -> dict[str, Any]:
        labelled = int((self.sessions["label"] >= 0).sum())
        return {
            "model": self.model,
            "sessions": len(self.sessions),
            "sessions_labelled": labelled,
            "sessions_flagged": int(self.sessions["verdict"].sum()),
            "session_level": self.session_metrics.as_dict() if self.session_metrics else None,
            "line_level": self.line_metrics.as_dict() if self.line_metrics else None,
            "recall_by_kind": self.by_kind,
            "session_at_ratio": at_ratio(self.session_metrics, self.ratio).as_dict()
            if self.ratio and self.session_metrics else None,
        }


def score_deeplog(model: DeepLog, payload: dict[str, Any], seqs: pd.DataFrame,
                  labels: Sequence[Labels] = (), rule: DeepLogRule | None = None) -> Evaluation:
    """DeepLog verdicts for every session (and line, where sequences carry line numbers), scored against labels.
    An unexpected end of a session is charged to its last line."""
    rule = rule or deeplog_rule.from_payload(payload)
    verdicts = deeplog_verdicts(model, [list(k) for k in seqs["keys"]], rule)
    sessions = pd.DataFrame({"session": seqs["session"].astype(str), "keys": [len(k) for k in seqs["keys"]],
                             "verdict": [int(v.session_anomalous) for v in verdicts]})
    rows = []
    if "line_no" in seqs:
        for line_nos, v in zip(seqs["line_no"], verdicts):
            if len(line_nos):
                reason = list(v.reason)
                anomalous = v.anomalous.astype(int)
                if v.end_anomalous and not anomalous[-1]:
                    anomalous[-1], reason[-1] = 1, v.end_reason
                rows.append(pd.DataFrame({"line_no": np.asarray(line_nos, np.int64), "verdict": anomalous,
                                          "reason": reason, "rank": v.rank, "probability": v.probability}))
    lines = None
    if rows:
        # A line shared by several sessions (an HDFS delete of many blocks) is anomalous if any of them says so.
        lines = (pd.concat(rows).sort_values(["line_no", "verdict"], ascending=[True, False])
                 .drop_duplicates("line_no").reset_index(drop=True))
    return attach_labels("deeplog", sessions, lines, labels)


def attach_labels(model: str, sessions: pd.DataFrame, lines: pd.DataFrame | None,
                  labels: Sequence[Labels]) -> Evaluation:
    sessions = sessions.assign(label=-1, kind="")
    if lines is not None:
        lines = lines.assign(label=-1, kind="")
    session_m = line_m = None
    by_kind: dict[str, float] = {}
    for lab in labels:
        table = lab.frame.drop_duplicates("id").set_index("id")
        if lab.level == "session":
            known = sessions["session"].isin(table.index)
            sessions.loc[known, "label"] = sessions.loc[known, "session"].map(table["label"]).astype(int)
            sessions.loc[known, "kind"] = sessions.loc[known, "session"].map(table["kind"]).astype(str)
            scored = sessions[known]
            session_m = metrics(scored["label"].to_numpy(), scored["verdict"].to_numpy())
            by_kind = recall_by_kind(scored)
        elif lines is not None:
            known = lines["line_no"].isin(table.index)
            lines.loc[known, "label"] = lines.loc[known, "line_no"].map(table["label"]).astype(int)
            lines.loc[known, "kind"] = lines.loc[known, "line_no"].map(table["kind"]).astype(str)
            scored = lines[known]
            line_m = metrics(scored["label"].to_numpy(), scored["verdict"].to_numpy())
    return Evaluation(model, sessions, lines, session_m, line_m, by_kind)


def report(evaluations: Sequence[Evaluation]) -> str:
    """A short table for people: one row per model and level."""
    rows = []
    for ev in evaluations:
        for level, m in (("session", ev.session_metrics), ("line", ev.line_metrics)):
            if m is not None:
                rows.append({"model": ev.model, "level": level, "precision": f"{m.precision:.4f}",
                             "recall": f"{m.recall:.4f}", "f1": f"{m.f1:.4f}", "fpr": f"{m.fpr:.4%}",
                             "tpr": f"{m.tpr:.4f}", "tp": m.tp, "fp": m.fp, "fn": m.fn, "tn": m.tn})
                if level == "session" and ev.ratio:
                    r = at_ratio(m, ev.ratio)
                    rows.append({"model": ev.model, "level": f"at {r.normal}:{r.abnormal}",
                                 "precision": f"{r.precision:.4f}", "recall": f"{r.tpr:.4f}", "f1": f"{r.f1:.4f}",
                                 "fpr": f"{r.fpr:.4%}", "tpr": f"{r.tpr:.4f}", "tp": f"{r.tp:.0f}",
                                 "fp": f"{r.fp:.0f}", "fn": f"{r.abnormal - r.tp:.0f}", "tn": f"{r.normal - r.fp:.0f}"})
    columns = ["model", "level", "precision", "recall", "f1", "fpr", "tpr", "tp", "fp", "fn", "tn"]
    text = format_table(rows, columns) if rows else "no labels given: verdicts only"
    for ev in evaluations:
        if ev.by_kind:
            text += f"\n{ev.model} recall by kind: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(ev.by_kind.items()))
        text += f"\n{ev.model}: {int(ev.sessions['verdict'].sum())} of {len(ev.sessions)} sessions flagged"
    return text


def write_session_csv(ev: Evaluation, path: Path) -> None:

    with AtomicOutputs() as out:
        ev.sessions[["session", "label", "verdict"]].to_csv(out.path(path), index=False)


def evaluate_deeplog(workspace: Path, *, model_path: Path | None = None, vocab_path: Path | None = None,
                     logs: Sequence[Path] = (), parsed: Path | None = None, parser_path: Path | None = None,
                     normal: Path | None = None, abnormal: Path | None = None, templates: Path | None = None,
                     label_files: Sequence[Path] = (), year: int | None = None,
                     frame: pd.DataFrame | None = None, rule: str | None = None, top_k: int | None = None,
                     probability_threshold: float | None = None, ratio: tuple[int, int] | None = None,
                     key_sets: bool | None = None) -> Evaluation:
    """Score held-out data given as raw logs (matched with the workspace's parser), a parsed.parquet,
    an already matched frame, or DeepLog HDFS session files (--normal/--abnormal, labelled by file).
    `rule`, `top_k` and `probability_threshold` override the checkpoint's rule; `ratio` (normal, abnormal)
    projects the session FPR/TPR onto that mix."""
    vocab = vocab_mod.load(vocab_path or workspace / "vocab.json")
    model, payload = checkpoint.load_deeplog(model_path or workspace / "deeplog.pth", vocab)
    labels = [load_labels(p) for p in label_files]
    if normal is not None or abnormal is not None:
        if templates is None:
            raise AlogError(normal or abnormal, "session files carry event ids: give their templates file (--templates)")
        given_templates = template_list.read_template_file(templates)
        parts, session_labels = [], []
        for path, label in ((normal, 0), (abnormal, 1)):
            if path is not None:
                seqs = dataset.read_hdfs_sessions(path, given_templates, vocab)
                seqs["session"] = f"{path.name}:" + pd.Series(range(1, len(seqs) + 1)).astype(str) + ":" + seqs["session"]
                parts.append(seqs)
                session_labels.append(pd.DataFrame({"id": seqs["session"], "label": label, "kind": ""}))
        seqs = pd.concat(parts, ignore_index=True).drop(columns=["line_no"])
        labels.append(Labels("session", pd.concat(session_labels, ignore_index=True)))
    else:
        if frame is None:
            frame = load_frame(workspace, logs=logs, parsed=parsed, parser_path=parser_path, year=year)
        seqs = dataset.sequences_from_parsed(frame, vocab)
    chosen = deeplog_rule.from_payload(payload).overridden(rule, top_k, probability_threshold, key_sets)
    ev = score_deeplog(model, payload, seqs, labels, chosen)
    ev.ratio = ratio
    return ev


def rule_options(rule: str | None, top_k: Any, probability_threshold: Any, ratio: str | None,
                 no_key_sets: bool = False) -> dict[str, Any]:
    """evaluate_deeplog's rule overrides from command-line strings (one error line for a bad one)."""
    def number(flag: str, value: Any, kind: type) -> Any:
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError:
            raise AlogError(flag, f"{value!r} is not a number") from None

    if rule is not None and rule not in deeplog_rule.RULES:
        raise AlogError("--rule", f"must be one of {', '.join(deeplog_rule.RULES)}, not {rule!r}")
    return {"rule": rule, "top_k": number("--top-k", top_k, int),
            "probability_threshold": number("--probability-threshold", probability_threshold, float),
            "ratio": parse_ratio(ratio) if ratio else None, "key_sets": False if no_key_sets else None}


def load_frame(workspace: Path, *, logs: Sequence[Path] = (), parsed: Path | None = None,
               parser_path: Path | None = None, year: int | None = None) -> pd.DataFrame:
    """Held-out lines keyed by the workspace's parser (raw logs) or read from a parsed.parquet."""
    if logs:
        return parse.match(list(logs), parser_path or workspace / "parser.json", year=year)
    if parsed is not None:
        return read_parquet(parsed, ["line_no", "timestamp", "session", "host", "template"])
    raise AlogError(None, "nothing to evaluate: give --logs, --parsed, or --normal/--abnormal")


@dataclass
class Report:
    deeplog: Evaluation | None
    timeline: Any  # timeline.TimelineResult | None

    def text(self) -> str:
        parts = [report([self.deeplog])] if self.deeplog is not None else []
        if self.timeline is not None:
            parts.append(self.timeline.report())
        return "\n\n".join(parts)

    def summary(self) -> dict[str, Any]:
        return {"deeplog": self.deeplog.summary() if self.deeplog is not None else None,
                "timeline": self.timeline.summary() if self.timeline is not None else None}


def evaluate_all(workspace: Path, *, deeplog_path: Path | None = None, mscred_path: Path | None = None,
                 vocab_path: Path | None = None, logs: Sequence[Path] = (), parsed: Path | None = None,
                 parser_path: Path | None = None, label_files: Sequence[Path] = (), events: Path | None = None,
                 year: int | None = None, plot_path: Path | None = None, scores_path: Path | None = None,
                 threshold: float | None = None, broken_cell_level: float | None = None,
                 frame: pd.DataFrame | None = None, **deeplog_options: Any) -> Report:
    """DeepLog per session/line and, when an MSCRED checkpoint is there, MSCRED per time window beside
    DeepLog and the combined verdict; window labels come from an events file of anomaly intervals.
    `threshold` and `broken_cell_level` (one level for every cell) override the checkpoint's;
    `deeplog_options` (rule_options) DeepLog's rule."""
    vocab_path = vocab_path or workspace / "vocab.json"
    deeplog_path = deeplog_path or workspace / "deeplog.pth"
    mscred_path = mscred_path or workspace / "mscred.pth"
    if frame is None:
        frame = load_frame(workspace, logs=logs, parsed=parsed, parser_path=parser_path, year=year)
    dl = evaluate_deeplog(workspace, model_path=deeplog_path, vocab_path=vocab_path, label_files=label_files,
                          frame=frame, **deeplog_options) if deeplog_path.exists() else None
    tl = None
    if mscred_path.exists():
        vocab = vocab_mod.load(vocab_path)
        model, payload = checkpoint.load_mscred(mscred_path, vocab)
        spec = counts.CountSpec(**payload["counts"])
        alarm = float(payload["threshold"]) if threshold is None else threshold
        windows = timeline.score_windows(model, counts.count_series(frame, vocab, spec), spec, alarm,
                                         broken_cell_level=broken_cell_level)
        lines = None
        if dl is not None and dl.lines is not None:
            lines = dl.lines.merge(frame[["line_no", "host", "timestamp"]].drop_duplicates("line_no"), on="line_no")
        if events is not None:
            tl = timeline.evaluate_timeline(windows, timeline.load_events(events), lines)
            if plot_path is not None:
                timeline.plot(tl, alarm, plot_path)
        else:
            tl = timeline.TimelineResult(windows.assign(label=-1, kind=""), {}, {})
            if plot_path is not None:
                timeline.plot(tl, alarm, plot_path)
        if scores_path is not None:
            timeline.write_scores(tl, scores_path)
    if dl is None and tl is None:
        raise AlogError(deeplog_path, "no such checkpoint (and no MSCRED checkpoint either)")
    return Report(dl, tl)
