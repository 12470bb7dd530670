"""The C runtime's detection against the Python side on real data: `alog-edge score` on the HDFS
sessions, `alog-edge run` on HDFS_2k with both models, follow mode through rotation and
truncation, selftest, and bad input. Every verdict is compared, none sampled."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alog_edge.data import counts, dataset, parse

from alog_edge.data import template_list
from alog_edge.models import deeplog_rule
from alog_edge.evaluation import evaluate
from alog_edge.export import convert as export
from alog_edge.formats import modeldir
from alog_edge.toolchain import build as native
from alog_edge.parity import harness as runtime
from alog_edge.training import train
from alog_edge.models.mscred import MSCREDConfig
from conftest import REPO, copy_workspace

HDFS_SESSIONS_SCORED = 10 ** 6  # every session of hdfs_train (4855), each one compared
AARCH64_SESSIONS = 120       # under qemu onnxruntime is ~50x slower


@pytest.fixture(scope="module")
def binary(runtime_x86_64) -> Path:
    return runtime_x86_64 / "bin" / "alog-edge"


@pytest.fixture(scope="module")
def hdfs(tmp_path_factory, datasets, hdfs_deeplog):
    """A model directory with both models on real HDFS data: DeepLog on the HDFS sessions (conftest's session
    model), the HDFS_2k log keyed by the sessions' templates, MSCRED on its counts (10-minute buckets, whole
    stream)."""
    ws = copy_workspace(hdfs_deeplog[0], tmp_path_factory.mktemp("hdfs") / "ws")
    voc = hdfs_deeplog[1]
    log = datasets / "loghub-2k" / "HDFS" / "HDFS_2k.log"
    spec = counts.CountSpec(bucket_seconds=600.0, per_host=False)
    counts.save(counts.count_series(pd.read_parquet(ws / "parsed.parquet"), voc, spec), spec, voc,
                ws / "counts.parquet")
    train.train_mscred(ws / "counts.parquet", voc, ws / "mscred.pth", MSCREDConfig(voc.num_classes),
                       train.TrainConfig(epochs=1, seed=2, threads=1), stride=30)
    model_dir = ws / "models"
    export.convert(export.ConvertRequest(vocab=ws / "vocab.json", parser=ws / "parser.json", output_dir=model_dir,
                                         deeplog_model=ws / "deeplog.pth", mscred_model=ws / "mscred.pth",
                                         sequences=ws / "sequences.parquet", counts=ws / "counts.parquet"))
    return ws, model_dir, log, voc


def run(binary: Path, *args: str, stdin: bytes | None = None, qemu: list[str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*(qemu or []), str(binary), *args], input=stdin, capture_output=True, timeout=timeout)


def jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


# --- score: DeepLog on index sequences ------------------------------------------------------

def hdfs_subset(tmp_path: Path, datasets: Path, n: int) -> Path:
    lines = (datasets / "hdfs-sessions" / "hdfs_train").read_text().splitlines()[:n]
    out = tmp_path / "sessions"
    out.write_text("\n".join(lines) + "\n")
    return out


def python_score(model_dir: Path, sessions_file: Path, templates: Path, voc, **overrides) -> tuple[pd.DataFrame, list]:
    seqs = dataset.read_hdfs_sessions(sessions_file, template_list.read_template_file(templates), voc)
    rule = deeplog_rule.from_meta(json.loads((model_dir / "deeplog.onnx.meta.json").read_text()))
    verdicts = evaluate.deeplog_verdicts(modeldir.OnnxDeepLog(model_dir), [list(k) for k in seqs["keys"]],
                                         rule.overridden(**overrides))
    return seqs, verdicts


def assert_score_parity(c_out: list[dict], seqs: pd.DataFrame, verdicts: list, tolerance: float) -> float:
    assert len(c_out) == len(seqs)
    worst = 0.0
    for got, name, keys, want in zip(c_out, seqs["session"], seqs["keys"], verdicts):
        assert got["session"] == name and got["keys"] == len(keys)
        assert got["anomalous"] == want.session_anomalous, name
        assert got["end_anomalous"] == want.end_anomalous, name
        assert got["anomalies"] == int(want.anomalous.sum()) + int(want.end_anomalous), name
        assert got["reason"] == list(want.reason), name
        assert got["rank"] == [None if r < 0 else int(r) for r in want.rank], name
        assert got["end_rank"] == (None if want.end_rank < 0 else want.end_rank), name
        assert got["end_reason"] == want.end_reason, name
        probs = np.array([np.nan if p is None else p for p in got["probability"] + [got["end_probability"]]], float)
        want_probs = np.append(want.probability, want.end_probability)
        assert np.array_equal(np.isnan(probs), np.isnan(want_probs)), name
        if len(probs) and not np.isnan(probs).all():
            worst = max(worst, float(np.nanmax(np.abs(probs - want_probs))))
    assert worst <= tolerance
    return worst


def test_score_gives_the_python_verdict_and_probabilities_for_every_hdfs_session(binary, hdfs, datasets, tmp_path):
    _, model_dir, _, voc = hdfs
    templates = datasets / "hdfs-sessions" / "HDFS_templates.csv"
    subset = hdfs_subset(tmp_path, datasets, HDFS_SESSIONS_SCORED)
    proc = run(binary, "score", "--detail", "--templates", str(templates), str(model_dir), str(subset))
    assert proc.returncode == 0, proc.stderr.decode()
    seqs, verdicts = python_score(model_dir, subset, templates, voc)
    worst = assert_score_parity(jsonl(proc.stdout), seqs, verdicts, 1e-5)
    print(f"\n{len(seqs)} sessions, {sum(len(k) for k in seqs['keys'])} keys: same verdicts, "
          f"largest probability difference {worst:.2e}")
    # the calibrated rule and the key sets flag no training session: a looser threshold covers flagged ones too
    proc = run(binary, "score", "--detail", "--probability-threshold", "0.01", "--templates", str(templates),
               str(model_dir), str(subset))
    seqs, verdicts = python_score(model_dir, subset, templates, voc, threshold=0.01)
    assert_score_parity(jsonl(proc.stdout), seqs, verdicts, 1e-5)
    assert sum(v.anomalous.any() for v in verdicts) > 0


def test_score_gives_the_python_verdict_on_every_dev_session_short_and_truncated_ones_included(binary, hdfs,
                                                                                              datasets, tmp_path):
    _, model_dir, _, voc = hdfs
    split = datasets / "hdfs-sessions"
    both = tmp_path / "dev"
    both.write_text((split / "hdfs_dev_normal").read_text() + (split / "hdfs_dev_abnormal").read_text())
    templates = split / "HDFS_templates.csv"
    proc = run(binary, "score", "--detail", "--templates", str(templates), str(model_dir), str(both))
    assert proc.returncode == 0, proc.stderr.decode()
    seqs, verdicts = python_score(model_dir, both, templates, voc)
    assert_score_parity(jsonl(proc.stdout), seqs, verdicts, 1e-5)
    short = [v for k, v in zip(seqs["keys"], verdicts) if len(k) <= 10]
    assert len(short) > 100  # sessions of at most h keys: predicted from start keys on both sides
    # the key-set check is part of the compared rule: new combinations and incomplete ends, on both sides
    assert any("key_set" in v.reason for v in verdicts)
    assert any(v.end_reason == "key_set" for v in verdicts)


def test_a_rule_changed_in_meta_json_is_what_score_applies_without_rebuilding(binary, hdfs, datasets, tmp_path):
    _, model_dir, _, voc = hdfs
    templates = datasets / "hdfs-sessions" / "HDFS_templates.csv"
    subset = tmp_path / "dev"
    subset.write_text("".join((datasets / "hdfs-sessions" / "hdfs_dev_abnormal").read_text().splitlines(True)[:300]))
    edited = tmp_path / "edited"
    shutil.copytree(model_dir, edited)
    meta = json.loads((edited / "deeplog.onnx.meta.json").read_text())
    flagged = {}
    for rule, extra in (("top_k", {"top_k": 3}), ("probability", {"probability_threshold": 0.05})):
        (edited / "deeplog.onnx.meta.json").write_text(json.dumps({**meta, "rule": rule, **extra}))
        proc = run(binary, "score", "--detail", "--templates", str(templates), str(edited), str(subset))
        assert proc.returncode == 0, proc.stderr.decode()
        seqs, verdicts = python_score(edited, subset, templates, voc)
        assert_score_parity(jsonl(proc.stdout), seqs, verdicts, 1e-5)
        assert any(rule in v.reason for v in verdicts)
        assert rule == "top_k" or any(v.end_anomalous for v in verdicts), "truncated sessions caught by their end"
        flagged[rule] = sum(v.session_anomalous for v in verdicts)
    # key sets: edited in meta.json (one set fewer, then none), applied without a rebuild
    for key_sets in (meta["key_sets"][1:], None):
        (edited / "deeplog.onnx.meta.json").write_text(json.dumps({**meta, "key_sets": key_sets}))
        proc = run(binary, "score", "--detail", "--templates", str(templates), str(edited), str(subset))
        assert proc.returncode == 0, proc.stderr.decode()
        seqs, verdicts = python_score(edited, subset, templates, voc)
        assert_score_parity(jsonl(proc.stdout), seqs, verdicts, 1e-5)
        reasons = {r for v in verdicts for r in [*v.reason, v.end_reason]}
        assert ("key_set" in reasons) == (key_sets is not None)
        flagged[f"key_sets={len(key_sets) if key_sets is not None else None}"] = sum(
            v.session_anomalous for v in verdicts)
    (edited / "deeplog.onnx.meta.json").write_text(json.dumps(meta))
    # and from the command line, over the meta's rule
    proc = run(binary, "score", "--rule", "top_k", "--top-k", "5", "--templates", str(templates), str(edited),
               str(subset))
    seqs, verdicts = python_score(edited, subset, templates, voc, kind="top_k", top_k=5)
    assert [e["anomalous"] for e in jsonl(proc.stdout)] == [v.session_anomalous for v in verdicts]
    print(f"\nflagged of {len(seqs)}: {flagged}")


def test_score_under_qemu_gives_the_same_verdicts_on_aarch64(hdfs, datasets, tmp_path, runtime_aarch64):
    _, model_dir, _, voc = hdfs
    prefix = runtime_aarch64
    templates = datasets / "hdfs-sessions" / "HDFS_templates.csv"
    subset = hdfs_subset(tmp_path, datasets, AARCH64_SESSIONS)
    proc = run(prefix / "bin" / "alog-edge", "score", "--detail", "--templates", str(templates), str(model_dir),
               str(subset), qemu=native.qemu_command(REPO), timeout=900)
    assert proc.returncode == 0, proc.stderr.decode()
    seqs, verdicts = python_score(model_dir, subset, templates, voc)
    assert_score_parity(jsonl(proc.stdout), seqs, verdicts, 1e-4)


def test_score_refuses_an_event_id_outside_the_templates_naming_the_line(binary, hdfs, datasets, tmp_path):
    _, model_dir, _, _ = hdfs
    bad = tmp_path / "bad"
    bad.write_text("blk_1,5 5 22\nblk_2,5 999 3\n")
    proc = run(binary, "score", "--templates", str(datasets / "hdfs-sessions" / "HDFS_templates.csv"),
               str(model_dir), str(bad))
    assert proc.returncode == 1 and proc.stdout == b""
    err = proc.stderr.decode().strip()
    assert err.startswith(f"error: {bad}") and "line 2" in err and "999" in err and len(err.splitlines()) == 1


# --- run: raw lines, both models ------------------------------------------------------------

def test_run_reports_every_verdict_python_onnxruntime_gives_on_hdfs_2k(binary, hdfs):
    _, model_dir, log, voc = hdfs
    c = runtime.run_c(binary, model_dir, log)
    py = runtime.run_python(model_dir, parse.match([log], model_dir / "parser.json"), voc)
    result = runtime.compare(py, c)
    print("\n" + json.dumps(result))
    assert result["same"], result
    assert result["keys"] >= 2000 and result["windows"] > 0
    assert py.keys["anomalous"].any() and not py.keys["anomalous"].all()
    assert (py.keys["reason"] == "key_set").any(), "the key-set check is part of the compared rule"


def split_verdicts(model_dir: Path, frame: pd.DataFrame, voc, ends_after) -> dict:
    """Python's verdicts when each session is cut after the positions `ends_after(keys, line_nos, ts)` names:
    {(session, line_no, is_end): (anomalous, reason)}."""
    rule = deeplog_rule.from_meta(json.loads((model_dir / "deeplog.onnx.meta.json").read_text()))
    ts_of = frame.drop_duplicates("line_no").set_index("line_no")["timestamp"]
    owners, parts = [], []
    for name, keys, lines in dataset.sequences_from_parsed(frame, voc)[["session", "keys", "line_no"]].itertuples(
            index=False):
        cuts = sorted(set(ends_after(list(keys), list(lines), list(ts_of[list(lines)]))) | {len(keys) - 1})
        start = 0
        for cut in cuts:
            owners.append((name, list(lines[start:cut + 1])))
            parts.append(list(keys[start:cut + 1]))
            start = cut + 1
    verdicts = evaluate.deeplog_verdicts(modeldir.OnnxDeepLog(model_dir), parts, rule)
    out = {}
    for (name, lines), v in zip(owners, verdicts):
        for line_no, anomalous, reason in zip(lines, v.anomalous, v.reason):
            out[(name, int(line_no), False)] = (bool(anomalous), reason)
        out[(name, int(lines[-1]), True)] = (v.end_anomalous, v.end_reason)
    return out


def c_verdicts(binary: Path, model_dir: Path, log: Path, *args: str) -> dict:
    c = runtime.run_c(binary, model_dir, log, "--no-mscred", *args).keys
    return {(r.session, int(r.line_no), bool(r.end)): (bool(r.anomalous), r.reason) for r in c.itertuples()}


def test_run_ends_a_session_on_a_closing_template_declared_in_the_model_directory(binary, hdfs, tmp_path):
    ws, model_dir, log, voc = hdfs
    closing = "<*>Deleting block<*>file<*>"  # HDFS event 21: a block's last step
    out = tmp_path / "closing"
    export.convert(export.ConvertRequest(vocab=ws / "vocab.json", parser=ws / "parser.json", output_dir=out,
                                         deeplog_model=ws / "deeplog.pth", sequences=ws / "sequences.parquet",
                                         closing_templates=(closing,)))
    assert json.loads((out / "deeplog.onnx.meta.json").read_text())["closing_keys"] == [voc.index[closing]]
    frame = parse.match([log], out / "parser.json")
    want = split_verdicts(out, frame, voc, lambda keys, _l, _t: [i for i, k in enumerate(keys)
                                                                 if k == voc.index[closing]])
    got = c_verdicts(binary, out, log)
    assert got == want
    assert sum(1 for (_, _, end) in want if end) > len(dataset.sequences_from_parsed(frame, voc))


def test_run_ends_a_session_idle_for_session_idle_seconds(binary, hdfs, tmp_path):
    _, model_dir, log, voc = hdfs
    frame = parse.match([log], model_dir / "parser.json")
    assert frame["timestamp"].is_monotonic_increasing  # so idle by any later line = idle by its next line
    idle = 3600.0
    want = split_verdicts(model_dir, frame, voc, lambda _k, _l, ts: [
        i for i in range(len(ts) - 1) if (ts[i + 1] - ts[i]).total_seconds() > idle])
    got = c_verdicts(binary, model_dir, log, "--session-idle", str(idle))
    assert got == want
    assert len(want) > len(c_verdicts(binary, model_dir, log)), "some sessions idled out"


def test_run_prints_only_anomalies_by_default_with_their_raw_line(binary, hdfs):
    _, model_dir, log, _ = hdfs
    proc = run(binary, "run", str(model_dir), str(log))
    assert proc.returncode == 0, proc.stderr.decode()
    events = jsonl(proc.stdout)
    assert events and all(e["anomalous"] for e in events)
    raw = log.read_text().splitlines()
    end_key = json.loads((model_dir / "deeplog.onnx.meta.json").read_text())["end_key"]
    for e in (e for e in events if e["model"] == "deeplog"):
        if e["index"] == end_key:  # a session that ended where the rule did not expect it: no line of its own
            assert e["line"] == "" and e["template"] is None and e["reason"] in ("end", "key_set")
        else:
            assert e["line"] == raw[e["line_no"] - 1] and e["reason"] in ("unseen", "probability", "key_set")
    assert "lines" in proc.stderr.decode()


def test_batched_and_one_key_at_a_time_runs_agree(binary, hdfs):
    _, model_dir, log, _ = hdfs
    batched = runtime.run_c(binary, model_dir, log, "--batch", "512")
    single = runtime.run_c(binary, model_dir, log, "--batch", "1")
    assert runtime.compare(batched, single)["same"]


def test_run_under_qemu_gives_the_same_verdicts_on_aarch64(hdfs, tmp_path, runtime_aarch64):
    _, model_dir, log, voc = hdfs
    part = tmp_path / "part.log"
    part.write_text("".join(log.read_text().splitlines(keepends=True)[:400]))
    prefix = runtime_aarch64
    proc = run(prefix / "bin" / "alog-edge", "run", "--all", "--no-mscred", str(model_dir), str(part),
               qemu=native.qemu_command(REPO), timeout=900)
    assert proc.returncode == 0, proc.stderr.decode()
    # a session's end is a verdict of its own, on its last line (reason "end")
    got = {(e["session"], e["line_no"], e["line"] == "" and e["template"] is None): e for e in jsonl(proc.stdout)}
    py = runtime.run_python(model_dir, parse.match([part], model_dir / "parser.json"), voc, mscred=False).keys
    assert len(got) == len(py)
    for row in py.itertuples():
        e = got[(row.session, row.line_no, bool(row.end))]
        assert e["anomalous"] == bool(row.anomalous) and e["reason"] == row.reason
        if not np.isnan(row.probability):
            assert abs(e["probability"] - row.probability) <= 1e-4


# --- follow mode ----------------------------------------------------------------------------

def test_follow_judges_every_line_once_through_rotation_and_truncation(binary, hdfs, tmp_path):
    _, model_dir, log, _ = hdfs
    lines = log.read_text().splitlines(keepends=True)[:600]
    path = tmp_path / "live.log"
    path.write_text("".join(lines[:200]))
    proc = subprocess.Popen([str(binary), "run", "--follow", "--all", "--no-mscred", "--max-idle", "3",
                             str(model_dir), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.8)
        with path.open("a") as f:                      # grows
            f.write("".join(lines[200:300]))
        time.sleep(0.8)
        os.rename(path, tmp_path / "live.log.1")       # rotated: a new file under the same name
        path.write_text("".join(lines[300:450]))
        time.sleep(0.8)
        path.write_text("".join(lines[450:600]))       # truncated and rewritten in place
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    judged = [e for e in jsonl(out) if e["model"] == "deeplog" and e["line"] != ""]  # not the sessions' ends
    texts = [e["line"] for e in judged]
    # every written line was judged (a line naming several blocks once per block), none twice
    want = [ln.rstrip("\n") for ln in lines]
    assert sorted(set(texts)) == sorted(set(want))
    per_text = pd.Series(texts).value_counts()
    blocks = {ln.rstrip("\n"): max(1, len(set(__import__("re").findall(r"blk_-?\d+", ln)))) for ln in lines}
    assert all(per_text[t] == blocks[t] for t in per_text.index)


def test_follow_stops_by_itself_after_max_idle(binary, hdfs, tmp_path):
    _, model_dir, log, _ = hdfs
    path = tmp_path / "quiet.log"
    shutil.copy(log, path)
    # run() raises TimeoutExpired if it waits on; what it printed before stopping is the whole file's verdicts
    proc = run(binary, "run", "--follow", "--max-idle", "1", str(model_dir), str(path), timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    once = run(binary, "run", str(model_dir), str(path))
    assert once.returncode == 0 and once.stdout.strip()
    assert proc.stdout == once.stdout


# --- selftest -------------------------------------------------------------------------------

def test_selftest_passes_on_the_converted_models_and_fails_on_a_changed_output(binary, hdfs, tmp_path):
    _, model_dir, _, _ = hdfs
    proc = run(binary, "selftest", str(model_dir))
    assert proc.returncode == 0, proc.stderr.decode()
    cases = jsonl(proc.stdout)
    assert len(cases) >= 4 and all(c["pass"] for c in cases)
    assert {c["case"].split(":")[0] for c in cases} == {"deeplog.onnx", "mscred.onnx"}
    changed = tmp_path / "changed"
    shutil.copytree(model_dir, changed)
    golden = json.loads((changed / "golden.json").read_text())
    out = next(iter(golden["cases"][0]["outputs"].values()))
    out["data"][0] += 0.01
    (changed / "golden.json").write_text(json.dumps(golden))
    proc = run(binary, "selftest", str(changed))
    assert proc.returncode == 4
    assert [c["pass"] for c in jsonl(proc.stdout)].count(False) == 1


# --- bad input ------------------------------------------------------------------------------

def broken_copy(model_dir: Path, tmp_path: Path, name: str, content: bytes | None) -> Path:
    out = tmp_path / "broken"
    shutil.copytree(model_dir, out)
    if content is None:
        (out / name).unlink()
    else:
        (out / name).write_bytes(content)
    return out


@pytest.mark.parametrize("name, content, says", [
    ("deeplog.onnx", b"", "deeplog.onnx"),
    ("mscred.onnx", None, "mscred.onnx"),  # its meta.json stays: a model went missing
    ("vocab.json", b'{"Receiving block <*>": 0}', "vocab.json"),
    ("vocab.json", b'{"0": "a", "2": "b"}', "vocab.json"),
    ("parser.json", b'{"format_version": 1,', "parser.json"),
    ("deeplog.onnx.meta.json", b'{"model_type": "deeplog"', "deeplog.onnx.meta.json"),
])
def test_run_refuses_a_broken_model_directory_with_one_line(binary, hdfs, tmp_path, name, content, says):
    _, model_dir, log, _ = hdfs
    if name == "deeplog.onnx":  # truncated, not empty
        content = (model_dir / name).read_bytes()[:1000]
    broken = broken_copy(model_dir, tmp_path, name, content)
    proc = run(binary, "run", str(broken), str(log), timeout=60)
    err = proc.stderr.decode().strip()
    assert proc.returncode == 1 and proc.stdout == b"", err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and says in err


def test_run_refuses_a_vocab_that_does_not_fit_the_models(binary, hdfs, tmp_path):
    _, model_dir, log, _ = hdfs
    voc = json.loads((model_dir / "vocab.json").read_text())
    voc[str(len(voc))] = "one template more"
    broken = broken_copy(model_dir, tmp_path, "vocab.json", json.dumps(voc).encode())
    proc = run(binary, "run", str(broken), str(log), timeout=60)
    err = proc.stderr.decode().strip()
    assert proc.returncode == 1 and len(err.splitlines()) == 1 and "meta.json" in err, err


def test_run_survives_hostile_lines_and_reports_them(binary, hdfs, tmp_path):
    _, model_dir, log, _ = hdfs
    good = log.read_bytes().splitlines(keepends=True)[:50]
    hostile = tmp_path / "hostile.log"
    hostile.write_bytes(b"".join(good[:20]) + b"x" * (1 << 20) + b"y\n" + b"081109 203615 148 INFO a\x00b\n"
                        + b"081109 203615 148 INFO \xff\xfe\n" + b"\n" + b"".join(good[20:]))
    proc = run(binary, "run", "--all", str(model_dir), str(hostile), timeout=60)
    assert proc.returncode == 3, proc.stderr.decode()
    judged = {e["line_no"] for e in jsonl(proc.stdout) if e["model"] == "deeplog"}
    assert {21, 22, 23}.isdisjoint(judged) and len(judged) == 50
    err = proc.stderr.decode()
    assert all(f"line {n}" in err for n in (21, 22, 23)), err


def test_run_on_empty_input_prints_nothing_and_succeeds(binary, hdfs):
    _, model_dir, _, _ = hdfs
    proc = run(binary, "run", str(model_dir), "-", stdin=b"")
    assert proc.returncode == 0 and proc.stdout == b""


# --- saved optimised graphs and bench --------------------------------------------------------------

def test_the_saved_optimised_graphs_give_the_same_verdicts_as_the_plain_models(binary, hdfs, tmp_path):
    _, model_dir, log, _ = hdfs
    assert len(list(model_dir.glob("deeplog.opt-*.onnx"))) == len(list(model_dir.glob("mscred.opt-*.onnx"))) == 1
    plain = tmp_path / "plain"
    shutil.copytree(model_dir, plain)
    for opt in plain.glob("*.opt-*.onnx"):
        opt.unlink()
    small = tmp_path / "small.log"
    small.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:400]))
    with_opt = run(binary, "run", "--all", str(model_dir), str(small), timeout=120)
    without = run(binary, "run", "--all", str(plain), str(small), timeout=120)
    assert with_opt.returncode == without.returncode == 0, with_opt.stderr.decode() + without.stderr.decode()
    a, b = jsonl(with_opt.stdout), jsonl(without.stdout)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):  # same keys, same verdicts; scores within float noise
        assert {k: v for k, v in x.items() if not isinstance(v, float)} == \
            {k: v for k, v in y.items() if not isinstance(v, float)}
    assert run(binary, "selftest", str(plain)).returncode == 0


def test_bench_reports_peak_memory_per_phase_and_what_load_spends(binary, hdfs, tmp_path):
    _, model_dir, log, _ = hdfs
    small = tmp_path / "small.log"
    small.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:300]))
    proc = run(binary, "bench", "--json", "--seconds", "0.01", "--batch", "16", str(model_dir), str(small),
               timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    figures = json.loads(proc.stdout)
    phases = [figures[f"peak_rss_{p}_kb"] for p in ("load", "match", "detect", "follow")]
    assert all(p > 0 for p in phases) and figures["peak_rss_kb"] == max(phases)
    assert figures["rss_after_load_file_kb"] > 0 and figures["rss_after_load_anon_kb"] > 0
    assert figures["load_deeplog_cpu_ms"] >= 0 and figures["load_mscred_cpu_ms"] > 0
    assert figures["load_cpu_ms"] >= figures["load_text_cpu_ms"] > 0
    assert figures["match_cpu_lines_per_s"] > 0 and figures["follow_cpu_p99_us"] >= figures["follow_cpu_p50_us"] > 0
