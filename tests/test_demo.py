"""The main job end to end, as `invoke demo` runs it: generate, parse, train both models, evaluate, convert."""
import json

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


def test_mscred_catches_what_deeplog_cannot_and_both_together_beat_either(demo):
    _, summary = demo
    tl = summary["evaluation"]["timeline"]
    print(json.dumps(tl, indent=1))
    f1 = {name: m["f1"] for name, m in tl["metrics"].items()}
    assert f1["combined"] > max(f1["deeplog"], f1["mscred"])
    kinds = tl["recall_by_kind"]
    for kind in ("rate", "correlation"):
        assert kinds["mscred"][kind] > kinds["deeplog"][kind], kind


def test_the_exported_models_give_the_torch_verdicts(demo):
    ws, summary = demo
    assert summary["onnx"]["same_verdicts"]
    for name in ("deeplog.onnx", "mscred.onnx", "vocab.json", "parser.json", "golden.json"):
        assert (ws / "models" / "onnx" / name).is_file(), name
    assert (ws / "mscred_scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
