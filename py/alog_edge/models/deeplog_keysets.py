"""DeepLog's key-set check: a session whose set of keys no normal training session had is anomalous.

Normal sessions of a system draw their keys from a few workflows (HDFS: 11 key sets over 5,583 training
sessions), while many anomalies add a key to a workflow or stop before its last step. The check is made
as keys arrive, so a stream needs only the set of keys seen so far per session:
- the key that makes the session's keys no longer fit inside any known set is anomalous (reason
  `key_set`: the session took a combination of keys no training session had; the keys after it are not);
- the end is anomalous when the session's keys fit inside a known set without being one (reason
  `key_set`: it stopped short of every workflow it could belong to).
Together: a session is flagged exactly when its final key set is not a known one.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from alog_edge.errors import AlogError


@dataclass(frozen=True)
class KeySets:
    sets: tuple[frozenset[int], ...]   # the key sets of normal sessions, most common first
    min_support: int = 1               # how many training sessions a set needed to be kept

    def fits(self, keys: frozenset[int] | set[int]) -> bool:
        """Whether these keys lie inside some known set."""
        return any(keys <= known for known in self.sets)

    def judge(self, keys: Sequence[int]) -> tuple[np.ndarray, bool]:
        """Per key: flagged as it arrives (only the one that breaks the fit); whether the end is flagged."""
        flags = np.zeros(len(keys), dtype=bool)
        have: set[int] = set()
        fitting = True
        for i, key in enumerate(int(k) for k in keys):
            if key in have:
                continue
            have.add(key)
            if fitting and not self.fits(have):
                fitting, flags[i] = False, True
        end = bool(have) and fitting and frozenset(have) not in set(self.sets)
        return flags, end

    def meta(self) -> dict[str, Any]:
        return {"key_sets": [sorted(s) for s in self.sets], "key_set_support": self.min_support}


def mine(sessions: Iterable[Sequence[int]], min_support: int = 1, ignore: Iterable[int] = ()) -> KeySets:
    """The key sets of at least `min_support` of these normal sessions (keys in `ignore`, e.g. the unknown
    key, never make a set: their sessions are left out)."""
    if min_support < 1:
        raise AlogError("--key-set-support", f"must be at least 1, not {min_support}")
    skip = set(ignore)
    counts = Counter(frozenset(int(k) for k in keys) for keys in sessions)
    kept = [(s, n) for s, n in counts.items() if n >= min_support and s and not s & skip]
    kept.sort(key=lambda item: (-item[1], sorted(item[0])))
    return KeySets(tuple(s for s, _ in kept), min_support)


def from_fields(fields: dict[str, Any], classes: int) -> KeySets | None:
    """From a checkpoint payload or a meta.json: null or absent means no key-set check."""
    raw = fields.get("key_sets")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(s, list) for s in raw):
        raise AlogError(None, "key_sets must be a list of key lists")
    sets = []
    for i, s in enumerate(raw):
        if not all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k < classes for k in s):
            raise AlogError(None, f"key_sets[{i}] holds a key outside 0..{classes - 1}")
        sets.append(frozenset(s))
    return KeySets(tuple(sets), int(fields.get("key_set_support") or 1))
