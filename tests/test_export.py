"""convert: real checkpoints exported to ONNX and run by onnxruntime (no mocks)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from alog_edge.formats import checkpoint, vocab
from alog_edge.data import dataset
from alog_edge.models import deeplog_rule
from alog_edge.export import convert as export
from alog_edge.export import inputs
from alog_edge import fileio
from alog_edge.export import jobs
from alog_edge.formats import modeldir
from alog_edge.export import onnx_export
from alog_edge.training import train
from alog_edge.errors import AlogError

from conftest import REPO, copy_workspace


@pytest.fixture(scope="module")
def trained(tmp_path_factory, hdfs_deeplog):
    """A DeepLog checkpoint trained on the real HDFS sessions and the HDFS parser.json (a copy of conftest's
    session workspace: some tests add to it)."""
    ws, voc, _ = hdfs_deeplog
    return copy_workspace(ws, tmp_path_factory.mktemp("convert") / "ws"), voc


def request(ws: Path, out: Path, **kw) -> export.ConvertRequest:
    base = dict(vocab=ws / "vocab.json", parser=ws / "parser.json", output_dir=out,
                deeplog_model=ws / "deeplog.pth", sequences=ws / "sequences.parquet")
    return export.ConvertRequest(**{**base, **kw})


@pytest.fixture(scope="module")
def converted(trained, tmp_path_factory):
    ws, _ = trained
    out = tmp_path_factory.mktemp("models") / "onnx"
    started = time.perf_counter()
    result = export.convert(request(ws, out, validate=True))
    print(f"\nDeepLog convert --validate: {time.perf_counter() - started:.2f}s\n{export.format_summary(result)}")
    return out, result


def torch_model(ws: Path, voc) -> nn.Module:
    model, _ = checkpoint.load_deeplog(ws / "deeplog.pth", voc)
    return model


def dims(path: Path) -> list[list[str | int]]:
    model = onnx.load(str(path))
    return [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(model.graph.input) + list(model.graph.output)]


def ort_vs_torch(path: Path, model: nn.Module, x: np.ndarray) -> float:
    got = modeldir.OnnxModel(path).run(x)["predictions"]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape
    return float(np.abs(got - want).max())


# --- the DeepLog model directory -------------------------------------------------------------

def test_the_model_directory_holds_what_the_device_needs(converted, trained):
    out, result = converted
    ws, voc = trained
    names = sorted(p.name for p in out.iterdir())
    optimised = [n for n in names if n.startswith("deeplog.opt-") and n.endswith(".onnx")]
    assert len(optimised) == 1  # the graph as onnxruntime optimised it, named after the model's hash
    assert [n for n in names if n not in optimised] == ["convert.log", "deeplog.onnx", "deeplog.onnx.meta.json",
                                                        "golden.json", "parser.json", "vocab.json"]
    assert json.loads((out / "vocab.json").read_text()) == voc.c_form()
    assert (out / "parser.json").read_bytes() == (ws / "parser.json").read_bytes()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "staging left behind"
    assert [f.name for f in result.files] == names
    assert result.models[0].validation.max_abs_diff <= 1e-5 and len(result.models[0].validation.cases) >= 10


@pytest.mark.parametrize("opset", [11, 17])
def test_deeplog_runs_any_batch_size_and_sequence_length(trained, tmp_path, opset):
    ws, voc = trained
    out = tmp_path / "onnx"
    started = time.perf_counter()
    result = export.convert(request(ws, out, opset=opset))
    print(f"DeepLog convert at opset {opset}: {time.perf_counter() - started:.2f}s "
          f"(export {result.models[0].export_seconds:.2f}s), {result.models[0].nodes_plain} nodes")
    model_file = out / "deeplog.onnx"
    loaded = onnx.load(str(model_file))
    assert [o.version for o in loaded.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    assert dims(model_file) == [["batch_size", "sequence_length"], ["batch_size", voc.num_classes + 2]]
    model = torch_model(ws, voc)
    rng = np.random.default_rng(opset)
    for batch, length in [(1, 1), (1, 10), (2, 10), (5, 3), (64, 10), (7, 37), (200, 20)]:
        x = rng.integers(0, voc.num_classes, (batch, length), dtype=np.int64)
        assert ort_vs_torch(model_file, model, x) <= 1e-5, (batch, length)


def test_portable_keeps_outputs_and_dynamic_axes(trained, converted, tmp_path):
    ws, voc = trained
    plain_dir, plain = converted
    out = tmp_path / "onnx"
    result = export.convert(request(ws, out, portable=True))
    report = result.models[0]
    print(f"DeepLog nodes: plain {report.nodes_plain}, portable {report.nodes_portable} ({report.simplifier})")
    assert report.simplifier and report.nodes_portable < report.nodes_plain == plain.models[0].nodes_plain
    assert dims(out / "deeplog.onnx") == dims(plain_dir / "deeplog.onnx")
    meta = json.loads((out / "deeplog.onnx.meta.json").read_text())
    assert meta["portable"] is True and meta["nodes"] == {"plain": report.nodes_plain,
                                                          "portable": report.nodes_portable}
    assert len(onnx.load(str(out / "deeplog.onnx")).graph.node) == report.nodes_portable
    portable_model, plain_model = modeldir.OnnxModel(out / "deeplog.onnx"), modeldir.OnnxModel(plain_dir / "deeplog.onnx")
    rng = np.random.default_rng(4)
    for batch, length in [(1, 1), (3, 10), (64, 20)]:
        x = rng.integers(0, voc.num_classes, (batch, length), dtype=np.int64)
        diff = np.abs(portable_model.run(x)["predictions"] - plain_model.run(x)["predictions"]).max()
        assert diff <= 1e-6, (batch, length, diff)


def test_validate_catches_a_model_that_no_longer_matches_the_onnx_file(trained, converted):
    ws, voc = trained
    out, _ = converted
    model = torch_model(ws, voc)
    seqs = inputs.real_deeplog_windows(ws / "sequences.parquet", 10, voc)
    cases = inputs.deeplog_validation_cases(voc.num_classes, 10, seqs, full=True)
    assert onnx_export.validate_onnx(out / "deeplog.onnx", model, modeldir.DEEPLOG, cases).max_abs_diff <= 1e-5
    with torch.no_grad():
        model.head.bias[3] += 1e-3  # a divergence far too small to see by eye
    with pytest.raises(AlogError, match="differs from torch by .* in predictions"):
        onnx_export.validate_onnx(out / "deeplog.onnx", model, modeldir.DEEPLOG, cases)


class FrozenBranch(nn.Module):
    """A module whose Python branch on the sequence length the tracer freezes: ONNX silently diverges."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_classes, 8)
        self.head = nn.Linear(8, num_classes)

    def forward(self, input_sequence: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.embedding(input_sequence).mean(dim=1))
        if int(input_sequence.shape[1]) < 5:
            logits = logits * 2
        return logits


