import json

import pandas as pd
import pytest

from alog_edge.formats import vocab
from alog_edge.errors import AlogError


def test_indices_follow_first_appearance():
    v = vocab.build(["b", "a", "b", "c", "a"])
    assert v.index == {"b": 0, "a": 1, "c": 2}
    assert v.unk_index == 3 and v.num_classes == 4
    assert v.key("zzz") == 3
    assert v.c_form() == {"0": "b", "1": "a", "2": "c"}


def test_the_hash_ignores_file_formatting(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"x": 0, "y": 1}')
    b.write_text('{\n  "y": 1,\n  "x": 0\n}\n')
    assert vocab.load(a).sha256 == vocab.load(b).sha256


@pytest.mark.parametrize("content,message", [
    ('{"1": 0, "2": 1}', "keyed by template ids.*invoke fix-vocab"),
    ('{"0": "a <*>", "1": "b"}', "C-form vocab"),
    ('{"a": 0, "b": 2}', "index 1 is missing"),
    ('{"a": 0, "b": 0}', "indices repeat"),
    ('{"a": "x"}', "integer indices"),
    ('[]', "not a vocab"),
    ('{"a": 0,', "malformed JSON"),
])
def test_bad_vocabs_are_refused_with_a_way_out(tmp_path, content, message):
    path = tmp_path / "vocab.json"
    path.write_text(content)
    with pytest.raises(AlogError, match=message):
        vocab.load(path)


def test_fix_vocab_turns_template_ids_into_templates(tmp_path):
    parsed = tmp_path / "parsed.parquet"
    pd.DataFrame({"cluster_id": [7, 3, 7], "template": ["open <*>", "close <*>", "open <*>"]}).to_parquet(parsed)
    old = tmp_path / "vocab.json"
    old.write_text(json.dumps({"7": 0, "3": 1}))
    fixed = vocab.fix_vocab(old, parsed, tmp_path / "fixed.json")
    assert fixed.index == {"open <*>": 0, "close <*>": 1}
    assert vocab.load(tmp_path / "fixed.json").index == fixed.index


def test_fix_vocab_names_an_id_the_parsed_file_lacks(tmp_path):
    parsed = tmp_path / "parsed.parquet"
    pd.DataFrame({"cluster_id": [1], "template": ["a"]}).to_parquet(parsed)
    old = tmp_path / "vocab.json"
    old.write_text('{"1": 0, "9": 1}')
    with pytest.raises(AlogError, match="template id 9 does not occur"):
        vocab.fix_vocab(old, parsed, tmp_path / "fixed.json")
    assert not (tmp_path / "fixed.json").exists()
