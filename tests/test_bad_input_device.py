"""Bad input on the device side (the real alog-edge binary on real onnxruntime), and the one rule set
convert and the device share: the same mutated meta.json/golden.json files go to
alog_edge.formats.modeldir_check and to the binary, and both must give the same verdict."""
from __future__ import annotations

import copy
import gzip
import json
import math
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from alog_edge.export import convert as export
from alog_edge.formats import modeldir_check
from alog_edge.errors import AlogError
from badinput_util import TRY_SECONDS

TRIES: dict[str, int] = {}


def count(kind: str, n: int = 1) -> None:
    TRIES[kind] = TRIES.get(kind, 0) + n


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    for kind, n in sorted(TRIES.items()):
        print(f"\nbad input (device): {kind}: {n} tries", file=__import__("sys").stderr)


@pytest.fixture(scope="module")
def binary(runtime_x86_64: Path) -> Path:
    return runtime_x86_64 / "bin" / "alog-edge"


def run(binary: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=TRY_SECONDS,
                          errors="replace", **kwargs)


def one_error_line(proc: subprocess.CompletedProcess[str], starts: str = "error: ") -> str:
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode != 0, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(starts), proc.stderr
    assert "\x1b[" not in proc.stderr, proc.stderr  # onnxruntime's coloured log lines
    return lines[0]


@pytest.fixture
def model_dir(tiny_models, tmp_path) -> Path:
    _, src = tiny_models
    dst = tmp_path / "models"
    shutil.copytree(src, dst)
    return dst


# --- convert writes only what the device loads -------------------------------------------------------

def test_every_model_directory_convert_writes_passes_selftest(binary, tiny_models, tmp_path):
    ws, both = tiny_models
    dirs = [both]
    for kind in ("deeplog", "mscred"):
        out = tmp_path / kind
        export.convert(export.ConvertRequest(vocab=ws / "vocab.json", parser=ws / "parser.json", output_dir=out,
                                             **{f"{kind}_model": ws / f"{kind}.pth"}))
        dirs.append(out)
    for d in dirs:
        proc = run(binary, "selftest", str(d))
        assert proc.returncode == 0, proc.stderr
        modeldir_check.check_model_dir(d)
    count("model directories convert wrote, selftest passed", len(dirs))


def _meta_mutations(n: int) -> list[tuple[str, str, object]]:
    """(file, key path, new value); `...` deletes the key."""
    d, m = "deeplog.onnx.meta.json", "mscred.onnx.meta.json"
    out: list[tuple[str, str, object]] = []
    for v in (0, -1, 1.5, "9", None, ..., 2 ** 41, True, 1e3, n + 5):
        out.append((d, "top_k", v))
    for v in (0, 65537, 1e3, "10", ..., -2, 65536):
        out.append((d, "seq_len", v))
    for v in (n, n + 2, ..., "x", float(n + 1)):
        out.append((d, "vocab_size", v))
    for v in (n - 1, n + 1, ..., -1):
        out.append((d, "unk_index", v))
    for v in ("x", [n + 1], [-1], [1.0], [True], [], ...):
        out.append((d, "seen_keys", v))
    for v in ("x", 3, [1], [[n - 1], [0]], [[n]], [[-1]], [[1.5]], [[True]], [], [[]], None, ...):
        out.append((d, "key_sets", v))
    for v in ("mscred", 5, ...):
        out.append((d, "model_type", v))
    for v in (math.nan, math.inf, -math.inf, "1", None, 1e308, -5.0, ...):
        out.append((m, "threshold", v))
    for v in (0, 65537, ..., 3.5):
        out.append((m, "window_size", v))
    for v in (0, ..., 1):
        out.append((m, "gap", v))
    for v in (..., "x", []):
        out.append((m, "counts", v))
    for v in ("yes", ..., 1):
        out.append((m, "counts.per_host", v))
    for v in (0, 1e-7, 1e-6, "10", 10.0, 2e9, math.nan):
        out.append((m, "counts.bucket_seconds", v))
    for v in (0, -3, 1.5, ..., 10 ** 12):
        out.append((m, "counts.bucket_lines", v))
    for v in (n, n + 2):
        out.append((m, "feature_dim", v))
    out += [("golden.json", "tolerance", v) for v in (-1, "x", None, ..., math.inf, 0, 1e-3)]
    out += [("golden.json", "cases", v) for v in ([], "x", ..., [1], [{"model": "deeplog.onnx"}])]
    return out


