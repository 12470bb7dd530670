"""vocab.json: template string -> dense index, in order of first appearance.

Training form `{"<template>": 0, ...}`; the C runtime's form (written by convert)
is `{"0": "<template>", ...}`. Unknown templates map to `unk_index = N`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from alog_edge.errors import AlogError
from alog_edge.fileio import AtomicOutputs, check_outputs, read_json, read_parquet, sha256_json


@dataclass(frozen=True)
class Vocab:
    index: dict[str, int]

    @property
    def size(self) -> int:
        return len(self.index)

    @property
    def unk_index(self) -> int:
        return len(self.index)

    @property
    def num_classes(self) -> int:
        return len(self.index) + 1

    @property
    def sha256(self) -> str:
        return sha256_json(self.index)

    def templates(self) -> list[str]:
        return sorted(self.index, key=self.index.__getitem__)

    def key(self, template: str) -> int:
        return self.index.get(template, self.unk_index)

    def c_form(self) -> dict[str, str]:
        return {str(i): t for i, t in enumerate(self.templates())}


def build(templates_in_line_order: Iterable[str]) -> Vocab:
    return Vocab({t: i for i, t in enumerate(dict.fromkeys(templates_in_line_order))})


def _looks_like_template_ids(keys: list[str]) -> bool:
    return all(k.strip().lstrip("-").isdigit() for k in keys)


def load(path: str | Path) -> Vocab:
    """Load a training-form vocab; the template_id form and the C form are refused with a way out."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise AlogError(path, "not a vocab: expected a non-empty JSON object {\"<template>\": index}")
    keys = list(data)
    if all(isinstance(v, str) for v in data.values()) and _looks_like_template_ids(keys):
        raise AlogError(path, "this is the C-form vocab (index -> template) written by convert; "
                              "give the training vocab.json (template -> index)")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        raise AlogError(path, "vocab values must be integer indices")
    if _looks_like_template_ids(keys):
        raise AlogError(path, "vocab is keyed by template ids, not template strings; "
                              "convert it with `invoke fix-vocab --vocab ... --parsed parsed.parquet`")
    indices = sorted(data.values())
    if indices != list(range(len(indices))):
        repeated = len(set(indices)) < len(indices)
        missing = sorted(set(range(len(indices))) - set(indices))
        detail = "indices repeat" if repeated else f"index {missing[0]} is missing"
        raise AlogError(path, f"vocab indices must be dense 0..{len(indices) - 1}: {detail}")
    return Vocab(dict(data))


def save(vocab: Vocab, path: str | Path) -> None:
    with AtomicOutputs() as out:
        out.write_json(path, vocab.index)


def fix_vocab(vocab_path: Path, parsed_path: Path, out_path: Path) -> Vocab:
    """Turn a template_id-keyed vocab into the template-string form using a parsed.parquet."""
    check_outputs(out_path)
    data = read_json(vocab_path)
    if not isinstance(data, dict) or not data or not _looks_like_template_ids(list(data)):
        raise AlogError(vocab_path, "not a template_id-keyed vocab ({\"<id>\": index}); nothing to fix")
    frame = read_parquet(parsed_path, ["cluster_id", "template"])
    id_to_template = dict(zip(frame["cluster_id"].astype("int64"), frame["template"]))
    fixed: dict[str, int] = {}
    for key, index in sorted(data.items(), key=lambda kv: kv[1]):
        template = id_to_template.get(int(key))
        if template is None:
            raise AlogError(vocab_path, f"template id {key} does not occur in {parsed_path}")
        if template in fixed:
            raise AlogError(vocab_path, f"template ids {key} and another share the template {template!r}; "
                                        "rebuild the vocab with `invoke build-deeplog`")
        fixed[template] = int(index)
    vocab = Vocab(fixed)
    if sorted(fixed.values()) != list(range(len(fixed))):
        raise AlogError(vocab_path, "vocab indices are not dense 0..N-1")
    save(vocab, out_path)
    return vocab


def keys_for(templates: pd.Series, vocab: Vocab) -> pd.Series:
    return templates.map(vocab.index).fillna(vocab.unk_index).astype("int64")


def load_c_form(path: str | Path) -> Vocab:
    """The model directory's vocab.json: {"0": "<template>", ...}, dense indices."""
    data = read_json(path)
    if not isinstance(data, dict) or not data or not all(isinstance(v, str) for v in data.values()):
        raise AlogError(path, "not a C-form vocab: expected {\"0\": \"<template>\", ...}")
    try:
        pairs = sorted((int(k), v) for k, v in data.items())
    except ValueError:
        raise AlogError(path, "C-form vocab keys must be decimal indices") from None
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise AlogError(path, f"C-form vocab indices must be dense 0..{len(pairs) - 1}")
    return build(t for _, t in pairs)
