"""DeepLog sequences: per-session key sequences, windows, and the DeepLog HDFS session format."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alog_edge.formats import logformat
from alog_edge.errors import AlogError
from alog_edge.fileio import AtomicOutputs, check_outputs, read_parquet
from alog_edge.formats.vocab import Vocab, keys_for

STREAM = "<stream>"
SEQUENCES_SCHEMA = pa.schema([("session", pa.string()), ("keys", pa.list_(pa.int64())),
                              ("line_no", pa.list_(pa.int64())), ("source", pa.string())])


def session_of_lines(frame: pd.DataFrame) -> pd.Series:
    """A line's session: its session id(s), else its host, else the one stream."""
    key = frame["session"].astype("object")
    key = key.where(key.notna(), frame["host"].astype("object"))
    return key.where(key.notna(), STREAM)


def sequences_from_parsed(frame: pd.DataFrame, vocab: Vocab) -> pd.DataFrame:
    """One row per session: its keys and line numbers in log order. A line naming several sessions joins each."""
    lines = pd.DataFrame({
        "session": session_of_lines(frame).str.split(" "),
        "key": keys_for(frame["template"], vocab),
        "line_no": frame["line_no"].astype("int64"),
        "source": frame["source"] if "source" in frame else "",
        "order": np.arange(len(frame)),
    }).explode("session")
    grouped = lines.sort_values("order", kind="stable").groupby("session", sort=False)
    out = grouped.agg(keys=("key", list), line_no=("line_no", list), source=("source", "first"),
                      first=("order", "min")).sort_values("first").drop(columns="first")
    return out.reset_index()


def read_hdfs_sessions(path: Path, templates: list[str], vocab: Vocab) -> pd.DataFrame:
    """DeepLog's HDFS format: `<block id>,<event ids>` or just the ids; event id N is template line N."""
    sessions, keys = [], []
    for line_no, text in logformat.read_lines(path):
        text = text.strip()
        if not text:
            continue
        name, _, ids = text.rpartition(",")
        try:
            events = [int(tok) for tok in ids.split()]
        except ValueError:
            raise AlogError(path, f"line {line_no}: event ids must be integers") from None
        bad = [e for e in events if not 1 <= e <= len(templates)]
        if bad:
            raise AlogError(path, f"line {line_no}: event id {bad[0]} is not in the templates file (1..{len(templates)})")
        sessions.append(name or f"{path.name}:{line_no}")
        keys.append([vocab.key(templates[e - 1]) for e in events])
    return pd.DataFrame({"session": sessions, "keys": keys,
                         "line_no": [[] for _ in keys], "source": path.name})


def read_sequences(path: Path) -> pd.DataFrame:
    frame = read_parquet(path, ["session", "keys"])
    if len(frame) == 0:
        raise AlogError(path, "holds no sessions")
    return frame


@dataclass
class Windows:
    x: np.ndarray  # [n, h] int64: the h keys before the target
    y: np.ndarray  # [n] int64: the next key


def session_padded(keys: list[int] | np.ndarray, h: int, start_key: int | None, end_key: int | None) -> np.ndarray:
    """A session's keys with h start keys before them and the end key after them (where the model has them)."""
    arr = np.asarray(keys, dtype=np.int64)
    if start_key is None:
        return arr
    tail = [end_key] if end_key is not None else []
    return np.concatenate([np.full(h, start_key, np.int64), arr, np.asarray(tail, np.int64)])


def windows(key_lists: list[list[int]] | pd.Series, h: int, start_key: int | None = None,
            end_key: int | None = None) -> Windows:
    """Every (previous h keys, next key) pair of every session long enough to have one; with a start key
    every session is padded, so each of its keys (and its end key) is a target."""
    xs, ys = [], []
    for keys in key_lists:
        arr = session_padded(keys, h, start_key, end_key)
        if len(arr) <= h:
            continue
        view = np.lib.stride_tricks.sliding_window_view(arr, h + 1)
        xs.append(view[:, :h])
        ys.append(view[:, h])
    if not xs:
        return Windows(np.zeros((0, h), np.int64), np.zeros(0, np.int64))
    return Windows(np.concatenate(xs), np.concatenate(ys))


@dataclass
class BuildResult:
    vocab_size: int
    sessions: int
    keys: int


def build_deeplog_inputs(workspace: Path, *, parsed: Path | None = None, sessions_file: Path | None = None,
                         templates_file: Path | None = None, vocab_out: Path | None = None,
                         sequences_out: Path | None = None) -> BuildResult:
    """vocab.json + sequences.parquet from a parsed.parquet, or from HDFS session files and their templates."""
    from alog_edge.formats import vocab as vocab_mod
    from alog_edge.data.template_list import read_template_file

    vocab_out = vocab_out or workspace / "vocab.json"
    sequences_out = sequences_out or workspace / "sequences.parquet"
    check_outputs(vocab_out, sequences_out)
    if sessions_file is not None:
        if templates_file is None:
            raise AlogError(sessions_file, "session files carry event ids: give their templates file (--templates)")
        templates = read_template_file(templates_file)
        vocab = vocab_mod.build(templates)
        seqs = read_hdfs_sessions(sessions_file, templates, vocab)
    else:
        parsed = parsed or workspace / "parsed.parquet"
        frame = read_parquet(parsed, ["line_no", "session", "host", "template"])
        if len(frame) == 0:
            raise AlogError(parsed, "holds no lines")
        vocab = vocab_mod.build(frame["template"])
        seqs = sequences_from_parsed(frame, vocab)
    if len(seqs) == 0:
        raise AlogError(sessions_file or parsed, "holds no sessions")
    with AtomicOutputs() as out:
        out.write_json(vocab_out, vocab.index)
        table = pa.Table.from_pandas(seqs[["session", "keys", "line_no", "source"]],
                                     schema=SEQUENCES_SCHEMA, preserve_index=False)
        pq.write_table(table, out.path(sequences_out))
    return BuildResult(vocab.size, len(seqs), int(sum(len(k) for k in seqs["keys"])))