def test_validate_catches_a_trace_that_froze_a_shape(trained, tmp_path):
    ws, voc = trained
    model = FrozenBranch(voc.num_classes).eval()
    payload = {"model_args": {"num_classes": voc.num_classes, "window": 10}, "top_k": 9, "seen_keys": [1, 2],
               "unk_index": voc.unk_index}
    quick = jobs.deeplog_job(model, payload, ws / "deeplog.pth", voc, None, None, full=False)
    onnx_export.export_model(quick, tmp_path, 11, portable=False)  # one batch at seq_len cannot see it
    full = jobs.deeplog_job(model, payload, ws / "deeplog.pth", voc, None, None, full=True)
    (tmp_path / "full").mkdir()
    with pytest.raises(AlogError, match=r"differs from torch .* on random b1 l1 \[1, 1\]"):
        onnx_export.export_model(full, tmp_path / "full", 11, portable=False)


def test_a_checkpoint_that_gives_nan_fails_and_leaves_the_old_directory(trained, tmp_path):
    ws, voc = trained
    payload = torch.load(ws / "deeplog.pth", weights_only=True)
    payload["state_dict"]["head.bias"][0] = float("nan")
    checkpoint.save({k: v for k, v in payload.items() if k not in ("format_version", "versions")},
                    tmp_path / "nan.pth")
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "keep.txt").write_text("previous conversion")
    with pytest.raises(AlogError, match="non-finite predictions"):
        export.convert(request(ws, out, deeplog_model=tmp_path / "nan.pth"))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.pth", "onnx"]


