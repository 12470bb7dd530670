"""MSCRED inputs: per-template counts per time bucket (or per N lines), per host or for the whole stream."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alog_edge.errors import AlogError
from alog_edge.fileio import AtomicOutputs, check_outputs, read_parquet
from alog_edge.formats.vocab import Vocab, keys_for

ALL = "<all>"
META_KEY = b"alog_edge.counts"


@dataclass
class CountSpec:
    bucket_seconds: float | None = 10.0   # time buckets; None -> line buckets
    bucket_lines: int | None = None       # for logs without timestamps
    per_host: bool = True

    def describe(self) -> str:
        size = f"{self.bucket_seconds:g}s" if self.bucket_seconds else f"{self.bucket_lines} lines"
        return f"{size} buckets, {'per host' if self.per_host else 'whole stream'}"


@dataclass
class Series:
    group: str
    start: np.ndarray    # datetime64[us] start of each bucket (NaT for line buckets)
    counts: np.ndarray   # [T, feature_dim] float32


def count_series(frame: pd.DataFrame, vocab: Vocab, spec: CountSpec, source: Path | None = None) -> list[Series]:
    """Counts of each vocab key (unknown last) per bucket; empty buckets in between count zero."""
    keys = keys_for(frame["template"], vocab).to_numpy()
    groups = frame["host"].fillna(ALL).astype(str) if spec.per_host else pd.Series(ALL, index=frame.index)
    use_time = spec.bucket_seconds is not None
    if use_time:
        ts = pd.to_datetime(frame["timestamp"]).ffill().bfill()
        if ts.isna().all():
            raise AlogError(source, "has no timestamps: count per N lines instead (--bucket-lines)")
        step = np.int64(round(spec.bucket_seconds * 1e6))
        micros = ts.to_numpy("datetime64[us]").astype(np.int64)
    out = []
    for group, idx in groups.groupby(groups, sort=True).groups.items():
        pos = frame.index.get_indexer(idx)
        if use_time:
            buckets = micros[pos] // step
            first = buckets.min()
            rel = buckets - first
            starts = ((first + np.arange(rel.max() + 1)) * step).astype("datetime64[us]")
        else:
            rel = np.arange(len(pos)) // spec.bucket_lines
            starts = np.full(rel.max() + 1, np.datetime64("NaT"), dtype="datetime64[us]")
        counts = np.zeros((rel.max() + 1, vocab.num_classes), np.float32)
        np.add.at(counts, (rel, keys[pos]), 1)
        out.append(Series(str(group), starts, counts))
    return out


def save(series: list[Series], spec: CountSpec, vocab: Vocab, path: Path) -> None:
    rows = {"group": [], "bucket": [], "start": [], "counts": []}
    for s in series:
        rows["group"] += [s.group] * len(s.counts)
        rows["bucket"] += list(range(len(s.counts)))
        rows["start"] += list(s.start)
        rows["counts"] += [c.tolist() for c in s.counts]
    table = pa.table({"group": pa.array(rows["group"], pa.string()), "bucket": pa.array(rows["bucket"], pa.int64()),
                      "start": pa.array(rows["start"], pa.timestamp("us")),
                      "counts": pa.array(rows["counts"], pa.list_(pa.float32()))})
    meta = {"spec": asdict(spec), "feature_dim": vocab.num_classes, "vocab_sha256": vocab.sha256}
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    with AtomicOutputs() as out:
        pq.write_table(table, out.path(path))


def load(path: Path) -> tuple[list[Series], CountSpec, dict]:
    frame = read_parquet(path, ["group", "bucket", "start", "counts"])
    raw = pq.read_schema(path).metadata or {}
    if META_KEY not in raw:
        raise AlogError(path, "not a counts file written by `invoke build-mscred`")
    meta = json.loads(raw[META_KEY])
    series = [Series(str(g), part["start"].to_numpy("datetime64[us]"),
                     np.asarray(part.sort_values("bucket")["counts"].tolist(), np.float32))
              for g, part in frame.groupby("group", sort=True)]
    return series, CountSpec(**meta["spec"]), meta


def windows(series: list[Series], window: int, stride: int) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """[n, 1, window, F] count windows and, for each, (group, index of its last bucket)."""
    xs, where = [], []
    for s in series:
        for end in range(window, len(s.counts) + 1, stride):
            xs.append(s.counts[end - window:end])
            where.append((s.group, end - 1))
    if not xs:
        return np.zeros((0, 1, window, 0), np.float32), []
    return np.stack(xs)[:, None], where


def build(workspace: Path, spec: CountSpec, *, parsed: Path | None = None, vocab_path: Path | None = None,
          out: Path | None = None) -> tuple[int, int, int]:
    """`invoke build-mscred`: counts.parquet from parsed.parquet with the vocab's template order."""
    from alog_edge.formats import vocab as vocab_mod

    parsed = parsed or workspace / "parsed.parquet"
    out = out or workspace / "counts.parquet"
    check_outputs(out)
    voc = vocab_mod.load(vocab_path or workspace / "vocab.json")
    frame = read_parquet(parsed, ["timestamp", "host", "template"])
    if len(frame) == 0:
        raise AlogError(parsed, "holds no lines")
    series = count_series(frame, voc, spec, parsed)
    save(series, spec, voc, out)
    return len(series), sum(len(s.counts) for s in series), voc.num_classes
