"""Bad input on the Python side: every flag of every task (taken from `invoke --list`), invoke's own
parse errors, damaged files, outputs that cannot be written, a full disk and a full or closed stdout,
termination signals, and model directories the device would refuse. Every try is bounded by a
timeout and must end in one `error:` line, a non-zero exit, no traceback, nothing half-written and
no temp file left behind."""
from __future__ import annotations

import functools
import gzip
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from badinput_util import (TRY_SECONDS, InProcess, Outcome, ends_in_one_error_line, env_with_trace_dir,
                           invoke_process, leftovers, one_error_line, snapshot)
from conftest import REPO

TRIES: dict[str, list[int]] = {}  # class -> [tries, passed], printed at the end of the module


def count(kind: str, n: int = 1) -> None:
    TRIES.setdefault(kind, [0, 0])[0] += n


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    for kind, (n, _) in sorted(TRIES.items()):
        print(f"\nbad input: {kind}: {n} tries", file=sys.stderr)


@pytest.fixture(scope="module")
def inproc(tmp_path_factory) -> InProcess:
    os.environ.setdefault("ALOG_EDGE_TRACE_DIR", str(tmp_path_factory.mktemp("traces")))
    return InProcess()


def task_names(inproc: InProcess) -> list[str]:
    listing = inproc.run("--list")
    assert listing.code == 0, listing.stderr
    names = re.findall(r"^  ([a-z][a-z0-9-]*)\s", listing.stdout, re.M)
    assert len(names) >= 15, listing.stdout
    return names


def value_flags(inproc: InProcess, name: str) -> list[tuple[str, str]]:
    """(flag, metavar) of every flag that takes a value, from `invoke --help NAME`."""
    helped = inproc.run("--help", name)
    assert helped.code == 0, helped.stderr
    assert "--=" not in helped.stdout and "-- " not in helped.stdout, helped.stdout
    return re.findall(r"(--[a-z0-9][a-z0-9-]*)=([A-Z]+)", helped.stdout)


def must_not_run(body):
    """A stand-in body with the real one's signature (invoke builds the flags from it)."""
    @functools.wraps(body)
    def ran(*args, **kwargs):
        raise AssertionError(f"the body of {body.__name__} ran on bad input")
    return ran


def test_every_numeric_flag_of_every_task_declares_its_range(inproc):
    """A flag whose default is a number gets a type from its default; its range must be declared."""
    from alog_edge.cli.taskspec import FlagTask
    missing = []
    for name in task_names(inproc):
        task = inproc.task(name)
        assert isinstance(task, FlagTask), f"{name}: declare it with tasks.py's `task` (flag specs, one error path)"
        missing += [f"{name} --{f}" for f in task.flag_specs if f not in task.declared_flags]
        for flag, metavar in value_flags(inproc, name):
            param = flag[2:].replace("-", "_")
            if metavar == "INT" and param not in task.declared_flags:
                missing.append(f"{name} {flag}")
    assert not missing, f"numeric flags without a declared range: {missing}"


def test_every_bad_value_of_every_flag_is_one_line_before_any_work(inproc, monkeypatch):
    """Each declared spec's refused values (not numbers, NaN, infinities, just outside the range), for
    every flag of every task: one line naming the flag, exit 1, and the task body never runs."""
    tries = 0
    for name in task_names(inproc):
        task = inproc.task(name)

        monkeypatch.setattr(task, "body", must_not_run(task.body))
        flags = dict(value_flags(inproc, name))
        for param, spec in task.declared_flags.items():
            flag = "--" + param.replace("_", "-")
            assert flag in flags, (name, flag)
            required = [x for p in task.positional for x in ("--" + p.replace("_", "-"), "x")]
            for bad in spec.bad_examples():
                outcome = inproc.run(name, *required, flag, bad)
                line = one_error_line(outcome, f"error: {flag}: must be ")
                assert f"(got {bad!r})" in line, line
                tries += 1
    count("flag values out of range or not numbers", tries)
    assert tries > 300