def test_golden_outputs_reproduce_with_onnxruntime(converted, trained):
    out, _ = converted
    _, voc = trained
    results = modeldir.check_golden(out)
    golden = json.loads((out / "golden.json").read_text())
    assert golden["tolerance"] == 1e-5 and len(results) == len(golden["cases"]) >= 4
    inputs = [np.asarray(c["inputs"]["input_sequence"]["data"]).reshape(c["inputs"]["input_sequence"]["shape"])
              for c in golden["cases"]]
    assert inputs[0].shape == (4, 10), "real windows from the sequences"
    assert any(x.shape == (1, 1) for x in inputs), "a length-1 sequence"
    assert any((x == voc.unk_index).any() for x in inputs), "the unknown key"
    start = voc.num_classes  # the start key: a session's first key is predicted from start keys alone
    assert any((x == start).all(axis=1).any() for x in inputs) and any((x[:, :-1] == start).all() for x in inputs)
    assert all(c["outputs"]["predictions"]["shape"][1] == voc.num_classes + 2 for c in golden["cases"]), \
        "the end key's logit is checked too"
    # a device that computes something else must fail the same check
    original = (out / "golden.json").read_bytes()
    golden["cases"][0]["outputs"]["predictions"]["data"][5] += 1e-3
    (out / "golden.json").write_text(json.dumps(golden))
    try:
        with pytest.raises(AlogError, match="real windows: predictions differs"):
            modeldir.check_golden(out)
    finally:
        (out / "golden.json").write_bytes(original)


def test_meta_json_tells_the_runtime_everything(converted, trained):
    out, _ = converted
    ws, voc = trained
    meta = json.loads((out / "deeplog.onnx.meta.json").read_text())
    payload = torch.load(ws / "deeplog.pth", weights_only=True)
    assert meta["model_type"] == "deeplog" and meta["vocab_size"] == voc.num_classes == 34
    assert meta["seq_len"] == meta["window"] == 10 and meta["top_k"] == 9 and meta["unk_index"] == 33
    assert meta["seen_keys"] == payload["seen_keys"] and meta["threshold"] is None
    assert meta["num_classes"] == 36 and meta["start_key"] == 34 and meta["end_key"] == 35
    assert meta["rule"] == "probability" and meta["probability_threshold"] == payload["probability_threshold"] > 0
    assert meta["closing_keys"] == [] and meta["session_idle_seconds"] is None
    assert meta["dynamic_axes"] == {"input_sequence": {"0": "batch_size", "1": "sequence_length"},
                                    "predictions": {"0": "batch_size"}}
    assert meta["input_names"] == ["input_sequence"] and meta["output_names"] == ["predictions"]
    assert meta["opset_version"] == 11 and meta["portable"] is False and meta["notes"]
    assert meta["sha256"] == fileio.sha256_file(out / "deeplog.onnx")
    assert meta["vocab_sha256"] == voc.sha256 == payload["vocab_sha256"]
    assert meta["exporter"] == f"torch.onnx.export(dynamo=False) torch {torch.__version__}"
    assert meta["inputs"][0]["type"] == "tensor(int64)" and meta["outputs"][0]["type"] == "tensor(float)"


