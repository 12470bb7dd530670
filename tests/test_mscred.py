import numpy as np
import pandas as pd
import pytest
import torch

from alog_edge import checkpoint, counts, train, vocab
from alog_edge.errors import AlogError
from alog_edge.models.mscred import MSCRED, MSCREDConfig, signature_matrices

SMALL = dict(scales=(4, 8), steps=3, gap=2, channels=(4, 8, 8, 16))


def test_signature_matrices_equal_the_papers_formula():
    rng = np.random.default_rng(0)
    z = rng.random((2, 40, 5)).astype(np.float32)
    scales, steps, gap = (10, 30), 3, 5
    got = signature_matrices(torch.from_numpy(z), scales, steps, gap).numpy()
    assert got.shape == (2, steps, len(scales), 5, 5)
    for b in range(2):
        for s in range(steps):
            t = 40 - 1 - (steps - 1 - s) * gap  # index of the step's last bucket
            for k, w in enumerate(scales):
                for i in range(5):
                    for j in range(5):
                        direct = sum(z[b, t - d, i] * z[b, t - d, j] for d in range(w)) / w
                        assert got[b, s, k, i, j] == pytest.approx(direct, rel=1e-5, abs=1e-6)


def test_the_model_normalises_with_stored_statistics_not_the_input():
    m = MSCRED(MSCREDConfig(3, **SMALL))
    m.count_min.copy_(torch.tensor([1.0, 0.0, 0.0]))
    m.count_scale.copy_(torch.tensor([2.0, 4.0, 1.0]))
    x = torch.full((1, 1, m.config.window_size, 3), 3.0)
    mats = m.matrices(x)
    assert mats[0, -1, 0, 0, 0].item() == pytest.approx(1.0)       # ((3-1)/2)^2
    assert mats[0, -1, 0, 1, 1].item() == pytest.approx(0.5625)    # (3/4)^2
    assert mats[0, -1, 0, 0, 2].item() == pytest.approx(3.0)       # 1 * 3


def test_every_part_the_paper_learns_is_a_parameter():
    m = MSCRED(MSCREDConfig(30))
    names = {n for n, _ in m.named_parameters()}
    for level in range(1, 5):
        for peep in ("peep_i", "peep_f", "peep_o"):
            assert f"lstm{level}.cell.{peep}" in names
    assert m.lstm1.cell.peep_i.shape == (32, 30, 30) and m.lstm4.cell.peep_o.shape == (256, 4, 4)
    assert m.config.sizes() == (30, 15, 8, 4)  # the paper's sizes for 30 series
    assert m.config.window_size == 100


def test_any_batch_size_and_odd_feature_dims_run():
    for dim in (7, 30, 45):
        m = MSCRED(MSCREDConfig(dim, **SMALL)).eval()
        recon, score = m(torch.rand(5, 1, m.config.window_size, dim))
        assert recon.shape == (5, 2, dim, dim) and score.shape == (5,)


def test_each_step_sees_its_own_frame():
    """Public versions feed the same frame at every step; here the steps differ when the series does."""
    m = MSCRED(MSCREDConfig(2, **SMALL))
    x = torch.arange(m.config.window_size, dtype=torch.float32).repeat(2, 1).T[None, None]
    mats = m.matrices(x)[0]
    assert not torch.allclose(mats[0], mats[1]) and not torch.allclose(mats[1], mats[2])


def _correlated_series(rng, n, decouple_from=None):
    """Template 0 and 1 rise and fall together; template 2 is independent noise."""
    load = rng.poisson(5, n).astype(np.float32)
    c = np.stack([load, load * 2, rng.poisson(3, n).astype(np.float32), np.zeros(n, np.float32)], 1)
    if decouple_from is not None:
        c[decouple_from:, 1] = rng.permutation(c[decouple_from:, 1])  # same rate, correlation broken
    return c


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ws = tmp_path_factory.mktemp("mscred")
    rng = np.random.default_rng(1)
    voc = vocab.build(["a", "b", "c"])
    series = [counts.Series("h1", np.arange(600).astype("datetime64[s]").astype("datetime64[us]"),
                            _correlated_series(rng, 600))]
    spec = counts.CountSpec(bucket_seconds=1.0)
    counts.save(series, spec, voc, ws / "counts.parquet")
    cfg = MSCREDConfig(voc.num_classes, scales=(5, 10, 20), steps=3, gap=5, channels=(8, 16, 16, 32))
    res = train.train_mscred(ws / "counts.parquet", voc, ws / "mscred.pth", cfg,
                             train.TrainConfig(epochs=20, batch_size=16, lr=3e-3, patience=4, seed=5, threads=1), stride=2)
    return ws, voc, res


