import json

import numpy as np
import pytest
import torch

from alog_edge.formats import checkpoint, logformat, vocab
from alog_edge.data import dataset, parse
from alog_edge.models import deeplog_keysets, deeplog_rule
from alog_edge.evaluation import evaluate
from alog_edge.evaluation import metrics
from alog_edge.training import train
from alog_edge.errors import AlogError
from alog_edge.models.deeplog import DeepLog, DeepLogConfig


def test_training_on_hdfs_learns_the_normal_flow(hdfs_deeplog):
    _, _, res = hdfs_deeplog
    assert res.train_windows > 40000 and res.val_windows > 4000
    assert res.val_top_k_accuracy > 0.99
    assert res.parameters == sum(p.numel() for p in DeepLog(DeepLogConfig(36)).parameters())  # + start, end keys
    assert 0 < res.probability_threshold < 0.01 and res.calibration_sessions > 800
    assert res.calibration_fpr <= 0.005  # the default target: at most 0.5% of held-out normal sessions flagged


def test_the_checkpoint_rebuilds_the_model_from_the_file_alone(hdfs_deeplog):
    ws, voc, _ = hdfs_deeplog
    payload = torch.load(ws / "deeplog.pth", weights_only=True)
    for key in ("model_args", "state_dict", "train_config", "vocab_sha256", "top_k", "seen_keys", "versions",
                "unk_index", "history"):
        assert key in payload, key
    assert payload["model_args"] == {"num_classes": 36, "window": 10, "top_k": 9, "embedding_dim": 32,
                                     "hidden_size": 64, "num_layers": 2, "start_key": 34, "end_key": 35}
    assert payload["rule"] == "probability" and payload["start_key"] == 34 and payload["end_key"] == 35
    assert payload["probability_threshold"] == payload["calibration"]["threshold"] > 0
    assert payload["vocab_sha256"] == voc.sha256 and payload["unk_index"] == 33
    model = DeepLog(DeepLogConfig(**payload["model_args"]))
    model.load_state_dict(payload["state_dict"])
    loaded, _ = checkpoint.load_deeplog(ws / "deeplog.pth", voc)
    x = torch.randint(0, 36, (3, 10))
    assert torch.equal(model.eval()(x), loaded(x))


def test_a_checkpoint_with_another_vocab_is_refused(hdfs_deeplog, tmp_path):
    ws, _, _ = hdfs_deeplog
    other = tmp_path / "vocab.json"
    other.write_text(json.dumps({"x": 0}))
    with pytest.raises(AlogError, match="different vocab"):
        checkpoint.load_deeplog(ws / "deeplog.pth", vocab.load(other))


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    bad = tmp_path / "deeplog.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(AlogError, match="not a readable checkpoint"):
        checkpoint.load(bad, "deeplog")


def test_verdicts_follow_deeplogs_rule(hdfs_deeplog):
    ws, voc, _ = hdfs_deeplog
    model, payload = checkpoint.load_deeplog(ws / "deeplog.pth", voc)
    seqs = dataset.read_sequences(ws / "sequences.parquet")
    normal = [int(k) for k in seqs["keys"][0]]
    with torch.no_grad():
        logits = model(torch.tensor([normal[2:12]]))[0]
    seen = sorted(payload["seen_keys"])
    unlikely = min(seen, key=lambda k: logits[k].item())  # a seen key the model least expects here
    swapped = normal[:12] + [unlikely] + normal[12:]
    unseen_early = [voc.unk_index] + normal[1:]
    truncated = normal[:3]
    # the model's rules alone (the key-set check has its own test), a threshold between the swapped key's
    # probability and the normal session's lowest
    calibrated = deeplog_rule.from_payload(payload).overridden(key_sets=False)
    plain, odd = evaluate.deeplog_verdicts(model, [normal, swapped], calibrated)
    assert odd.probability[12] < plain.min_probability
    calibrated = calibrated.overridden(threshold=float(np.sqrt(odd.probability[12] * plain.min_probability)))
    paper = deeplog_rule.DeepLogRule(10, frozenset(seen), voc.unk_index, 9)  # no session keys, top-g
    for rule in (calibrated, calibrated.overridden(kind="top_k"), paper):
        v = evaluate.deeplog_verdicts(model, [normal, swapped, unseen_early, truncated], rule)
        assert not v[0].session_anomalous, rule
        assert v[1].anomalous[12] and v[1].reason[12] == rule.kind
        assert v[2].anomalous[0] and v[2].reason[0] == "unseen"
        if rule.start_key is None:
            assert (v[3].rank == -1).all() and not v[3].session_anomalous, "the first h keys: unseen check only"
            assert np.isnan(v[0].probability[:10]).all() and (v[0].probability[10:] > 0).all()
        else:
            assert (v[0].probability > 0).all() and v[0].end_probability > 0.5, "every key and the end predicted"
    whole, v = evaluate.deeplog_verdicts(model, [normal, truncated], calibrated.overridden(threshold=0.05))
    assert v.end_probability < 0.05 < whole.end_probability
    assert v.end_anomalous and v.session_anomalous and not v.anomalous.any(), "a session that stops early"


