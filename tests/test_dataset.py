import numpy as np
import pandas as pd
import pytest

from alog_edge.data import dataset
from alog_edge.formats import vocab
from alog_edge.errors import AlogError


def frame(sessions, hosts, templates):
    n = len(templates)
    return pd.DataFrame({"line_no": range(1, n + 1), "session": sessions, "host": hosts,
                         "template": templates, "source": "x.log"})


def test_lines_group_by_session_then_host_then_one_stream():
    v = vocab.build(["a", "b", "c"])
    f = frame(["s1", None, "s1", None, "s2 s1"], ["h1", "h1", "h1", None, "h2"], ["a", "b", "c", "a", "b"])
    seqs = dataset.sequences_from_parsed(f, v).set_index("session")
    assert seqs.loc["s1", "keys"] == [0, 2, 1] and seqs.loc["s1", "line_no"] == [1, 3, 5]
    assert seqs.loc["h1", "keys"] == [1]
    assert seqs.loc[dataset.STREAM, "keys"] == [0]
    assert seqs.loc["s2", "keys"] == [1]


def test_unknown_templates_get_the_unknown_key():
    v = vocab.build(["a"])
    seqs = dataset.sequences_from_parsed(frame(["s"] * 2, [None] * 2, ["a", "new"]), v)
    assert seqs["keys"][0] == [0, v.unk_index]


def test_windows_pair_the_previous_h_keys_with_the_next():
    w = dataset.windows([[1, 2, 3, 4, 5], [9, 9], [7, 8, 9]], 2)
    assert w.x.tolist() == [[1, 2], [2, 3], [3, 4], [7, 8]]
    assert w.y.tolist() == [3, 4, 5, 9]


def test_hdfs_session_files_map_event_ids_through_the_template_file(tmp_path, datasets):
    templates = ["t1", "t2", "t3"]
    path = tmp_path / "s"
    path.write_text("blk_1,1 2 3\n3 3 1\n")
    seqs = dataset.read_hdfs_sessions(path, templates, vocab.build(templates))
    assert seqs["session"].tolist() == ["blk_1", "s:2"]
    assert seqs["keys"].tolist() == [[0, 1, 2], [2, 2, 0]]
    path.write_text("blk_1,1 2 4\n")
    with pytest.raises(AlogError, match="line 1: event id 4 is not in the templates file"):
        dataset.read_hdfs_sessions(path, templates, vocab.build(templates))


def test_build_from_hdfs_train_keeps_every_session(tmp_path, datasets):
    res = dataset.build_deeplog_inputs(tmp_path, sessions_file=datasets / "hdfs-sessions/hdfs_train",
                                       templates_file=datasets / "hdfs-sessions/HDFS_templates.csv")
    assert res.sessions == 5583 and res.vocab_size == 33
    seqs = dataset.read_sequences(tmp_path / "sequences.parquet")
    first = [int(x) - 1 for x in "5 5 5 22 11 9 11 9 11 9 26 26 26".split()]
    assert list(seqs["keys"][0])[:13] == first
    assert np.max([max(k) for k in seqs["keys"]]) < 33