def _apply(doc: dict, path: str, value: object) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return doc


def test_convert_s_check_and_the_device_agree_on_every_mutated_meta_and_golden(binary, model_dir):
    n = len(json.loads((model_dir / "vocab.json").read_text()))
    originals = {f: (model_dir / f).read_text() for f in
                 ("deeplog.onnx.meta.json", "mscred.onnx.meta.json", "golden.json")}
    disagreements, refused = [], 0
    for name, key, value in _meta_mutations(n):
        for f, text in originals.items():
            (model_dir / f).write_text(text)
        doc = _apply(json.loads(originals[name]), key, value)
        (model_dir / name).write_text(json.dumps(doc))  # NaN and Infinity written as Python writes them
        try:
            modeldir_check.check_model_dir(model_dir)
            python_ok, why = True, ""
        except AlogError as exc:
            python_ok, why = False, str(exc)
        proc = run(binary, "selftest", str(model_dir))
        device_ok = proc.returncode in (0, 4)  # 4: loaded and replayed, an output differs
        if device_ok != python_ok:
            disagreements.append((name, key, value, why, proc.stderr.strip()[-300:]))
        if not device_ok:
            one_error_line(proc)
            refused += 1
    assert not disagreements, disagreements
    assert refused > 60
    count("mutated meta.json/golden.json, both sides agree", len(_meta_mutations(n)))


# --- the binary's own bad input -----------------------------------------------------------------------

def _value_options(binary: Path, command: str) -> list[str]:
    helped = run(binary, command, "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage:"), (command, helped.stderr)
    return re.findall(r"^\s+(--[a-z-]+) [A-Z]+\s", helped.stdout, re.M)


def test_every_option_of_every_command_refuses_bad_values_in_one_line(binary, model_dir, tiny_models):
    log = tiny_models[0] / "parsed.parquet"  # any file: the values are refused before it is read
    tries = 0
    for command in ("run", "score", "selftest", "bench", "match"):
        for option in _value_options(binary, command):
            for bad in ("ten", "", "nan", "-1e999", "1e999", "-5"):
                if option == "--templates" and bad in ("ten", "-5"):
                    continue  # a file name: a missing one is refused below, like the others
                args = [command, option, bad, str(model_dir)] + ([str(log)] if command in ("bench",) else [])
                proc = run(binary, *args)
                one_error_line(proc)
                tries += 1
    count("numeric options out of range or not numbers", tries)
    assert tries > 40


def test_help_of_every_command_is_help(binary):
    for command in ("info", "run", "score", "selftest", "bench", "match"):
        for flag in ("--help", "-h"):
            proc = run(binary, command, flag)
            assert proc.returncode == 0 and proc.stdout.startswith(f"usage: alog-edge {command}"), proc.stderr
            assert proc.stderr == ""
    count("--help of every command", 12)


def test_a_closed_stdin_is_an_error_not_a_file_onnxruntime_opened(binary, model_dir, tmp_path):
    for args in (["run", str(model_dir), "-"], ["run", str(model_dir)], ["score", str(model_dir), "-"],
                 ["match", str(model_dir), "-"]):
        proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=TRY_SECONDS,
                              stdin=None, preexec_fn=lambda: os.close(0))
        assert one_error_line(proc).startswith("error: <stdin>: "), proc.stderr
    count("a closed stdin", 4)


def test_a_full_stdout_is_one_line(binary, model_dir, datasets):
    log = datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log"
    with open("/dev/full", "w") as full:
        for command in ("run", "match"):
            proc = subprocess.run([str(binary), command, "--all", str(model_dir), str(log)] if command == "run"
                                  else [str(binary), command, str(model_dir), str(log)], stdout=full,
                                  stderr=subprocess.PIPE, text=True, timeout=TRY_SECONDS)
            assert "No space left on device" in one_error_line(proc), proc.stderr
    count("a full stdout", 2)


