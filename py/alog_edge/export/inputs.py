"""The inputs convert checks a model with: real windows from the training data, random ones on several
shapes (validation against torch), and the few that golden.json records."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from alog_edge.data import dataset
from alog_edge.errors import AlogError
from alog_edge.formats.modeldir import Case
from alog_edge.formats.vocab import Vocab

TRACE_BATCH = 2  # a size-1 axis would be frozen into the traced graph


VALIDATE_BATCHES = (1, 3, 64)
REAL_WINDOWS = 256  # real DeepLog windows checked under `validate`
REAL_COUNT_WINDOWS = 64  # real MSCRED windows: each is a whole ConvLSTM run, far dearer than a DeepLog window


def real_deeplog_windows(path: Path, seq_len: int, voc: Vocab, limit: int = REAL_WINDOWS,
                         start_key: int | None = None, end_key: int | None = None) -> np.ndarray:
    """Up to `limit` distinct windows of `seq_len` keys from sequences.parquet, spread over the file (padded with
    start keys as the model sees them)."""
    seqs = dataset.read_sequences(path)
    x = dataset.windows([list(k) for k in seqs["keys"]], seq_len, start_key, end_key).x
    if len(x) == 0:
        raise AlogError(path, f"no session is longer than --seq-len {seq_len}: no real window to check")
    if np.where(x == start_key, 0, x).max() >= voc.num_classes or x.min() < 0:
        raise AlogError(path, f"holds keys outside 0..{voc.unk_index}: built with another vocab")
    x = np.unique(x, axis=0)
    pick = np.linspace(0, len(x) - 1, num=min(limit, len(x))).round().astype(int)
    return np.ascontiguousarray(x[np.unique(pick)])


def real_mscred_windows(path: Path, window_size: int, voc: Vocab, limit: int = REAL_COUNT_WINDOWS) -> np.ndarray:
    """Up to `limit` count windows [n, 1, window_size, feature_dim] from counts.parquet, spread over it."""
    from alog_edge.data import counts

    series, _, meta = counts.load(path)
    if meta.get("feature_dim") != voc.num_classes or meta.get("vocab_sha256") != voc.sha256:
        raise AlogError(path, "was counted with another vocab; rebuild it with `invoke build-mscred`")
    x, _ = counts.windows(series, window_size, max(1, window_size // 4))
    if len(x) == 0:
        raise AlogError(path, f"no count series is as long as the window ({window_size} buckets)")
    pick = np.unique(np.linspace(0, len(x) - 1, num=min(limit, len(x))).round().astype(int))
    return np.ascontiguousarray(x[pick], dtype=np.float32)


def deeplog_validation_cases(num_classes: int, seq_len: int, real: np.ndarray | None, full: bool,
                             seed: int = 0) -> list[Case]:
    """Random keys (unknown included) over batch sizes x lengths, plus real windows; one batch unless `full`."""
    rng = np.random.default_rng(seed)
    if not full:
        if real is not None:
            return [Case(f"real windows b{min(64, len(real))}", real[:64])]
        return [Case(f"random b64 l{seq_len}", rng.integers(0, num_classes, (64, seq_len), dtype=np.int64))]
    cases = [Case(f"random b{b} l{n}", rng.integers(0, num_classes, (b, n), dtype=np.int64))
             for b in VALIDATE_BATCHES for n in dict.fromkeys((seq_len, 1, 2 * seq_len))]
    if real is not None:
        cases.append(Case(f"real windows b{len(real)}", real))
    return cases


def _random_counts(rng: np.random.Generator, batch: int, window: int, features: int) -> np.ndarray:
    # sparse, bursty counts like a real template-count series: most templates are quiet in a bucket
    counts = rng.poisson(rng.gamma(0.5, 4.0, size=(batch, 1, 1, features)), size=(batch, 1, window, features))
    return counts.astype(np.float32)


def mscred_validation_cases(window_size: int, feature_dim: int, real: np.ndarray | None, full: bool,
                            seed: int = 0) -> list[Case]:
    rng = np.random.default_rng(seed)
    quiet = Case("all-zero window", np.zeros((2, 1, window_size, feature_dim), np.float32))
    if not full:
        sample = real[:8] if real is not None else _random_counts(rng, 8, window_size, feature_dim)
        return [Case(f"{'real' if real is not None else 'random'} windows b{len(sample)}", sample)]
    cases = [Case(f"random b{b}", _random_counts(rng, b, window_size, feature_dim)) for b in VALIDATE_BATCHES]
    cases.append(quiet)  # quiet periods are common on a device; a NaN there would be silent
    if real is not None:
        cases.append(Case(f"real windows b{len(real)}", real))
    return cases


def deeplog_golden_cases(seq_len: int, seen_keys: Sequence[int], unk_index: int,
                         real: np.ndarray | None, start_key: int | None = None) -> list[Case]:
    rng = np.random.default_rng(1)
    pool = np.asarray(sorted(seen_keys) or [0], dtype=np.int64)
    windows = real[:4] if real is not None else rng.choice(pool, size=(4, seq_len))
    with_unk = windows[:1].copy()
    with_unk[0, -1] = unk_index
    longer = np.concatenate([windows[:1], windows[1:2]], axis=1)
    cases = [Case("real windows" if real is not None else "windows of seen keys", windows),
             Case("length-1 sequence", pool[:1].reshape(1, 1)),
             Case("unknown key last", with_unk),
             Case(f"sequence of {longer.shape[1]} keys", longer)]
    if start_key is not None:  # the first key's window (all start keys) and the second's; the end key's output
        first = np.full((2, seq_len), start_key, np.int64)
        first[1, -1] = windows[0, -1]
        cases.append(Case("start keys (a session's first and second key)", first))
    return cases


def mscred_golden_cases(window_size: int, feature_dim: int, real: np.ndarray | None) -> list[Case]:
    rng = np.random.default_rng(1)
    windows = real[:1] if real is not None else _random_counts(rng, 1, window_size, feature_dim)
    burst = np.zeros((1, 1, window_size, feature_dim), np.float32)
    burst[0, 0, -1, :] = 50.0
    return [Case("real windows" if real is not None else "random count windows", windows),
            Case("all-zero window", np.zeros((1, 1, window_size, feature_dim), np.float32)),
            Case("burst in the last bucket", burst)]