def test_invokes_own_parse_errors_are_one_line(inproc, monkeypatch):
    tries = 0
    for name in task_names(inproc):
        task = inproc.task(name)
        monkeypatch.setattr(task, "body", must_not_run(task.body))
        required = [x for p in task.positional for x in ("--" + p.replace("_", "-"), "x")]
        if [p for p in task.positional if p not in task.iterable]:
            line = one_error_line(inproc.run(name))
            assert line == f"error: {required[0]}: {name} needs it (required: {', '.join(required[::2])})", line
            tries += 1
        line = one_error_line(inproc.run(name, *required, "--bogus"))
        assert line == f"error: --bogus: no such flag of {name} (invoke --help {name} lists them)", line
        tries += 1
        for flag, _ in value_flags(inproc, name):
            if flag[2:].replace("-", "_") in task.iterable or flag in required:  # repeatable, or given already
                continue
            line = one_error_line(inproc.run(name, *required, flag))
            assert line == f"error: {flag}: needs a value", line
            tries += 1
    line = one_error_line(inproc.run("no-such-task"))
    assert line == "error: no-such-task: no such task (invoke --list lists them)"
    count("invoke parse errors", tries + 1)


def test_the_issue_s_nonsense_values_are_refused_naming_flag_and_range(inproc, tmp_path):
    ws = str(tmp_path)
    cases = [
        (["parse", "--logs", "x.log", "--year", "-3"], "error: --year: must be an integer >= 1900"),
        (["parse", "--logs", "x.log", "--max-line-bytes", "-5"], "error: --max-line-bytes: must be an integer >= 16"),
        (["build-mscred", "--bucket-seconds", "0"], "error: --bucket-seconds: must be a number >= 1e-06"),
        (["build-mscred", "--bucket-seconds", "nan"], "error: --bucket-seconds: must be a number"),
        (["build-mscred", "--bucket-lines", "-3"], "error: --bucket-lines: must be an integer >= 1"),
        (["train-mscred", "--scales", "0,-1"], "error: --scales: must be comma-separated distinct integers"),
        (["train-mscred", "--steps", "0"], "error: --steps: must be an integer >= 1"),
        (["train-mscred", "--gap", "0"], "error: --gap: must be an integer >= 1"),
        (["train-deeplog", "--val-split", "1.5"], "error: --val-split: must be a number > 0 and < 1"),
        (["train-deeplog", "--val-split", "2"], "error: --val-split: must be a number > 0 and < 1"),
        (["train-deeplog", "--epochs", "0"], "error: --epochs: must be an integer >= 1"),
        (["train-deeplog", "--seq-len", "0"], "error: --seq-len: must be an integer >= 1"),
        (["train-deeplog", "--batch-size", "0"], "error: --batch-size: must be an integer >= 1"),
        (["train-deeplog", "--lr", "nan"], "error: --lr: must be a number > 0"),
        (["train-deeplog", "--hidden", "0"], "error: --hidden: must be an integer >= 1"),
        (["evaluate", "--threshold", "nan"], "error: --threshold: must be a number >= 0"),
        (["evaluate", "--threshold", "-1"], "error: --threshold: must be a number >= 0"),
    ]
    for args, start in cases:
        line = one_error_line(inproc.run(*args, "-w", ws))
        assert line.startswith(start), line
    count("nonsense values of the issue", len(cases))
    assert list(tmp_path.iterdir()) == []


def test_top_k_above_the_vocab_is_refused_before_training(inproc, tiny_models, tmp_path):
    ws, _ = tiny_models
    line = one_error_line(inproc.run("train-deeplog", "-w", str(ws), "--top-k", "100000",
                                     "--out", str(tmp_path / "d.pth")))
    assert line.startswith("error: --top-k: must be at most the number of keys")
    assert list(tmp_path.iterdir()) == []
    count("cross-flag ranges")


# --- files that are damaged, missing, or of the wrong kind --------------------------------------------

