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


def test_mscred_scores_every_window_and_the_saved_scores_give_the_printed_metrics(demo):
    ws, summary = demo
    tl = summary["evaluation"]["timeline"]
    print(json.dumps(tl, indent=1))
    assert tl["windows"] > 200 and set(tl["metrics"]) == {"deeplog", "mscred", "combined"}
    m = tl["metrics"]
    scores = pd.read_parquet(ws / "mscred_scores.parquet")
    assert len(scores) == tl["windows"] and scores["score"].notna().all()
    label = scores["label"] == 1
    for model, column in (("deeplog", "deeplog"), ("mscred", "verdict"), ("combined", "combined")):
        flagged = scores[column] == 1
        counted = {"tp": flagged & label, "fp": flagged & ~label, "fn": ~flagged & label, "tn": ~flagged & ~label}
        assert {k: int(v.sum()) for k, v in counted.items()} == {k: m[model][k] for k in counted}, model
    # each model finds anomalous windows the other misses: neither verdict is redundant in the combination
    assert (label & (scores["deeplog"] == 1) & (scores["verdict"] == 0)).any()
    assert (label & (scores["verdict"] == 1) & (scores["deeplog"] == 0)).any()
    for kind in ("unseen", "order", "missing", "rate", "correlation"):
        assert kind in tl["recall_by_kind"]["combined"], kind


def test_mscred_finds_the_rate_and_correlation_anomalies_deeplog_cannot(demo):
    """Window level, on the held-out part: MSCRED catches most rate/correlation windows (what it misses is the
    first minute or two of a cache-miss surge or an mqtt outage, before it shows in the counts), with few false
    alarms, and adds windows DeepLog misses: the combined verdict beats either model alone.
    Measured (seed 7): MSCRED recall rate 1.00, correlation 0.82, precision 0.92 (7 false alarms); window F1
    combined 0.937 > DeepLog 0.917 > MSCRED 0.681; 6 rate/correlation windows only MSCRED flags. Trained
    with other seeds (a stand-in for other CPUs): rate >= 0.83, correlation >= 0.73, 4-14 false alarms."""
    ws, summary = demo
    tl = summary["evaluation"]["timeline"]
    m, by_kind = tl["metrics"], tl["recall_by_kind"]
    print(json.dumps({"metrics": m, "recall_by_kind": by_kind, "mscred_train": summary["mscred_train"]}, indent=1))
    assert by_kind["mscred"]["rate"] >= 0.65 and by_kind["mscred"]["correlation"] >= 0.6
    assert by_kind["mscred"]["rate"] > by_kind["deeplog"]["rate"]
    assert m["mscred"]["precision"] >= 0.8 and m["mscred"]["fp"] <= 16
    assert m["combined"]["f1"] > m["deeplog"]["f1"] > m["mscred"]["f1"] > 0
    assert by_kind["combined"]["correlation"] > by_kind["deeplog"]["correlation"]
    scores = pd.read_parquet(ws / "mscred_scores.parquet")
    only_mscred = scores[scores["kind"].str.contains("rate|correlation") & (scores["verdict"] == 1)
                         & (scores["deeplog"] == 0)]
    assert len(only_mscred) >= 3, only_mscred


def test_the_mscred_model_stays_small(demo):
    ws, summary = demo
    ms = summary["mscred_train"]
    assert 45 <= summary["vocab_size"] <= 70  # templates: MSCRED's matrices are (templates + 1)^2
    # measured: 63 templates, 197,231 parameters, a 0.86 MB checkpoint
    assert ms["parameters"] < 300_000 and ms["checkpoint_bytes"] < 1_500_000
    assert ms["checkpoint_bytes"] == (ws / "mscred.pth").stat().st_size


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


def test_the_demo_flashes_its_bundle_over_ssh_and_the_second_flash_is_up_to_date(demo):
    _, summary = demo
    first, again = summary["flash"]["first"], summary["flash"]["again"]
    assert (first["result"], first["kind"], first["selftest"]) == ("ok", "first install", "passed")
    assert (again["result"], again["bytes_sent"]) == ("up to date", 0)
    assert first["version_after"] == again["version_after"]


def test_the_demo_ships_its_models_installs_them_updates_only_the_models_and_rolls_back(demo):
    _, summary = demo
    d = summary["delivery"]
    print(json.dumps({k: v for k, v in d.items() if k != "status"}, indent=1))
    assert d["same_table"] is True
    assert d["bundle"]["target"] == "x86_64" and d["update"]["version"] != d["bundle"]["version"]
    assert 0 < d["update_files_sent"] < d["update"]["files"]  # only model files travel
    st = d["status"]
    assert (st["current"], st["previous"]) == (d["bundle"]["version"], d["update"]["version"])
    assert [h["action"] for h in st["history"]] == ["install", "install", "rollback"]


def test_the_board_part_flashes_over_ssh_and_serial_and_finds_what_x86_64_finds(demo):
    _, summary = demo
    board = summary["board"]
    assert [f["kind"] for f in board["flashes"]] == ["first install", "model-only"]
    assert all(f["selftest"] == "passed" for f in board["flashes"])
    assert board["same_as_x86_64"] and board["max_difference"] <= 1e-4
    assert board["verdicts"] > 0 and board["anomalies"] > 0
