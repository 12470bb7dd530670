import numpy as np
import pandas as pd
import pytest
import torch

from alog_edge.formats import checkpoint, vocab
from alog_edge.data import counts
from alog_edge.training import train
from conftest import invoke
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


@pytest.mark.parametrize("templates", [30, 40, 50])
def test_the_model_for_30_to_50_templates_stays_small(templates, tmp_path):
    """Parameters and checkpoint bytes: about 0.13-0.17 M and 0.5-0.7 MB with the demo's widths (4, 8, 16, 32),
    0.46-0.54 M and 1.9-2.2 MB with the task's default (8, 16, 32, 64)."""
    for channels, params, size in (((4, 8, 16, 32), 180_000, 800_000), ((8, 16, 32, 64), 560_000, 2_300_000)):
        m = MSCRED(MSCREDConfig(templates + 1, channels=channels))
        torch.save(m.state_dict(), tmp_path / "m.pth")
        assert sum(p.numel() for p in m.parameters()) < params
        assert (tmp_path / "m.pth").stat().st_size < size


def test_any_batch_size_and_odd_feature_dims_run():
    for dim in (7, 30, 45):
        m = MSCRED(MSCREDConfig(dim, **SMALL)).eval()
        recon, score = m(torch.rand(5, 1, m.config.window_size, dim))
        assert recon.shape == (5, 2, dim, dim) and score.shape == (5,)


def test_the_score_counts_broken_cells_of_the_chosen_scales():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 12, 5) * 4
    every = MSCRED(MSCREDConfig(5, **SMALL)).eval()
    short = MSCRED(MSCREDConfig(5, **{**SMALL, "score_scales": (4,)})).eval()
    short.load_state_dict(every.state_dict())
    level = torch.rand(2, 5, 5) * 0.2
    every.broken_cell_level.copy_(level)
    short.broken_cell_level.copy_(level)
    with torch.no_grad():
        mats = every.matrices(x)
        broken = ((mats[:, -1] - every.reconstruct(mats)).abs() > level).sum(dim=(2, 3)).float()  # [B, scales]
        assert torch.equal(every(x)[1], broken.sum(1)) and torch.equal(short(x)[1], broken[:, 0])
    with pytest.raises(ValueError, match="subset of scales"):
        MSCREDConfig(5, **{**SMALL, "score_scales": (30,)})


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
    model, payload = checkpoint.load_mscred(ws / "mscred.pth", voc)
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
    for key in ("model_args", "state_dict", "normalisation", "broken_cell_level", "broken_cell_levels", "threshold",
                "counts", "vocab_sha256", "window_size", "feature_dim", "versions", "history"):
        assert key in payload, key
    # 2 x the 95th percentile of the validation scores; the paper's rule, 1.5 x their max, is a flag away
    assert payload["train_config"]["threshold_factor"] == 2.0 and payload["train_config"]["threshold_quantile"] == 0.95
    assert payload["threshold"] == pytest.approx(2.0 * payload["val_score_quantile"])
    assert payload["val_score_quantile"] <= payload["val_score_max"]
    assert payload["normalisation"]["min"] == [0.0, 0.0, 0.0, 0.0]
    assert payload["normalisation"]["scale"][3] == 1.0  # a template never counted keeps scale 1
    model, _ = checkpoint.load_mscred(ws / "mscred.pth", voc)
    levels = model.broken_cell_level
    assert levels.shape == (3, 4, 4) and res.per_cell and payload["broken_cell_levels"]["per_cell"]
    # one level per cell, none below the floor, and the floor is where the residuals were smallest
    assert float(levels.min()) == pytest.approx(res.broken_cell_level) == payload["broken_cell_level"]
    assert float(levels.max()) > res.broken_cell_level