def test_the_python_runners_score_like_torch(converted, trained):
    from alog_edge.evaluation import evaluate

    out, _ = converted
    ws, voc = trained
    seqs = [list(map(int, k)) for k in dataset.read_sequences(ws / "sequences.parquet")["keys"][:50]]
    payload = torch.load(ws / "deeplog.pth", weights_only=True)
    rule = deeplog_rule.from_payload(payload)
    via_onnx = evaluate.deeplog_verdicts(modeldir.OnnxDeepLog(out), seqs, rule)
    via_torch = evaluate.deeplog_verdicts(torch_model(ws, voc), seqs, rule)
    assert all((a.anomalous == b.anomalous).all() and (a.rank == b.rank).all() and a.end_rank == b.end_rank
               for a, b in zip(via_onnx, via_torch))
    logits = modeldir.run_onnx(out, "deeplog", np.array([[1, 2, 3]]))["predictions"]
    assert logits.shape == (1, voc.num_classes + 2)
    loaded = modeldir.load_model_dir(out)
    assert loaded.vocab.index == voc.index and loaded.meta["deeplog"]["top_k"] == 9
    with pytest.raises(AlogError, match="no mscred model"):
        modeldir.run_onnx(out, "mscred", np.zeros((1, 1, 100, 34)))


def test_a_damaged_onnx_file_is_named(tmp_path):
    (tmp_path / "deeplog.onnx").write_bytes(b"not a model")
    with pytest.raises(AlogError, match="onnxruntime cannot load it: Protobuf parsing failed"):
        modeldir.open_model(tmp_path, "deeplog")


def test_neither_model_writes_only_the_vocab_and_the_parser(trained, tmp_path):
    ws, voc = trained
    result = export.convert(request(ws, tmp_path / "onnx", deeplog_model=None))
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == ["parser.json", "vocab.json"]
    assert "no model given" in export.format_summary(result)
    assert json.loads(json.dumps(export.summary(result)))["files"][0]["name"] == "parser.json"


def test_conversion_is_reproducible(trained, converted, tmp_path):
    ws, _ = trained
    out, _ = converted
    export.convert(request(ws, tmp_path / "again"))
    for name in ("deeplog.onnx", "golden.json", "vocab.json"):
        assert fileio.sha256_file(tmp_path / "again" / name) == fileio.sha256_file(out / name), name