def test_onnxruntime_s_log_never_precedes_the_error_line(binary, model_dir):
    golden = json.loads((model_dir / "golden.json").read_text())
    case = next(c for c in golden["cases"] if c["model"] == "deeplog.onnx")
    tensor = next(iter(case["inputs"].values()))
    tensor["data"][0] = 1e12
    (model_dir / "golden.json").write_text(json.dumps(golden))
    line = one_error_line(run(binary, "selftest", str(model_dir)))
    assert "out of data bounds" in line or "index" in line, line
    count("a golden input onnxruntime refuses")


def test_damaged_model_files_are_one_line(binary, model_dir, tmp_path):
    tries = 0
    cases = {
        "deeplog.onnx.meta.json": ["", "[" * 100_000 + "]" * 100_000, "{\"a\": NaN}", "\xff\xfe", "{} {}"],
        "vocab.json": ["", "[]", json.dumps({str(i + 1): i for i in range(5)}), json.dumps({"a": 0})],
        "golden.json": ["", "{" * 50_000],
        "deeplog.onnx": ["", "not onnx"],
        "parser.json": ["", "{\"masking\": \"x\"}"],
    }
    for name, texts in cases.items():
        original = (model_dir / name).read_bytes()
        for text in texts:
            (model_dir / name).write_bytes(text.encode("utf-8", "surrogateescape") if text != "\xff\xfe"
                                           else b"\xff\xfe")
            proc = run(binary, "selftest", str(model_dir))
            line = one_error_line(proc, f"error: {model_dir}")
            if name == "vocab.json" and "1" in text:
                assert "template_id" in line and "fix-vocab" in line, line
            tries += 1
        (model_dir / name).write_bytes(original)
    empty = tmp_path / "zero.pth"
    empty.write_bytes(b"")
    (model_dir / "golden.json").write_text(json.dumps({"tolerance": -1, "cases": [1]}))
    line = one_error_line(run(binary, "selftest", str(model_dir)))
    assert "\"tolerance\" is -1, not a number >= 0" in line, line
    count("damaged model directory files", tries + 1)


def test_bad_logs_on_the_device_are_one_line(binary, model_dir, tmp_path, datasets):
    log = datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log"
    gz = gzip.compress(log.read_bytes())
    (tmp_path / "trunc.log.gz").write_bytes(gz[: len(gz) // 2])
    odd = tmp_path / os.fsdecode(b"zoo\xff.log")
    shutil.copy(log, odd)
    proc = run(binary, "run", str(model_dir), str(tmp_path / "trunc.log.gz"))
    assert "gzip" in one_error_line(proc), proc.stderr
    assert run(binary, "run", str(model_dir), str(odd)).returncode == 0
    one_error_line(run(binary, "run", str(model_dir), str(tmp_path / os.fsdecode(b"gone\xfe.log"))))
    one_error_line(run(binary, "run", str(model_dir), str(tmp_path)))
    count("bad logs given to run", 4)


def test_follow_s_summary_counts_the_lines_of_every_rotated_file(binary, model_dir, tmp_path, datasets):
    log = datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log"
    lines = log.read_text().splitlines(keepends=True)
    path = tmp_path / "live.log"
    path.write_text("".join(lines[:100]))
    proc = subprocess.Popen([str(binary), "run", "--follow", "--no-mscred", "--max-idle", "2", str(model_dir),
                             str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for i, (start, stop) in enumerate(((100, 150), (150, 180))):
            _wait_for(lambda: proc.poll() is None)
            time.sleep(0.5)
            os.rename(path, tmp_path / f"live.log.{i + 1}")
            path.write_text("".join(lines[start:stop]))
        _, err = proc.communicate(timeout=TRY_SECONDS)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert err.count("rotated") == 2, err
    assert "run: 180 lines" in err.splitlines()[-1], err
    count("follow through two rotations")


def _wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