def test_the_key_set_check_flags_a_new_combination_at_its_key_and_an_incomplete_session_at_its_end(hdfs_deeplog):
    ws, voc, _ = hdfs_deeplog
    model, payload = checkpoint.load_deeplog(ws / "deeplog.pth", voc)
    rule = deeplog_rule.from_payload(payload)
    assert rule.key_sets is not None and payload["key_sets"] == [sorted(s) for s in rule.key_sets.sets]
    keys = [list(map(int, k)) for k in dataset.read_sequences(ws / "sequences.parquet")["keys"]]
    assert {frozenset(k) for k in keys} == set(rule.key_sets.sets), "every training session's set, nothing else"
    normal = max(keys, key=lambda k: len(set(k)))
    rare = next(k for k in sorted(rule.seen_keys) if not any(k in s and set(normal) <= s for s in rule.key_sets.sets))
    added = normal + [rare]                                  # a seen key, but no session had it with these
    short = next(normal[:n] for n in range(1, len(normal))  # stops where no training session stopped
                 if frozenset(normal[:n]) not in rule.key_sets.sets)
    strict = rule.overridden(threshold=1e-30)                # the model's rule flags nothing: key sets alone
    v = evaluate.deeplog_verdicts(model, [normal, added, short], strict)
    assert not v[0].session_anomalous
    assert v[1].reason[-1] == "key_set" and v[1].anomalous.sum() == 1 and not v[1].end_anomalous
    assert not v[2].anomalous.any() and v[2].end_anomalous and v[2].end_reason == "key_set"
    off = evaluate.deeplog_verdicts(model, [added, short], strict.overridden(key_sets=False))
    assert not any(x.session_anomalous for x in off)
    sets = deeplog_keysets.mine([[1, 2], [2, 1, 1], [3], [4, 9]], min_support=2, ignore={9})
    assert sets.sets == (frozenset({1, 2}),)
    flags, end = sets.judge([2, 3, 3, 1])
    assert flags.tolist() == [False, True, False, False] and not end
    flags, end = sets.judge([2, 2])
    assert not flags.any() and end


def test_the_threshold_is_calibrated_to_the_target_share_of_normal_sessions():
    scores = np.linspace(0.001, 0.1, 1000).astype(np.float32)
    for target in (0.0, 0.001, 0.01, 0.2):
        threshold = deeplog_rule.calibrate_threshold(scores, target)
        assert (scores < threshold).mean() <= target and (scores <= threshold).mean() > target
    with pytest.raises(AlogError, match="target-fpr"):
        deeplog_rule.calibrate_threshold(scores, 1.5)


def test_a_ratio_projects_the_rates_onto_another_mix():
    m = metrics.Metrics(tp=990, fp=2, fn=10, tn=998)
    r = metrics.at_ratio(m, metrics.parse_ratio("553366:16838"))
    assert r.fp == pytest.approx(0.002 * 553366) and r.tp == pytest.approx(0.99 * 16838)
    assert r.precision == pytest.approx(r.tp / (r.tp + r.fp)) and 0.9 < r.f1 < m.f1
    with pytest.raises(AlogError, match="--ratio"):
        metrics.parse_ratio("553366")


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


def test_hdfs_2k_blocks_are_scored_against_their_labels(hdfs_deeplog, tmp_path, datasets):
    ws, _, _ = hdfs_deeplog
    parse.parse([datasets / "loghub-2k/HDFS/HDFS_2k.log"], logformat.PRESETS["hdfs"], tmp_path,
                template_file=datasets / "hdfs-sessions/HDFS_templates.csv")
    ev = evaluate.evaluate_deeplog(ws, parsed=tmp_path / "parsed.parquet",
                                   label_files=[datasets / "loghub-2k/HDFS/HDFS_2k_block_labels.csv"])
    print(evaluate.report([ev]))
    m = ev.session_metrics
    assert m.tp + m.fp + m.fn + m.tn == 2200 and m.tp + m.fn == 69
    assert ev.lines is not None and len(ev.lines) == 2000


def test_metrics_count_what_they_claim():
    m = metrics.metrics(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 1, 0, 1]))
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 1, 1, 1)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3) and m.f1 == pytest.approx(2 / 3)
