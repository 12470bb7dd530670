"""The main job end to end, as `invoke demo` runs it: generate, parse, train both models, evaluate, convert."""
import json

import pandas as pd
import pytest

from conftest import invoke


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    ws = tmp_path_factory.mktemp("demo")
    proc = invoke("demo", "-w", str(ws), "--json", timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ws / "demo", json.loads(proc.stdout)


def test_deeplog_finds_the_sequence_anomalies(demo):
    _, summary = demo
    dl = summary["evaluation"]["deeplog"]
    print(json.dumps(dl, indent=1))
    assert dl["session_level"]["f1"] > 0.9
    for kind in ("unseen", "order", "missing"):
        assert dl["recall_by_kind"][kind] > 0.8, kind


def test_mscred_scores_every_window_and_the_combined_verdict_is_either_model(demo):
    ws, summary = demo
    tl = summary["evaluation"]["timeline"]
    print(json.dumps(tl, indent=1))
    assert tl["windows"] > 200 and set(tl["metrics"]) == {"deeplog", "mscred", "combined"}
    m = tl["metrics"]
    assert m["combined"]["tp"] >= max(m["deeplog"]["tp"], m["mscred"]["tp"])
    assert m["combined"]["fp"] <= m["deeplog"]["fp"] + m["mscred"]["fp"]
    scores = pd.read_parquet(ws / "mscred_scores.parquet")
    assert ((scores["combined"] == 1) == ((scores["deeplog"] == 1) | (scores["verdict"] == 1))).all()
    for kind in ("unseen", "order", "missing", "rate", "correlation"):
        assert kind in tl["recall_by_kind"]["combined"], kind


def test_the_exported_models_give_the_torch_verdicts(demo):
    ws, summary = demo
    assert summary["onnx"]["same_verdicts"]
    for name in ("deeplog.onnx", "mscred.onnx", "vocab.json", "parser.json", "golden.json"):
        assert (ws / "models" / "onnx" / name).is_file(), name
    assert (ws / "mscred_scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_c_runtime_reports_what_python_reports_on_every_line_and_window(demo):
    _, summary = demo
    rt = summary["runtime"]
    print(json.dumps(rt["parity"], indent=1))
    assert rt["parity"]["same"], rt["parity"]
    assert rt["parity"]["keys"] > 20000 and rt["parity"]["windows"] > 200
    py, c = summary["evaluation"], rt["evaluation"]
    for level in ("session_level", "line_level", "recall_by_kind"):
        assert c["deeplog"][level] == py["deeplog"][level], level
    assert c["timeline"]["metrics"] == py["timeline"]["metrics"]
    assert c["timeline"]["recall_by_kind"] == py["timeline"]["recall_by_kind"]