def test_per_cell_levels_are_the_largest_training_residual_with_a_margin_and_a_floor():
    rng = np.random.default_rng(3)
    residuals = torch.from_numpy(rng.uniform(0, 0.01, (50, 2, 3, 3)).astype(np.float32))
    residuals[:, 0, 0, 0] = torch.linspace(0, 1, 50)   # a busy cell: its own level
    residuals[:, 1, 2, 1] = 0.0                         # a quiet cell: the floor
    levels, floor = train.cell_levels(residuals, margin=1.5, floor_quantile=0.9)
    assert floor == pytest.approx(float(np.quantile(residuals.numpy(), 0.9)))
    assert 0.005 < floor < 0.01 and levels.shape == (2, 3, 3)
    assert levels[0, 0, 0] == pytest.approx(1.5) and levels[1, 2, 1] == pytest.approx(floor)
    expected = np.maximum(1.5 * residuals.numpy().max(0), floor)
    assert np.allclose(levels.numpy(), expected) and float(levels.min()) == pytest.approx(floor)


def test_one_level_and_the_threshold_can_be_set_instead(trained, tmp_path):
    ws, voc, _ = trained
    cfg = MSCREDConfig(voc.num_classes, scales=(5, 10, 20), steps=3, gap=5, channels=(4, 4, 4, 4))
    res = train.train_mscred(ws / "counts.parquet", voc, tmp_path / "m.pth", cfg,
                             train.TrainConfig(epochs=1, batch_size=16, seed=5, threads=1),
                             broken_cell_level=0.25, threshold=7.5)
    model, payload = checkpoint.load_mscred(tmp_path / "m.pth", voc)
    assert not res.per_cell and res.threshold == payload["threshold"] == 7.5
    assert torch.all(model.broken_cell_level == 0.25) and payload["broken_cell_level"] == 0.25


def test_a_checkpoint_with_one_scalar_level_still_loads(trained, tmp_path):
    """Checkpoints written before per-cell levels held one level for all cells."""
    ws, voc, _ = trained
    payload = torch.load(ws / "mscred.pth", weights_only=True)
    payload["state_dict"]["broken_cell_level"] = torch.tensor(0.3)
    checkpoint.save({k: v for k, v in payload.items() if k not in ("format_version", "versions")}, tmp_path / "old.pth")
    model, _ = checkpoint.load_mscred(tmp_path / "old.pth", voc)
    assert model.broken_cell_level.shape == (3, 4, 4) and torch.all(model.broken_cell_level == 0.3)


def test_a_deeplog_checkpoint_is_not_taken_for_mscred(trained, tmp_path):
    ws, voc, _ = trained
    checkpoint.save({"model_type": "deeplog", "model_args": {}, "state_dict": {}, "vocab_sha256": voc.sha256},
                    tmp_path / "x.pth")
    with pytest.raises(AlogError, match="is a deeplog checkpoint, expected mscred"):
        checkpoint.load_mscred(tmp_path / "x.pth", voc)


def test_a_feature_dim_that_disagrees_with_the_vocab_is_refused(trained, tmp_path):
    ws, _, _ = trained
    other = vocab.build(["a", "b"])
    with pytest.raises(AlogError, match="different vocab"):
        checkpoint.load_mscred(ws / "mscred.pth", other)
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


# --- bad input through the tasks: one line `error: <file>: <problem>`, exit status 1 ----------------------

def _one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def task_ws(trained, tmp_path_factory):
    """The trained workspace plus what the tasks read: vocab.json and a held-out parsed.parquet."""
    ws, voc, _ = trained
    vocab.save(voc, ws / "vocab.json")
    rng = np.random.default_rng(4)
    n = 300
    frame = pd.DataFrame({"line_no": np.arange(1, n + 1, dtype=np.int64),
                          "timestamp": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), "s"),
                          "session": None, "host": "h1", "template": rng.choice(["a", "b", "c"], n)})
    frame.to_parquet(ws / "held_out.parquet")
    return ws, voc


def test_a_deeplog_checkpoint_given_as_mscred_is_one_error_line(task_ws, tmp_path):
    ws, voc = task_ws
    checkpoint.save({"model_type": "deeplog", "model_args": {}, "state_dict": {}, "vocab_sha256": voc.sha256},
                    tmp_path / "deeplog.pth")
    proc = invoke("evaluate", "-w", str(ws), "--parsed", str(ws / "held_out.parquet"),
                  "--mscred-model", str(tmp_path / "deeplog.pth"))
    assert _one_error_line(proc) == f"error: {tmp_path / 'deeplog.pth'}: is a deeplog checkpoint, expected mscred"


