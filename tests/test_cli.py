"""The tasks as a user runs them: bad input ends in one line naming the file, exit 1, nothing written."""
import inspect
import json

import pytest

from badinput_util import InProcess
from conftest import invoke


def assert_one_line_error(proc, path, fragment):
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("name,content,fragment", [
    ("empty.log", b"", "is empty"),
    ("binary.log", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\n", "NUL bytes"),
    ("latin1.log", "2026-01-01T00:00:00Z caf\u00e9 ok\n".encode("latin-1"), "not valid UTF-8"),
    ("long.log", b"a" * (10 << 20) + b"\n", "longer than"),
    ("other.log", b"this line has no timestamp or colon\n", "no line matches the log format"),
])
def test_parse_refuses_bad_logs_and_writes_nothing(tmp_path, name, content, fragment):
    log = tmp_path / name
    log.write_bytes(content)
    ws = tmp_path / "ws"
    proc = invoke("parse", "--logs", str(log), "--format", "hdfs", "-w", str(ws))
    assert_one_line_error(proc, log, fragment)
    assert not ws.exists() or list(ws.iterdir()) == []


def test_parse_names_a_missing_file(tmp_path):
    proc = invoke("parse", "--logs", str(tmp_path / "nope.log"), "-w", str(tmp_path / "ws"))
    assert_one_line_error(proc, tmp_path / "nope.log", "no such file")


def test_training_with_a_template_id_vocab_points_to_fix_vocab(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({"1": 0, "2": 1}))
    proc = invoke("train-deeplog", "-w", str(tmp_path))
    assert_one_line_error(proc, tmp_path / "vocab.json", "invoke fix-vocab")
    assert not (tmp_path / "deeplog.pth").exists()


def test_the_whole_hdfs_flow_through_the_tasks(tmp_path, datasets):
    """build -> train -> evaluate, then a vocab that is not the model's is refused."""
    s = datasets / "hdfs-sessions"
    ws = tmp_path / "ws"
    assert invoke("build-deeplog", "-w", str(ws), "--sessions", str(s / "hdfs_train"),
                  "--templates", str(s / "HDFS_templates.csv")).returncode == 0
    train = invoke("train-deeplog", "-w", str(ws), "--epochs", "2")
    assert train.returncode == 0, train.stderr
    assert "deeplog: 2 epochs" in train.stdout
    ev = invoke("evaluate", "-w", str(ws), "--logs", str(datasets / "loghub-2k/HDFS/HDFS_2k.log"),
                "--parser", str(tmp_path / "missing-parser.json"))
    assert_one_line_error(ev, tmp_path / "missing-parser.json", "no such file")
    other = tmp_path / "other-vocab.json"
    other.write_text(json.dumps({"a": 0, "b": 1}))
    bad = invoke("evaluate", "-w", str(ws), "--vocab", str(other), "--normal", str(s / "hdfs_train"),
                 "--templates", str(s / "HDFS_templates.csv"))
    assert_one_line_error(bad, ws / "deeplog.pth", "different vocab")
    good = invoke("evaluate", "-w", str(ws), "--normal", str(s / "hdfs_train"), "--templates",
                  str(s / "HDFS_templates.csv"), "--json", "--out", str(tmp_path / "verdicts.csv"))
    assert good.returncode == 0, good.stderr
    summary = json.loads(good.stdout)["deeplog"]
    assert summary["sessions"] == 5583 and summary["session_level"]["tn"] + summary["session_level"]["fp"] == 5583
    rows = (tmp_path / "verdicts.csv").read_text().splitlines()
    assert rows[0] == "session,label,verdict" and len(rows) == 5584


def test_every_listed_task_says_what_it_does_and_documents_every_flag():
    """Every task `invoke --list` prints has a docstring and a help text for each of its flags."""
    listing = invoke("--list", "--list-format", "json")
    assert listing.returncode == 0, listing.stderr
    names = [t["name"] for t in json.loads(listing.stdout)["tasks"]]
    for name in ("setup", "demo", "demo-data", "parse", "parse-accuracy", "build-deeplog", "fix-vocab",
                 "train-deeplog", "build-mscred", "train-mscred", "evaluate", "convert", "match", "test"):
        assert name in names, name
    namespace = InProcess().namespace
    undocumented = []
    for name in names:
        task = namespace[name]
        assert (task.__doc__ or "").strip(), name
        flags = [p for p in inspect.signature(task.body).parameters if p != "c"]
        for f in flags:  # FlagTask appends a flag's range as "[...]": that alone is no help
            text = next((task.help[k] for k in (f, f.replace("_", "-"), f.rstrip("_")) if k in task.help), "")
            if not text.strip() or text.strip().startswith("["):
                undocumented.append(f"{name} --{f}")
    assert not undocumented, undocumented
    helptext = invoke("--help", "parse").stdout
    for flag in ("--logs", "--format", "--log-format", "--templates", "--workspace", "--year"):
        assert flag in helptext, flag
