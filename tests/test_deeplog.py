import json

import numpy as np
import pytest
import torch

from alog_edge import checkpoint, dataset, evaluate, parse, logformat, train, vocab
from alog_edge.errors import AlogError
from alog_edge.models.deeplog import DeepLog, DeepLogConfig


@pytest.fixture(scope="module")
def hdfs_model(tmp_path_factory, datasets):
    """DeepLog trained on the real hdfs_train sessions (a few epochs: the figures come from `invoke`)."""
    ws = tmp_path_factory.mktemp("deeplog")
    sessions = datasets / "hdfs-sessions"
    dataset.build_deeplog_inputs(ws, sessions_file=sessions / "hdfs_train",
                                 templates_file=sessions / "HDFS_templates.csv")
    voc = vocab.load(ws / "vocab.json")
    res = train.train_deeplog(ws / "sequences.parquet", voc, ws / "deeplog.pth", DeepLogConfig(voc.num_classes),
                              train.TrainConfig(epochs=6, seed=3))
    return ws, voc, res


def test_training_on_hdfs_learns_the_normal_flow(hdfs_model):
    _, _, res = hdfs_model
    assert res.train_windows > 40000 and res.val_windows > 4000
    assert res.val_top_k_accuracy > 0.99
    assert res.parameters == sum(p.numel() for p in DeepLog(DeepLogConfig(34)).parameters())


def test_the_checkpoint_rebuilds_the_model_from_the_file_alone(hdfs_model):
    ws, voc, _ = hdfs_model
    payload = torch.load(ws / "deeplog.pth", weights_only=True)
    for key in ("model_args", "state_dict", "train_config", "vocab_sha256", "top_k", "seen_keys", "versions",
                "unk_index", "history"):
        assert key in payload, key
    assert payload["model_args"] == {"num_classes": 34, "window": 10, "top_k": 9, "embedding_dim": 32,
                                     "hidden_size": 64, "num_layers": 2}
    assert payload["vocab_sha256"] == voc.sha256 and payload["unk_index"] == 33
    model = DeepLog(DeepLogConfig(**payload["model_args"]))
    model.load_state_dict(payload["state_dict"])
    loaded, _ = train.load_deeplog(ws / "deeplog.pth", voc)
    x = torch.randint(0, 34, (3, 10))
    assert torch.equal(model.eval()(x), loaded(x))


def test_a_checkpoint_with_another_vocab_is_refused(hdfs_model, tmp_path):
    ws, _, _ = hdfs_model
    other = tmp_path / "vocab.json"
    other.write_text(json.dumps({"x": 0}))
    with pytest.raises(AlogError, match="different vocab"):
        train.load_deeplog(ws / "deeplog.pth", vocab.load(other))


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    bad = tmp_path / "deeplog.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(AlogError, match="not a readable checkpoint"):
        checkpoint.load(bad, "deeplog")


def test_verdicts_follow_deeplogs_rule(hdfs_model):
    ws, voc, _ = hdfs_model
    model, payload = train.load_deeplog(ws / "deeplog.pth", voc)
    seqs = dataset.read_sequences(ws / "sequences.parquet")
    normal = [int(k) for k in seqs["keys"][0]]
    with torch.no_grad():
        logits = model(torch.tensor([normal[2:12]]))[0]
    seen = sorted(payload["seen_keys"])
    unlikely = min(seen, key=lambda k: logits[k].item())  # a seen key the model least expects here
    swapped = normal[:12] + [unlikely] + normal[12:]
    unseen_early = [voc.unk_index] + normal[1:]
    short = normal[:10]
    rule = dict(top_k=9, window=10, seen_keys=set(payload["seen_keys"]), unk_index=voc.unk_index)
    v = evaluate.deeplog_verdicts(model, [normal, swapped, unseen_early, short], **rule)
    assert not v[0].anomalous.any()
    assert v[1].anomalous[12] and v[1].reason[12] == "top_k" and v[1].rank[12] >= 9
    assert v[2].anomalous[0] and v[2].reason[0] == "unseen"
    assert (v[3].rank == -1).all(), "the first h keys are only checked for unseen keys"
    assert np.isnan(v[0].probability[:10]).all() and (v[0].probability[10:] > 0).all()


def test_training_is_reproducible_with_a_seed(tmp_path, datasets):
    sessions = datasets / "hdfs-sessions"
    dataset.build_deeplog_inputs(tmp_path, sessions_file=sessions / "hdfs_train",
                                 templates_file=sessions / "HDFS_templates.csv")
    seqs = dataset.read_sequences(tmp_path / "sequences.parquet").head(300)
    seqs.to_parquet(tmp_path / "small.parquet")
    voc = vocab.load(tmp_path / "vocab.json")
    cfg = train.TrainConfig(epochs=2, seed=11)
    for name in ("a.pth", "b.pth"):
        train.train_deeplog(tmp_path / "small.parquet", voc, tmp_path / name, DeepLogConfig(voc.num_classes), cfg)
    a = torch.load(tmp_path / "a.pth", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_hdfs_2k_blocks_are_scored_against_their_labels(hdfs_model, tmp_path, datasets):
    ws, _, _ = hdfs_model
    parse.parse([datasets / "loghub-2k/HDFS/HDFS_2k.log"], logformat.PRESETS["hdfs"], tmp_path,
                template_file=datasets / "hdfs-sessions/HDFS_templates.csv")
    ev = evaluate.evaluate_deeplog(ws, parsed=tmp_path / "parsed.parquet",
                                   label_files=[datasets / "loghub-2k/HDFS/HDFS_2k_block_labels.csv"])
    print(evaluate.report([ev]))
    m = ev.session_metrics
    assert m.tp + m.fp + m.fn + m.tn == 2200 and m.tp + m.fn == 69
    assert ev.lines is not None and len(ev.lines) == 2000


def test_metrics_count_what_they_claim():
    m = evaluate.metrics(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 1, 0, 1]))
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 1, 1, 1)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3) and m.f1 == pytest.approx(2 / 3)