def test_exporter_warnings_go_to_convert_log_not_to_stderr(trained, tmp_path):
    ws, _ = trained
    out = tmp_path / "onnx"
    script = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
              "from alog_edge.export import convert as e; w = Path(sys.argv[2]); "
              "r = e.convert(e.ConvertRequest(vocab=w / 'vocab.json', parser=w / 'parser.json', "
              "output_dir=Path(sys.argv[3]), deeplog_model=w / 'deeplog.pth', portable=True)); "
              "print(e.format_summary(r))")
    proc = subprocess.run([sys.executable, "-c", script, str(REPO / "py"), str(ws), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "deeplog.onnx" in proc.stdout
    for noise in ("Warning", "TorchScript", "Traceback"):
        assert noise not in proc.stderr + proc.stdout, proc.stderr
    logged = (out / "convert.log").read_text()
    assert "DeprecationWarning" in logged and "TorchScript" in logged and "TracerWarning" in logged


# --- checks before export: one AlogError naming the file, nothing written ---------------

def _save_without(ws: Path, dest: Path, *drop: str) -> Path:
    payload = torch.load(ws / "deeplog.pth", weights_only=True)
    checkpoint.save({k: v for k, v in payload.items() if k not in (*drop, "format_version", "versions")}, dest)
    return dest


def _case_template_id_vocab(ws, voc, tmp):
    bad = tmp / "ids.json"
    bad.write_text(json.dumps({str(i + 1): i for i in range(voc.size)}))
    return dict(vocab=bad), bad, "invoke fix-vocab"


def _case_smaller_vocab(ws, voc, tmp):
    small = tmp / "small.json"
    small.write_text(json.dumps({t: i for t, i in voc.index.items() if i < voc.size - 1}))
    return dict(vocab=small), ws / "deeplog.pth", "has 36 classes but"


def _case_other_vocab_same_size(ws, voc, tmp):
    other = tmp / "other.json"
    other.write_text(json.dumps({f"x{t}": i for t, i in voc.index.items()}))
    return dict(vocab=other), ws / "deeplog.pth", "different vocab"


def _case_wrong_model_type(ws, voc, tmp):
    return dict(deeplog_model=None, mscred_model=ws / "deeplog.pth"), ws / "deeplog.pth", "expected mscred"


def _case_missing_fields(ws, voc, tmp):
    path = _save_without(ws, tmp / "old.pth", "seen_keys", "top_k")
    return dict(deeplog_model=path), path, "lacks top_k, seen_keys"


def _case_feature_dim(ws, voc, tmp):
    return dict(feature_dim=voc.num_classes - 1), ws / "vocab.json", "--feature-dim 33 disagrees"


def _case_unwritable_dir(ws, voc, tmp):
    blocker = tmp / "a-file"
    blocker.write_text("not a directory")
    return dict(output_dir=blocker / "onnx"), blocker, "is not a directory"


def _case_output_is_a_file(ws, voc, tmp):
    target = tmp / "onnx-file"
    target.write_text("x")
    return dict(output_dir=target), target, "not a directory"


def _case_bad_parser(ws, voc, tmp):
    bad = tmp / "parser.json"
    bad.write_text("{}")
    return dict(parser=bad), bad, "not a parser.json"


@pytest.mark.parametrize("make", [_case_template_id_vocab, _case_smaller_vocab, _case_other_vocab_same_size,
                                  _case_wrong_model_type, _case_missing_fields, _case_feature_dim,
                                  _case_unwritable_dir, _case_output_is_a_file, _case_bad_parser],
                         ids=lambda f: f.__name__.removeprefix("_case_"))
def test_bad_inputs_are_refused_before_export(trained, tmp_path, make):
    ws, voc = trained
    overrides, named, fragment = make(ws, voc, tmp_path)
    out = overrides.get("output_dir", tmp_path / "onnx")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(AlogError) as info:
        export.convert(request(ws, tmp_path / "onnx", **overrides))
    assert info.value.path == str(named) and fragment in info.value.message, str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "something was written"
    assert not out.is_dir()


# --- MSCRED, with a stand-in that keeps MSCRED's forward contract ----------------------

class StandInMSCRED(nn.Module):
    """Raw counts [b, 1, w, f] -> (reconstruction, anomaly_score [b]); normalisation and signature
    matrices inside the graph, as the real MSCRED does."""

    def __init__(self, window_size: int, feature_dim: int, scales: tuple[int, ...] = (2, 5, 10),
                 broken_cell_level: float = 0.5) -> None:
        super().__init__()
        self.scales, self.level = scales, broken_cell_level
        self.encoder = nn.Conv2d(len(scales), 4, 3, padding=1)
        self.decoder = nn.ConvTranspose2d(4, len(scales), 3, padding=1)

    def forward(self, input_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.log1p(input_features[:, 0])
        signatures = torch.stack([x[:, -s:].transpose(1, 2) @ x[:, -s:] / s for s in self.scales], dim=1)
        reconstruction = self.decoder(torch.relu(self.encoder(signatures)))
        broken = ((reconstruction - signatures) ** 2 > self.level).float()
        return reconstruction, broken.sum(dim=(1, 2, 3))


@pytest.fixture(scope="module")
def stand_in(trained, tmp_path_factory):
    ws, voc = trained
    torch.manual_seed(0)
    model = StandInMSCRED(10, voc.num_classes).eval()
    payload = {"model_type": "mscred", "model_args": {"window_size": 10, "feature_dim": voc.num_classes,
                                                      "scales": [2, 5, 10]},
               "state_dict": model.state_dict(), "vocab_sha256": voc.sha256, "threshold": 12.0,
               "broken_cell_level": 0.5, "window_size": 10, "feature_dim": voc.num_classes}
    path = tmp_path_factory.mktemp("mscred") / "mscred.pth"
    checkpoint.save(payload, path)
    return model, checkpoint.load(path, "mscred"), path


def test_mscred_export_validates_and_writes_meta_and_golden(trained, stand_in, tmp_path):
    _, voc = trained
    model, payload, path = stand_in
    job = jobs.mscred_job(model, payload, path, voc, None, full=True)
    report = onnx_export.export_model(job, tmp_path, 11, portable=True)
    print(f"MSCRED stand-in: {report.nodes_plain} -> {report.nodes_portable} nodes, "
          f"export {report.export_seconds:.2f}s")
    assert len(report.validation.cases) >= 4 and report.validation.max_abs_diff <= 1e-5
    assert dims(tmp_path / "mscred.onnx") == [["batch_size", 1, 10, 34], ["batch_size", 3, 34, 34],
                                              ["batch_size"]]
    meta = json.loads((tmp_path / "mscred.onnx.meta.json").read_text())
    assert meta["model_type"] == "mscred" and meta["feature_dim"] == 34 and meta["window_size"] == 10
    assert meta["threshold"] == 12.0 and meta["broken_cell_level"] == 0.5 and meta["scales"] == [2, 5, 10]
    assert meta["dynamic_axes"] == {"input_features": {"0": "batch_size"}, "reconstruction": {"0": "batch_size"},
                                    "anomaly_score": {"0": "batch_size"}}
    assert meta["output_names"] == ["reconstruction", "anomaly_score"] and meta["unk_index"] == 33
    modeldir.write_golden(tmp_path, modeldir.golden_entries(tmp_path / "mscred.onnx", modeldir.MSCRED, job.golden))
    assert len(modeldir.check_golden(tmp_path)) == 3
    scores = modeldir.run_onnx(tmp_path, "mscred", np.zeros((5, 1, 10, 34)))["anomaly_score"]
    assert scores.shape == (5,)


def test_mscred_validate_catches_changed_weights(trained, stand_in, tmp_path):
    _, voc = trained
    model, payload, path = stand_in
    job = jobs.mscred_job(model, payload, path, voc, None, full=True)
    onnx_export.export_model(job, tmp_path, 11, portable=False)
    changed = StandInMSCRED(10, voc.num_classes).eval()
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.decoder.bias += 1e-3
    with pytest.raises(AlogError, match="differs from torch .* in reconstruction"):
        onnx_export.validate_onnx(tmp_path / "mscred.onnx", changed, modeldir.MSCRED, job.validation)


@pytest.mark.parametrize("change,named,fragment", [
    ({"feature_dim": 20}, "ckpt", "has feature_dim 20 but"),
    ({"threshold": None}, "ckpt", "lacks threshold"),
])
def test_mscred_checkpoint_checks(trained, stand_in, tmp_path, change, named, fragment):
    ws, voc = trained
    _, payload, _ = stand_in
    bad = {k: v for k, v in payload.items() if k not in ("format_version", "versions")}
    bad.update({k: v for k, v in change.items() if v is not None})
    for k in [k for k, v in change.items() if v is None]:
        del bad[k]
    checkpoint.save(bad, tmp_path / "bad.pth")
    with pytest.raises(AlogError) as info:
        export.convert(request(ws, tmp_path / "onnx", deeplog_model=None, mscred_model=tmp_path / "bad.pth"))
    assert info.value.path == str(tmp_path / "bad.pth") and fragment in info.value.message
    assert not (tmp_path / "onnx").exists()


def test_mscred_window_size_must_match_the_checkpoint(trained, stand_in, tmp_path):
    ws, _ = trained
    _, _, path = stand_in
    with pytest.raises(AlogError, match="trained with window_size 10, not --window-size 20"):
        export.convert(request(ws, tmp_path / "onnx", deeplog_model=None, mscred_model=path, window_size=20))
    assert not (tmp_path / "onnx").exists()


# --- the real MSCRED (models/mscred.py), trained briefly on HDFS_2k's template counts ---------

@pytest.fixture(scope="module")
def real_mscred(trained):
    import pandas as pd

    from alog_edge.data import counts
    from alog_edge.models.mscred import MSCREDConfig

    ws, voc = trained
    spec = counts.CountSpec(bucket_seconds=600.0, per_host=False)  # HDFS_2k spans 1.5 days: ~230 buckets
    counts.save(counts.count_series(pd.read_parquet(ws / "parsed.parquet"), voc, spec), spec, voc,
                ws / "counts.parquet")
    train.train_mscred(ws / "counts.parquet", voc, ws / "mscred.pth", MSCREDConfig(voc.num_classes),
                       train.TrainConfig(epochs=1, seed=2, threads=1), stride=60)
    return ws / "mscred.pth", ws / "counts.parquet"


def test_real_mscred_converts_portable_with_both_models(trained, real_mscred, tmp_path):
    ws, voc = trained
    mscred_path, counts_path = real_mscred
    out = tmp_path / "onnx"
    started = time.perf_counter()
    result = export.convert(request(ws, out, mscred_model=mscred_path, counts=counts_path, portable=True))
    print(f"DeepLog + MSCRED convert --portable: {time.perf_counter() - started:.1f}s\n"
          f"{export.format_summary(result)}")
    report = {m.kind: m for m in result.models}["mscred"]
    assert report.nodes_portable < report.nodes_plain and report.validation.max_abs_diff <= 1e-5
    assert {f.name for f in result.files} >= {"deeplog.onnx", "mscred.onnx", "mscred.onnx.meta.json", "golden.json"}
    assert dims(out / "mscred.onnx") == [["batch_size", 1, 100, voc.num_classes],
                                         ["batch_size", 3, voc.num_classes, voc.num_classes], ["batch_size"]]
    payload = torch.load(mscred_path, weights_only=True)
    meta = json.loads((out / "mscred.onnx.meta.json").read_text())
    assert meta["threshold"] == payload["threshold"] and meta["broken_cell_level"] == payload["broken_cell_level"]
    assert meta["feature_dim"] == 34 and meta["window_size"] == 100 and meta["scales"] == [10, 30, 60]
    assert meta["counts"] == {"bucket_seconds": 600.0, "bucket_lines": None, "per_host": False}
    assert meta["outputs"][0]["shape"] == ["batch_size", 3, 34, 34] and meta["portable"] is True
    assert meta["validation"]["cases"][0].startswith("real windows")
    names = [r.name for r in modeldir.check_golden(out)]
    assert "mscred.onnx: real windows" in names and "mscred.onnx: all-zero window" in names
    size = (out / "golden.json").stat().st_size
    assert size <= 100_000, f"golden.json is {size} bytes"
    golden = json.loads((out / "golden.json").read_text())
    recon = next(c for c in golden["cases"] if c["model"] == "mscred.onnx")["outputs"]["reconstruction"]
    assert recon["shape"] == [1, 3, 34, 34] and len(recon["indices"]) == len(recon["data"]) >= 200
    recon["data"][len(recon["data"]) // 2] += 1e-3  # one sampled cell moved: the check fails
    (out / "golden.json").write_text(json.dumps(golden))
    with pytest.raises(AlogError, match="reconstruction differs"):
        modeldir.check_golden(out)
    model, _ = checkpoint.load_mscred(mscred_path, voc)
    x = inputs.real_mscred_windows(counts_path, 100, voc)[:5]
    got = modeldir.run_onnx(out, "mscred", x)
    with torch.no_grad():
        recon, score = model(torch.from_numpy(x))
    assert np.abs(got["reconstruction"] - recon.numpy()).max() <= 1e-5
    assert np.array_equal(got["anomaly_score"], score.numpy())


def test_counts_from_another_vocab_are_refused(trained, real_mscred, tmp_path):
    ws, voc = trained
    mscred_path, _ = real_mscred
    import pandas as pd

    from alog_edge.data import counts

    other = vocab.Vocab({f"x{t}": i for t, i in voc.index.items()})
    spec = counts.CountSpec(bucket_seconds=600.0, per_host=False)
    counts.save(counts.count_series(pd.read_parquet(ws / "parsed.parquet"), other, spec), spec, other,
                tmp_path / "counts.parquet")
    with pytest.raises(AlogError, match="counted with another vocab"):
        export.convert(request(ws, tmp_path / "onnx", mscred_model=mscred_path, counts=tmp_path / "counts.parquet"))
    assert not (tmp_path / "onnx").exists()