def test_a_vocab_that_does_not_fit_the_model_is_one_error_line(task_ws, tmp_path):
    ws, _ = task_ws
    other = vocab.build(["a", "b", "c", "d", "e"])
    vocab.save(other, tmp_path / "vocab.json")
    proc = invoke("evaluate", "-w", str(ws), "--parsed", str(ws / "held_out.parquet"), "--vocab",
                  str(tmp_path / "vocab.json"), "--mscred-model", str(ws / "mscred.pth"))
    assert "was trained with a different vocab" in _one_error_line(proc)
    # counts made with one vocab, a model for another: feature_dim 4 against the vocab's 6
    proc = invoke("train-mscred", "-w", str(ws), "--vocab", str(tmp_path / "vocab.json"), "--out",
                  str(tmp_path / "m.pth"), "--epochs", "1")
    line = _one_error_line(proc)
    assert line.startswith(f"error: {ws / 'counts.parquet'}: was counted with another vocab (feature_dim 4, "
                           "vocab gives 6)") and "invoke build-mscred" in line
    assert not (tmp_path / "m.pth").exists()


def test_counts_shorter_than_the_window_are_one_error_line(task_ws, tmp_path):
    ws, voc = task_ws
    series = [counts.Series("h", np.arange(50).astype("datetime64[s]").astype("datetime64[us]"),
                            np.ones((50, voc.num_classes), np.float32))]
    counts.save(series, counts.CountSpec(1.0), voc, tmp_path / "counts.parquet")
    proc = invoke("train-mscred", "-w", str(ws), "--counts", str(tmp_path / "counts.parquet"), "--out",
                  str(tmp_path / "m.pth"))
    assert _one_error_line(proc) == (
        f"error: {tmp_path / 'counts.parquet'}: the longest count series has 50 buckets, shorter than the window "
        "(100 = largest scale 60 + 4 steps x gap 10); use smaller buckets or scales")
    assert not (tmp_path / "m.pth").exists()
    # held-out data shorter than the trained model's window (the fixture's model: 30 one-second buckets)
    short = pd.read_parquet(ws / "held_out.parquet").head(20)
    short.to_parquet(tmp_path / "short.parquet")
    proc = invoke("evaluate", "-w", str(ws), "--parsed", str(tmp_path / "short.parquet"))
    assert "no count series reaches the window of 30 buckets" in _one_error_line(proc)


def test_evaluate_overrides_the_threshold_and_the_broken_cell_level(task_ws, tmp_path):
    """Scores with every cell's level at 0 count each cell with any residual; a huge level counts none."""
    ws, voc = task_ws
    model, payload = checkpoint.load_mscred(ws / "mscred.pth", voc)
    cells = len(model.config.score_index) * voc.num_classes ** 2
    runs = {}
    for name, flags in (("stored", []), ("zero", ["--broken-cell-level", "0", "--threshold", "10"]),
                        ("huge", ["--broken-cell-level", "1e9"])):
        out = tmp_path / f"{name}.parquet"
        proc = invoke("evaluate", "-w", str(ws), "--parsed", str(ws / "held_out.parquet"), "--scores", str(out),
                      *flags)
        assert proc.returncode == 0, proc.stderr
        runs[name] = pd.read_parquet(out)
        alarms = int(runs[name]["verdict"].sum())
        assert f"MSCRED: {alarms} of {len(runs[name])} windows alarm (no events file" in proc.stdout
    assert (runs["zero"]["score"] >= runs["stored"]["score"]).all()
    assert (runs["zero"]["score"] > cells * 0.9).all() and (runs["zero"]["verdict"] == 1).all()
    assert (runs["huge"]["score"] == 0).all() and (runs["huge"]["verdict"] == 0).all()
    assert ((runs["stored"]["score"] > payload["threshold"]) == (runs["stored"]["verdict"] == 1)).all()


@pytest.mark.parametrize("task,flag", [("evaluate", "--threshold"), ("train-mscred", "--lr"),
                                       ("demo-data", "--seed"), ("train-mscred", "--scales")])
def test_a_flag_that_is_not_a_number_is_one_error_line(task_ws, task, flag):
    ws, _ = task_ws
    proc = invoke(task, "-w", str(ws), flag, "1,x" if flag == "--scales" else "ten")
    line = _one_error_line(proc)
    assert line.startswith(f"error: {flag}: must be ") and "(got '" in line
