"""Refining Drain3's clusters after mining, for logs nobody tuned a preset for.

Drain3 puts a line in the most similar cluster of its token count, so two events that differ in
one constant word ("VM Started" / "VM Paused") share a template once the rest is similar enough.
A wildcard position whose values are a few plain words (no digit, no mask) is such a constant: the
cluster is split by the words found there. The result is a list of templates (token lists) that
the matching rule of parser.json keys lines with, so Python and the C runtime agree by construction.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

PARAM = "<*>"
_WORD = re.compile(r"[\"'(\[]?(?:\w+=)?[^\W\d_](?:[^\W\d]|[-'.])*[.,:;!?)\]\"']*")


@dataclass(frozen=True)
class Refined:
    cluster_id: int
    tokens: tuple[str, ...]


def is_word(token: str) -> bool:
    """A plain word: letters (and inner - ' .), maybe quoted or bracketed, maybe the value of a
    key=; no digit, no mask."""
    return _WORD.fullmatch(token) is not None


def split_constants(template: tuple[str, ...], members: Counter, max_words: int) -> list[tuple[str, ...]]:
    """The templates a cluster becomes: one per combination of the plain words at its constant positions."""
    constant = []
    for i, tok in enumerate(template):
        if tok != PARAM:
            continue
        values = {m[i] for m in members}
        if len(values) <= max_words and all(is_word(v) for v in values):
            constant.append(i)
    if not constant:
        return [template]
    out: dict[tuple[str, ...], None] = {}
    for m in members:
        t = list(template)
        for i in constant:
            t[i] = m[i]
        out[tuple(t)] = None
    return list(out)


def refine(clusters: list[tuple[int, tuple[str, ...]]], members: dict[int, Counter],
           max_words: int = 4) -> list[Refined]:
    """Split every cluster at its constant positions; a cluster that stays whole keeps its id."""
    next_id = max((cid for cid, _ in clusters), default=0) + 1
    out: list[Refined] = []
    for cid, template in clusters:
        parts = split_constants(template, members.get(cid, Counter()), max_words)
        if len(parts) == 1:
            out.append(Refined(cid, parts[0]))
            continue
        for t in parts:
            out.append(Refined(next_id, t))
            next_id += 1
    return out


def group_members(assigned: list[tuple[int, tuple[str, ...]]]) -> dict[int, Counter]:
    groups: dict[int, Counter] = defaultdict(Counter)
    for cid, tokens in assigned:
        groups[cid][tokens] += 1
    return groups