@pytest.fixture
def ws(tiny_models, tmp_path) -> Path:
    """A private copy of the tiny workspace (without its model directory)."""
    src, _ = tiny_models
    dst = tmp_path / "ws"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("models"))
    return dst


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def damaged_inputs(ws: Path, tmp: Path, log: Path) -> list[tuple[list[str], str]]:
    """(invoke args, the start of the expected line): one bad input each."""
    gz = gzip.compress(log.read_bytes())
    (tmp / "trunc.log.gz").write_bytes(gz[: len(gz) // 2])
    crc = bytearray(gz)
    crc[-6] ^= 0xFF
    (tmp / "crc.log.gz").write_bytes(bytes(crc))
    (tmp / "junk.log.gz").write_bytes(b"\x1f\x8b" + os.urandom(200))
    (tmp / "empty.pth").write_bytes(b"")
    (tmp / "junk.pth").write_bytes(os.urandom(300))
    (tmp / "deep.json").write_text(deep_json(100_000))
    (tmp / "deep_obj.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    (tmp / "binary.log").write_bytes(b"abc\x00def\n")
    (tmp / "latin1.log").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (tmp / "ids_vocab.json").write_text(json.dumps({"1": 0, "2": 1}))
    bad_parsers = {}
    parser = json.loads((ws / "parser.json").read_text())
    for key, value in (("masking", "not a list"), ("templates", "x"), ("drain", [1]), ("timestamp", 5),
                       ("masking", [{"regex_pattern": "(", "mask_with": "X"}]), ("templates", [1, 2])):
        folder = tmp / f"parser_{key}_{len(bad_parsers)}"
        folder.mkdir()
        shutil.copy(ws / "vocab.json", folder / "vocab.json")
        (folder / "parser.json").write_text(json.dumps({**parser, key: value}))
        bad_parsers[folder] = key
    (tmp / "deep_ws").mkdir()
    shutil.copy(ws / "vocab.json", tmp / "deep_ws" / "vocab.json")
    (tmp / "deep_ws" / "parser.json").write_text(deep_json(100_000))
    w, t = str(ws), str(tmp)
    cases = [
        (["parse", "--logs", f"{t}/trunc.log.gz", "--format", "zookeeper", "-w", w], f"error: {t}/trunc.log.gz: "),
        (["parse", "--logs", f"{t}/crc.log.gz", "--format", "zookeeper", "-w", w], f"error: {t}/crc.log.gz: "),
        (["parse", "--logs", f"{t}/junk.log.gz", "--format", "zookeeper", "-w", w], f"error: {t}/junk.log.gz: "),
        (["parse", "--logs", f"{t}/binary.log", "-w", w], f"error: {t}/binary.log: line 1 contains NUL"),
        (["parse", "--logs", f"{t}/latin1.log", "-w", w], f"error: {t}/latin1.log: line 1 is not valid UTF-8"),
        (["parse", "--logs", f"{t}/nope.log", "-w", w], f"error: {t}/nope.log: no such file"),
        (["parse", "--logs", t, "-w", w], f"error: {t}: is a directory"),
        (["parse", "--logs", str(log), "--format", "nonsense", "-w", w], "error: unknown format preset"),
        (["convert", "-w", w, "--deeplog-model", f"{t}/empty.pth", "--output-dir", f"{t}/out"],
         f"error: {t}/empty.pth: is empty"),
        (["convert", "-w", w, "--deeplog-model", f"{t}/junk.pth", "--output-dir", f"{t}/out"],
         f"error: {t}/junk.pth: not a readable checkpoint"),
        (["evaluate", "-w", w, "--model", f"{t}/empty.pth", "--parsed", f"{w}/parsed.parquet"],
         f"error: {t}/empty.pth: is empty"),
        (["train-deeplog", "-w", w, "--vocab", f"{t}/deep.json", "--out", f"{t}/d.pth"],
         f"error: {t}/deep.json: "),
        (["train-deeplog", "-w", w, "--vocab", f"{t}/deep_obj.json", "--out", f"{t}/d.pth"],
         f"error: {t}/deep_obj.json: "),
        (["train-deeplog", "-w", w, "--vocab", f"{t}/ids_vocab.json", "--out", f"{t}/d.pth"],
         f"error: {t}/ids_vocab.json: "),
        (["match", "--logs", str(log), "-w", f"{t}/deep_ws"], f"error: {t}/deep_ws/parser.json: "),
        (["match", "-w", w], "error: --logs: give at least one log file"),
        (["train-deeplog", "-w", w, "--sequences", f"{w}/parsed.parquet", "--out", f"{t}/d.pth"],
         f"error: {w}/parsed.parquet: "),
        (["build-mscred", "-w", w, "--parsed", f"{w}/vocab.json", "--out", f"{t}/c.parquet"],
         f"error: {w}/vocab.json: "),
        (["convert", "-w", w, "--output-dir", f"{w}/vocab.json"], f"error: {w}/vocab.json: exists and is not"),
        (["build-deeplog", "-w", f"{w}/vocab.json"], f"error: {w}/vocab.json: is not a directory"),
        (["parse", "--logs", str(log), "--format", "zookeeper", "-w", f"{w}/parsed.parquet/sub"],
         f"error: {w}/parsed.parquet: is not a directory"),
    ]
    cases += [(["match", "--logs", str(log), "-w", str(folder)], f"error: {folder}/parser.json: {key}")
              for folder, key in bad_parsers.items()]
    return cases


def test_damaged_and_wrong_files_are_one_line_and_change_nothing(inproc, ws, tmp_path, datasets):
    log = datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log"
    bad = tmp_path / "bad"
    bad.mkdir()
    cases = damaged_inputs(ws, bad, log)
    before, before_bad = snapshot(ws), snapshot(bad)
    for args, start in cases:
        outcome = inproc.run(*args)
        line = one_error_line(outcome, start)
        assert snapshot(ws) == before, (args, line)
        assert leftovers(tmp_path) == [], (args, leftovers(tmp_path))
    assert snapshot(bad) == before_bad
    count("damaged or wrong input files", len(cases))


def test_a_log_whose_name_is_not_utf8_is_parsed_and_named(inproc, ws, tmp_path, datasets):
    name = os.fsdecode(b"zoo\xff.log")
    shutil.copy(datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log", tmp_path / name)
    out = tmp_path / "parsed"
    ok = inproc.run("parse", "--logs", str(tmp_path / name), "--format", "zookeeper", "-w", str(out))
    assert ok.code == 0, ok.stderr
    import pandas as pd
    assert set(pd.read_parquet(out / "parsed.parquet")["source"]) == {"zoo\ufffd.log"}
    missing = inproc.run("parse", "--logs", str(tmp_path / os.fsdecode(b"gone\xfe.log")), "-w", str(out))
    assert one_error_line(missing).endswith("gone\ufffd.log: no such file")
    count("file names that are not UTF-8", 2)


# --- outputs: all or nothing ------------------------------------------------------------------------

def test_an_output_that_is_a_directory_is_refused_before_any_work_and_nothing_changes(inproc, ws, tmp_path,
                                                                                      datasets):
    log = str(datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log")
    w = str(ws)
    cases = []
    for name in ("parser.json", "templates.json", "drain_state.json", "parsed.parquet"):
        cases.append((["parse", "--logs", log, "--format", "zookeeper", "-w", w], ws / name))
    cases += [
        (["parse", "--logs", log, "--format", "zookeeper", "-w", w, "--parsed", str(tmp_path / "p")], tmp_path / "p"),
        (["build-deeplog", "-w", w, "--vocab", str(tmp_path / "v")], tmp_path / "v"),
        (["build-deeplog", "-w", w, "--sequences", str(tmp_path / "s")], tmp_path / "s"),
        (["build-mscred", "-w", w, "--bucket-lines", "20", "--out", str(tmp_path / "c")], tmp_path / "c"),
        (["match", "--logs", log, "-w", w, "--out", str(tmp_path / "m")], tmp_path / "m"),
        (["train-deeplog", "-w", w, "--out", str(tmp_path / "d")], tmp_path / "d"),
        (["train-mscred", "-w", w, "--out", str(tmp_path / "e")], tmp_path / "e"),
        (["evaluate", "-w", w, "--parsed", f"{w}/parsed.parquet", "--scores", str(tmp_path / "f")], tmp_path / "f"),
    ]
    (tmp_path / "ids.json").write_text(json.dumps({"1": 0}))
    cases.append((["fix-vocab", "--vocab", str(tmp_path / "ids.json"), "--parsed", f"{w}/parsed.parquet",
                   "--out", str(tmp_path / "g")], tmp_path / "g"))
    for args, blocked in cases:
        moved = None
        if blocked.exists():
            moved = blocked.with_name(blocked.name + ".real")
            blocked.rename(moved)
        blocked.mkdir()
        before = snapshot(ws)
        one_error_line(inproc.run(*args), f"error: {blocked}: is a directory")
        assert snapshot(ws) == before and leftovers(tmp_path) == [], args
        blocked.rmdir()
        if moved is not None:
            moved.rename(blocked)
    count("outputs that are directories", len(cases))


def test_a_rename_that_fails_midway_puts_every_earlier_output_back(tmp_path, monkeypatch):
    from alog_edge import fileio
    from alog_edge.errors import AlogError
    finals = [tmp_path / f"out{i}.json" for i in range(3)]
    for f in finals:
        f.write_text("old\n")
    real = os.replace
    calls = []

    def failing(src, dst, *a, **k):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(dst))
        return real(src, dst, *a, **k)
    with pytest.raises(AlogError, match="no output of this step was changed"):
        with fileio.AtomicOutputs() as out:
            for f in finals:
                out.write_json(f, {"new": True})
            monkeypatch.setattr(fileio.os, "replace", failing)
    monkeypatch.setattr(fileio.os, "replace", real)
    assert [f.read_text() for f in finals] == ["old\n"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [f.name for f in finals]
    count("a failed rename in a commit")


def _fsize_limited(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def test_a_full_disk_is_one_line_and_leaves_the_old_outputs(ws, tmp_path, datasets):
    log = str(datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log")
    before = snapshot(ws)
    tries = [["parse", "--logs", log, "--format", "zookeeper", "-w", str(ws)],  # AtomicOutputs
             ["convert", "-w", str(ws), "--output-dir", str(ws / "models")]]  # AtomicDir
    for args in tries:
        outcome = invoke_process(*args, preexec_fn=_fsize_limited(30_000), env=env_with_trace_dir(tmp_path))
        line = ends_in_one_error_line(outcome)
        assert "File too large" in line or "No space left" in line, line
        assert snapshot(ws) == before and leftovers(ws) == [], args
    count("a full disk (RLIMIT_FSIZE)", len(tries))


def test_a_full_or_closed_stdout_is_one_line_or_silence(ws, tmp_path, datasets):
    log = str(datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log")
    args = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "match", "--logs", log, "-w", str(ws)]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(args, stdout=full, stderr=subprocess.PIPE, text=True, timeout=TRY_SECONDS)
    assert proc.returncode == 1 and proc.stderr.strip() == "error: stdout: No space left on device", proc.stderr
    for extra in (["--help", "train-mscred"], ["--list"]):
        with open("/dev/full", "w") as full:
            helped = subprocess.run(args[:5] + extra, stdout=full, stderr=subprocess.PIPE, text=True,
                                    timeout=TRY_SECONDS)
        assert helped.returncode == 1 and helped.stderr == "error: stdout: No space left on device\n", helped.stderr
    for extra in (["--list"], args[5:]):
        closed = subprocess.run(args[:5] + extra, stderr=subprocess.PIPE, text=True, timeout=TRY_SECONDS,
                                preexec_fn=lambda: os.close(1))  # `>&-`
        assert closed.returncode == 1 and closed.stderr == "error: stdout: Bad file descriptor\n", closed.stderr
    piped = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    piped.stdout.read(100)
    piped.stdout.close()  # as `| head -c 100` does
    err = piped.stderr.read().decode()
    assert piped.wait(timeout=TRY_SECONDS) == 1 and err.strip() == "", err
    count("a full or closed stdout", 6)


def test_sigterm_and_sigint_midway_leave_old_outputs_and_no_temp_files(ws, tmp_path, datasets):
    """Signals at increasing delays through parse (a 200k-line log) and convert: every run ends either
    complete or with the old outputs exactly, never a temp file."""
    big = tmp_path / "big.log"
    src = (datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log").read_text()
    big.write_text(src * 100)
    base = [sys.executable, "-m", "invoke", "--search-root", str(REPO)]
    parse = ["parse", "--logs", str(big), "--format", "zookeeper", "-w", str(ws)]
    convert = ["convert", "-w", str(ws), "--output-dir", str(ws / "models")]
    results = []
    for args, delay, sig in ((parse, 2.0, signal.SIGTERM), (parse, 4.0, signal.SIGINT),
                             (convert, 3.0, signal.SIGTERM), (convert, 5.0, signal.SIGTERM)):
        folder = ws
        if True:
            before = snapshot(folder)
            proc = subprocess.Popen(base + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=env_with_trace_dir(tmp_path))
            time.sleep(delay)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=TRY_SECONDS)
            assert "Traceback" not in err, err[-2000:]
            assert leftovers(folder) == [], (args, delay, leftovers(folder))
            if proc.returncode == 0 or (proc.returncode == -sig and "error:" not in err):
                # -sig: it came after the outputs were in place, while Python was exiting
                results.append("completed")
                continue
            assert proc.returncode == 128 + sig, (proc.returncode, err)
            line = ends_in_one_error_line(Outcome(proc.returncode, "", err))
            assert line == f"error: interrupted by {sig.name}; nothing was written", err
            assert snapshot(folder) == before, (args, delay)
            results.append("interrupted")
    assert "interrupted" in results, results
    count("SIGTERM/SIGINT midway", len(results))


# --- model directories: convert writes only what the device accepts ---------------------------------

def _checkpoint_with(src: Path, dst: Path, **changes) -> Path:
    payload = torch.load(src, map_location="cpu", weights_only=True)
    payload.update(changes)
    torch.save(payload, dst)
    return dst


def test_convert_refuses_a_checkpoint_the_device_would_refuse_and_keeps_the_old_directory(inproc, ws, tmp_path):
    out = tmp_path / "models"
    ok = inproc.run("convert", "-w", str(ws), "--output-dir", str(out))
    assert ok.code == 0, ok.stderr
    before = snapshot(out)
    cases = [
        ("mscred", {"threshold": math.nan}, "threshold is NaN, which is not JSON"),
        ("mscred", {"threshold": math.inf}, "threshold is Infinity"),
        ("deeplog", {"top_k": 0}, "top_k is 0, not an integer in 1.."),
        ("deeplog", {"top_k": -5}, "top_k is -5"),
        ("deeplog", {"seen_keys": [10 ** 6]}, "seen_keys[0] is not a key"),
    ]
    for kind, change, fragment in cases:
        ckpt = _checkpoint_with(ws / f"{kind}.pth", tmp_path / f"bad_{kind}.pth", **change)
        line = one_error_line(inproc.run("convert", "-w", str(ws), f"--{kind}-model", str(ckpt),
                                         "--output-dir", str(out)), f"error: {ckpt}: ")
        assert fragment in line and "was not converted" in line, line
        assert snapshot(out) == before and leftovers(tmp_path) == [], change
    count("checkpoints whose model directory the device would refuse", len(cases))


def test_an_unexpected_exception_is_one_line_naming_its_trace_file(inproc, ws, tmp_path, monkeypatch):
    from alog_edge.data import dataset
    monkeypatch.setenv("ALOG_EDGE_TRACE_DIR", str(tmp_path / "traces"))

    def bug(*args, **kwargs):
        return {}["a key that is not there"]
    monkeypatch.setattr(dataset, "build_deeplog_inputs", bug)
    outcome = inproc.run("build-deeplog", "-w", str(ws))
    assert outcome.code == 1 and len(outcome.lines) == 1 and "Traceback" not in outcome.stderr, outcome.stderr
    line = outcome.lines[0]
    assert line.startswith("error: internal error in build-deeplog: KeyError:"), line
    trace = Path(line.rsplit("the full trace is in ", 1)[1])
    assert trace.parent == tmp_path / "traces" and "Traceback" in trace.read_text()
    assert "in bug" in trace.read_text()
    count("unexpected exceptions (bugs)")


def test_a_catastrophic_mask_ends_within_a_timeout(ws, tmp_path, datasets):
    """`(a+)+$` first among the masks and a line of 30 `a` and `!`: one line, or the line keyed unknown."""
    parser = json.loads((ws / "parser.json").read_text())
    parser["masking"] = [{"regex_pattern": "(a+)+$", "mask_with": "A"}] + parser["masking"]
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    shutil.copy(ws / "vocab.json", hostile / "vocab.json")
    (hostile / "parser.json").write_text(json.dumps(parser))
    first = (datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log").read_text()
    header = first.splitlines()[0].rsplit(" - ", 1)[0]
    log = tmp_path / "h.log"
    log.write_text(f"{header} - {'a' * 30}!\n")
    count("a catastrophic mask (parser branch)")
    outcome = invoke_process("match", "--logs", str(log), "-w", str(hostile), timeout=10)
    if outcome.code != 0:
        one_error_line(outcome)
    else:
        assert json.loads(outcome.stdout.splitlines()[0])["template"] is None, outcome.stdout