def test_score_rises_when_two_correlated_templates_decouple(trained):
    ws, voc, _ = trained
    model, payload = train.load_mscred(ws / "mscred.pth", voc)
    rng = np.random.default_rng(9)
    n = model.config.window_size
    normal = np.stack([_correlated_series(rng, n) for _ in range(20)])[:, None]
    broken = np.stack([_correlated_series(rng, n, decouple_from=n - 20) for _ in range(20)])[:, None]
    with torch.no_grad():
        s_normal = model(torch.from_numpy(normal))[1].numpy()
        s_broken = model(torch.from_numpy(broken))[1].numpy()
    print(s_normal.mean(), s_broken.mean(), payload["threshold"])
    assert s_broken.mean() > 4 * s_normal.mean() and s_broken.mean() >= 1
    assert (s_broken > payload["threshold"]).mean() > (s_normal > payload["threshold"]).mean()


def test_the_checkpoint_carries_what_scoring_needs(trained):
    ws, voc, res = trained
    payload = torch.load(ws / "mscred.pth", weights_only=True)
    for key in ("model_args", "state_dict", "normalisation", "broken_cell_level", "threshold", "counts",
                "vocab_sha256", "window_size", "feature_dim", "versions", "history"):
        assert key in payload, key
    assert payload["threshold"] == pytest.approx(1.5 * payload["val_score_max"])
    assert payload["normalisation"]["min"] == [0.0, 0.0, 0.0, 0.0]
    assert payload["normalisation"]["scale"][3] == 1.0  # a template never counted keeps scale 1
    model, _ = train.load_mscred(ws / "mscred.pth", voc)
    assert float(model.broken_cell_level) == pytest.approx(res.broken_cell_level)


def test_a_deeplog_checkpoint_is_not_taken_for_mscred(trained, tmp_path):
    ws, voc, _ = trained
    checkpoint.save({"model_type": "deeplog", "model_args": {}, "state_dict": {}, "vocab_sha256": voc.sha256},
                    tmp_path / "x.pth")
    with pytest.raises(AlogError, match="is a deeplog checkpoint, expected mscred"):
        train.load_mscred(tmp_path / "x.pth", voc)


def test_a_feature_dim_that_disagrees_with_the_vocab_is_refused(trained, tmp_path):
    ws, _, _ = trained
    other = vocab.build(["a", "b"])
    with pytest.raises(AlogError, match="different vocab"):
        train.load_mscred(ws / "mscred.pth", other)
    with pytest.raises(AlogError, match="feature_dim 9 disagrees with the vocab"):
        train.train_mscred(ws / "counts.parquet", vocab.load_c_form if False else vocab.build(["a", "b", "c"]),
                           tmp_path / "m.pth", MSCREDConfig(9), train.TrainConfig())


def test_a_series_shorter_than_the_largest_scale_is_refused(tmp_path):
    voc = vocab.build(["a"])
    series = [counts.Series("h", np.arange(50).astype("datetime64[s]").astype("datetime64[us]"),
                            np.ones((50, 2), np.float32))]
    counts.save(series, counts.CountSpec(1.0), voc, tmp_path / "counts.parquet")
    with pytest.raises(AlogError, match="shorter than the window \\(100 = largest scale 60"):
        train.train_mscred(tmp_path / "counts.parquet", voc, tmp_path / "m.pth", MSCREDConfig(2), train.TrainConfig())
    assert not (tmp_path / "m.pth").exists()


def test_counts_follow_the_vocab_order_per_host_and_bucket():
    voc = vocab.build(["a", "b"])
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(["2026-01-01 00:00:01", "2026-01-01 00:00:02", "2026-01-01 00:00:25",
                                     "2026-01-01 00:00:03"]),
        "host": ["h1", "h1", "h1", "h2"], "template": ["a", "zzz", "b", "b"]})
    series = {s.group: s for s in counts.count_series(frame, voc, counts.CountSpec(10.0))}
    assert series["h1"].counts.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert series["h2"].counts.tolist() == [[0, 1, 0]]
    whole = counts.count_series(frame, voc, counts.CountSpec(None, 2, per_host=False))
    assert whole[0].counts.tolist() == [[1, 0, 1], [0, 2, 0]]
