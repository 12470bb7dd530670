"""Parity of the C runtime's `alog-edge match` with the Python parser (`invoke match`), no mocks.

Python is the reference: every line of the six LogHub 2k systems (mined with Drain3 by
`parse.parse`, keyed by `parse.match_jsonl` with the model directory's parser.json and C-form
vocab.json) must get the same JSON line from the built binary, byte for byte: on x86_64, on
aarch64 under qemu, in the "templates" mode (HDFS_templates.csv), and on synthetic files full of
tricky lines (Unicode whitespace, tabs, CRLF, lines outside the format, blank lines, megabyte
lines, masks at the edges). `--explain` exposes the intermediate steps (content, masked content,
token count, cluster id), compared with what Drain3 computes, and a probe of the regex dialect
runs every code point through \\w, \\s, \\d, \\b and friends in both engines.

Input that Python refuses (NUL bytes, invalid UTF-8, lines above 1 MiB) gets an error record and
exit status 3 from the runtime, never a crash; a bad model directory one error line and status 1.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from alog_edge.data import bounded, parse

from alog_edge.formats import parser_json

from alog_edge.data import drain
from alog_edge.formats import logformat, vocab
from alog_edge.toolchain import build as native
from alog_edge.evaluation.loghub import LOGHUB_FORMATS
from conftest import DATASETS, REPO, invoke

LOGHUB = DATASETS / "loghub-2k"
HDFS_TEMPLATES = DATASETS / "hdfs-sessions" / "HDFS_templates.csv"
SYSTEMS = {"hdfs": "HDFS", "bgl": "BGL", "hadoop": "Hadoop", "zookeeper": "Zookeeper",
           "openstack": "OpenStack", "linux": "Linux"}
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3


def loghub_log(system: str) -> Path:
    name = SYSTEMS[system]
    return LOGHUB / name / f"{name}_2k.log"


# --- building model directories and running both sides -----------------------------------------

def make_model(logs: list[Path], fmt: logformat.LogFormat, out: Path,
               template_file: Path | None = None) -> Path:
    """Mine (or match a template list) with Python, then write a model directory as convert does:
    parser.json as parse wrote it and the vocab of the parsed templates in C form."""
    ws = out / "workspace"
    ws.mkdir(parents=True, exist_ok=True)
    parse.parse(logs, fmt, ws, template_file=template_file)
    frame = pd.read_parquet(ws / "parsed.parquet")
    model = out / "model"
    model.mkdir(exist_ok=True)
    shutil.copy(ws / "parser.json", model / "parser.json")
    (model / "vocab.json").write_text(
        json.dumps(vocab.build(frame["template"]).c_form(), ensure_ascii=False), encoding="utf-8")
    return model


def python_match(model: Path, log: Path) -> list[str]:
    """What `invoke match --model-dir MODEL --logs LOG` prints."""
    return list(parse.match_jsonl([log], model / "parser.json",
                                  vocab.load_c_form(model / "vocab.json")))


def run_binary(prefix: Path, *args: str, target: str = "x86_64", stdin: bytes | None = None,
               timeout: int = 600) -> subprocess.CompletedProcess[bytes]:
    """Run an installed alog-edge (aarch64: under qemu), bytes in and out."""
    cmd = [str(prefix / "bin" / "alog-edge"), *args]
    if target == "aarch64":
        cmd = native.qemu_command(REPO) + cmd
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    return subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=timeout)


def jsonl(data: bytes) -> list[str]:
    """JSON lines split at "\n" only: str.splitlines() would also split at the U+2028, \x1c,
    \x85 ... that JSON strings hold unescaped (json.dumps(ensure_ascii=False) writes them raw)."""
    text = data.decode("utf-8")
    assert text == "" or text.endswith("\n"), "the output ends with a newline"
    return text.split("\n")[:-1]


def c_match(prefix: Path, model: Path, log: Path, *, target: str = "x86_64",
            explain: bool = False) -> list[str]:
    args = ["match", *(["--explain"] if explain else []), str(model), str(log)]
    result = run_binary(prefix, *args, target=target)
    assert result.returncode == EXIT_OK, result.stderr.decode(errors="replace")
    return jsonl(result.stdout)


def assert_same_lines(python: list[str], c: list[str]) -> None:
    """Every line equal; on a difference, show the first few."""
    differ = [(p, q) for p, q in zip(python, c) if p != q]
    shown = "\n".join(f"  python: {p[:300]}\n  c:      {q[:300]}" for p, q in differ[:5])
    assert len(python) == len(c) and not differ, \
        f"{len(differ)} of {len(python)} lines differ ({len(c)} from C):\n{shown}"


def explain_reference(model: Path, log: Path) -> list[dict]:
    """The intermediate steps as Python computes them: split_lines' content, the TemplateMiner's
    masker, Drain3's tokens and match(content, "always")."""
    parser = parser_json.load_parser(model / "parser.json")
    fmt = parser_json.format_from_parser(parser)
    rec = parse.split_lines([log], fmt, logformat.MAX_LINE_BYTES)
    regex = re.compile(fmt.regex)
    matched = {n: regex.match(t) is not None for n, t in logformat.read_lines(log) if t.strip()}
    miner = drain.matcher_from_parser(parser, model / "parser.json")
    out = []
    for line_no, content in zip(rec.line_no, rec.content):
        masked = miner.masker.mask(content)
        cluster = miner.match(content, full_search_strategy="always")
        out.append({"line_no": line_no, "cluster_id": cluster.cluster_id if cluster else 0,
                    "format_matched": matched[line_no], "content": content, "masked": masked,
                    "tokens": len(miner.drain.get_content_as_tokens(masked))})
    return out


# --- fixtures --------------------------------------------------------------------------------

# The session's builds (conftest.py), under this module's short names.
@pytest.fixture(scope="module")
def x86_64(runtime_x86_64: Path) -> Path:
    return runtime_x86_64


@pytest.fixture(scope="module")
def aarch64(runtime_aarch64: Path) -> Path:
    return runtime_aarch64


@pytest.fixture(scope="module")
def x86_64_asan(runtime_x86_64_asan: Path) -> Path:
    return runtime_x86_64_asan


@pytest.fixture(scope="module")
def loghub_models(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> dict[str, Path]:
    """A model directory per LogHub system, mined with its preset (built on first use)."""
    root = tmp_path_factory.mktemp("loghub")

    class Models(dict):
        def __missing__(self, system: str) -> Path:
            self[system] = make_model([loghub_log(system)], logformat.PRESETS[system],
                                      root / system)
            return self[system]

    return Models()


@pytest.fixture(scope="module")
def generic_models(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> dict[str, Path]:
    """A model directory per LogHub system, mined with the generic default from its format string."""
    root = tmp_path_factory.mktemp("generic")

    class Models(dict):
        def __missing__(self, system: str) -> Path:
            fmt = logformat.resolve(None, LOGHUB_FORMATS[SYSTEMS[system]])
            self[system] = make_model([loghub_log(system)], fmt, root / system)
            return self[system]

    return Models()


# --- the six LogHub systems ------------------------------------------------------------------

@pytest.mark.parametrize("system", list(SYSTEMS))
def test_match_agrees_with_python_on_every_line_with_the_generic_default(
        system: str, x86_64: Path, generic_models: dict[str, Path]) -> None:
    model, log = generic_models[system], loghub_log(system)
    parser = json.loads((model / "parser.json").read_text())
    assert parser["drain"]["refine"] and parser["masking"][0]["mask_with"] == "URL"
    python = python_match(model, log)
    assert_same_lines(python, c_match(x86_64, model, log))
    reference = explain_reference(model, log)
    got = [json.loads(line) for line in c_match(x86_64, model, log, explain=True)]
    keys = ("line_no", "cluster_id", "format_matched", "content", "masked", "tokens")
    assert [{k: r[k] for k in keys} for r in got] == reference
    assert all(json.loads(line)["template"] is not None for line in python)


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_match_agrees_with_python_with_the_generic_default_on_aarch64_under_qemu(
        system: str, aarch64: Path, generic_models: dict[str, Path]) -> None:
    model, log = generic_models[system], loghub_log(system)
    assert_same_lines(python_match(model, log), c_match(aarch64, model, log, target="aarch64"))

@pytest.mark.parametrize("system", list(SYSTEMS))
def test_match_agrees_with_python_on_every_line_of_each_loghub_system(
        system: str, x86_64: Path, loghub_models: dict[str, Path]) -> None:
    model, log = loghub_models[system], loghub_log(system)
    python = python_match(model, log)
    c = c_match(x86_64, model, log)
    assert len(python) == 2000
    assert_same_lines(python, c)
    records = [json.loads(line) for line in c]
    known = sum(r["template"] is not None for r in records)
    assert known == 2000, "every line of the mined file keys to a known template"
    assert len({r["index"] for r in records}) > 5


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_explain_shows_the_content_masks_tokens_and_cluster_drain3_computes(
        system: str, x86_64: Path, loghub_models: dict[str, Path]) -> None:
    model, log = loghub_models[system], loghub_log(system)
    reference = explain_reference(model, log)
    got = [json.loads(line) for line in c_match(x86_64, model, log, explain=True)]
    keys = ("line_no", "cluster_id", "format_matched", "content", "masked", "tokens")
    assert [{k: r[k] for k in keys} for r in got] == reference


@pytest.mark.parametrize("system", ["hdfs", "openstack", "linux"])
def test_match_agrees_with_python_on_aarch64_under_qemu(
        system: str, aarch64: Path, loghub_models: dict[str, Path]) -> None:
    model, log = loghub_models[system], loghub_log(system)
    assert_same_lines(python_match(model, log), c_match(aarch64, model, log, target="aarch64"))


def test_invoke_match_prints_what_the_runtime_prints(
        x86_64: Path, loghub_models: dict[str, Path]) -> None:
    """The task itself, run as a user types it (the other tests call match_jsonl in-process)."""
    model, log = loghub_models["zookeeper"], loghub_log("zookeeper")
    result = invoke("match", "--model-dir", str(model), "--logs", str(log))
    assert result.returncode == 0, result.stderr
    assert_same_lines(result.stdout.split("\n")[:-1], c_match(x86_64, model, log))


def test_match_agrees_with_python_in_templates_mode_on_hdfs(
        x86_64: Path, tmp_path: Path, datasets: Path) -> None:
    log = loghub_log("hdfs")
    model = make_model([log], logformat.PRESETS["hdfs"], tmp_path, template_file=HDFS_TEMPLATES)
    assert json.loads((model / "parser.json").read_text())["mode"] == "templates"
    python = python_match(model, log)
    assert_same_lines(python, c_match(x86_64, model, log))
    explained = [json.loads(line) for line in c_match(x86_64, model, log, explain=True)]
    assert all(r["masked"] == r["content"] for r in explained), "no masks in templates mode"
    # Lines matched by templates mode keep their own content: check that lines of another
    # system (no HDFS template fits most of them) agree as well, unknown or not.
    other = loghub_log("hadoop")
    assert_same_lines(python_match(model, other), c_match(x86_64, model, other))


# --- synthetic tricky lines ------------------------------------------------------------------

CONTENTS = [
    "Accepted password for root from 10.0.0.1 port 22 ssh2",
    "Accepted password for bob from 192.168.10.254 port 50022 ssh2",
    "10.0.0.1 connected",                          # a mask at the start of the content
    "connection from 10.0.0.1",                    # ... at its end
    "42",                                          # the whole content is one mask
    "0x1F",
    "/var/log/syslog rotated",
    "fetched https://example.com/a?b=c",
    "id 4f2a9c1e-77b1-4c55-9a3e-2b8f0c9d1e6a done",
    "mac aa:bb:cc:dd:ee:ff up",
    "size 10 MB in 5ms, then 1.5 s or 1.5s",
    "checksum deadbeef1234 bad; host node-1.lan ok",
    "temp=71.5 fan=2400 x1 1x v2.0.1",
    "value -12 and +7 and 1,000,000 and 3.14.15",
    "caf\u00e942 x42 \u0663\u0664\u0665 \u216b 12",   # Arabic-Indic digits are \d, U+216B is not
    "tab\tseparated\ttokens 3",
    "ideographic\u3000space\u00a0nbsp\u2028ls\u2029ps\u0085nel 4",
    "info\x1csep\x1dsep\x1esep\x1fsep 5",          # whitespace for Python, not for PCRE2's \s
    "mongolian\u180evowel 6 zero\u200bwidth 7",    # not whitespace for Python
    "vt\x0bff\x0ccr\rinside 8",
    "emoji \U0001F600 9 ",
    "<*> literal wildcard 10 <NUM>",
    "trailing spaces   ",
    "  leading spaces",
    "e\u0301 combining 11 \u212a kelvin",
    "quote \" backslash \\ and \x01 control \x7f",
    "[12345.678901] eth0: link up",
    "(root) CMD (/usr/bin/true --quiet)",
]


def syslog_line(content: str, i: int) -> str:
    return f"Mar {3 + i % 7:>2} 10:{i % 60:02d}:{(7 * i) % 60:02d} edge-{i % 3:02d} app[{300 + i}]: " \
           f"{content}"


def demo_line(content: str, i: int) -> str:
    return f"2024-03-{3 + i % 7:02d}T10:{i % 60:02d}:{(7 * i) % 60:02d}.{i:03d}Z edge-{i % 3:02d} " \
           f"app[{300 + i}]: {('INFO', 'WARN', 'ERROR')[i % 3]} {content}"


def tricky_file(path: Path, preset: str, variant: int) -> Path:
    """Lines for a preset: every content in several variants, plus what breaks naive matchers.
    variant 0 is the training file, 1 a file with new values and new lines."""
    make = syslog_line if preset == "syslog" else demo_line
    lines: list[str] = []
    for i, content in enumerate(CONTENTS * 3):
        if variant:
            content = re.sub(r"\d", lambda m: str((int(m.group()) + variant + i) % 10), content)
        lines.append(make(content, i + 13 * variant))
    if preset == "syslog":
        lines += [
            "Mar\t3\t10:00:01\tedge-01\tkernel:\tOut of memory: Killed process 4242 (worker)",
            "Mar\x1c3 10:00:02 edge-01 kernel:\x1fOut of memory: Killed process 17 (a)",
            "Mar\u180e3 10:00:03 edge-01 kernel: the format does not fit (U+180E)",
            "Mar  3 10:00:04 edge-01 kernel: ",          # empty content
            "Mar  3 10:00:05 edge-01 kernel:  \u3000",  # whitespace-only content
        ]
    else:
        lines += [
            "2024-03-03T10:00:01Z\tedge-01\tapp[1]:\tINFO\ttabs between the fields 1",
            "2024-03-03T10:00:02Z edge-01 app[1]: INFO",   # no content: does not fit
            "2024-03-03T10:00:03Z edge-01 app: INFO no pid does not fit",
        ]
    lines += [
        "no format here 123", "Mar 3", ": colon first 5", "   indented line 6",
        "", "   ", "\t", "\u3000\u2003", "\x1c",     # blank for Python (skipped, still counted)
        "cr line\r", "two crs\r\r",                  # written with \r\n below: "\r\r\r\n"
        "[" + "]" * 10, "\\ backslash only", '"quoted"',
    ]
    # Long lines: many tokens, masks everywhere, and one line of exactly 1 MiB.
    lines.append(make(" ".join(f"w{k} {k} 10.0.{k % 256}.1" for k in range(20000)), 1))
    lines.append(make("/a" * 100000 + " " + "x" * 100000, 2))
    head = make("", 3)
    limit = logformat.MAX_LINE_BYTES - len(head.encode()) - (variant % 2)
    lines.append(head + ("1 22 333 " * (limit // 9 + 1))[:limit])
    # Every fifth line ends with "\r\n", but not the last: its "\r" would count for the limit.
    data = "".join(line + ("\r\n" if k % 5 == 0 and k < len(lines) - 1 else "\n")
                   for k, line in enumerate(lines))
    path.write_bytes(data.encode("utf-8")[: -1 if variant else None])  # variant 1: no final \n
    return path


@pytest.mark.parametrize("preset", ["syslog", "demo"])
def test_match_agrees_with_python_on_tricky_lines(preset: str, x86_64: Path,
                                                  tmp_path: Path) -> None:
    train = tricky_file(tmp_path / "train.log", preset, 0)
    new = tricky_file(tmp_path / "new.log", preset, 1)
    model = make_model([train], logformat.PRESETS[preset], tmp_path)
    for log in (train, new):
        python = python_match(model, log)
        assert_same_lines(python, c_match(x86_64, model, log))
        reference = explain_reference(model, log)
        got = [json.loads(line) for line in c_match(x86_64, model, log, explain=True)]
        keys = ("line_no", "cluster_id", "format_matched", "content", "masked", "tokens")
        assert [{k: r[k] for k in keys} for r in got] == reference
    records = [json.loads(line) for line in python]
    assert any(r["template"] is None for r in records), "the new file has unknown lines"
    assert sum(r["template"] is not None for r in records) > len(records) // 2
    assert max(r["line_no"] for r in records) > len(records), "blank lines still count"


def test_match_agrees_with_python_on_the_demo_generators_logs(x86_64: Path,
                                                              tmp_path: Path) -> None:
    """The project's own demo data: the demo preset with its eleven default masks."""
    from alog_edge.data import demo_data

    files = demo_data.generate(tmp_path / "demo", seed=11, hosts=4, train_minutes=60,
                               test_minutes=30)
    model = make_model([files.train_log], logformat.PRESETS["demo"], tmp_path)
    python = python_match(model, files.test_log)
    assert len(python) > 5000
    assert_same_lines(python, c_match(x86_64, model, files.test_log))


def test_match_agrees_with_python_with_extra_delimiters(x86_64: Path, tmp_path: Path) -> None:
    fmt = replace(logformat.PRESETS["syslog"], extra_delimiters=("=", ",", "::"))
    train = tricky_file(tmp_path / "train.log", "syslog", 0)
    new = tricky_file(tmp_path / "new.log", "syslog", 1)
    model = make_model([train], fmt, tmp_path)
    for log in (train, new):
        assert_same_lines(python_match(model, log), c_match(x86_64, model, log))


def test_templates_mode_keys_unmatched_lines_by_their_content_as_python_does(
        x86_64: Path, tmp_path: Path) -> None:
    """parse gives an unmatched line its content as template, so such contents are in the vocab."""
    templates = tmp_path / "templates.txt"
    templates.write_text("Accepted password for <*> from <*> port <*>\n<*>connected\n"
                         "value <*> and <*>\nsize<*>\n<*>e<*>\n", encoding="utf-8")
    train = tricky_file(tmp_path / "train.log", "syslog", 0)
    new = tricky_file(tmp_path / "new.log", "syslog", 1)
    model = make_model([train], logformat.PRESETS["syslog"], tmp_path, template_file=templates)
    voc = json.loads((model / "vocab.json").read_text(encoding="utf-8"))
    assert len(voc) > 10, "unmatched contents are vocab entries"
    for log in (train, new):
        assert_same_lines(python_match(model, log), c_match(x86_64, model, log))


# --- the regex dialect, code point by code point ---------------------------------------------

PROBES = [r"\w+", r"\W", r"\d", r"\D+", r"\s", r"\S+", r"\b", r"\B", r"[^\s]+", r"[\s\d]",
          r"(?i)[k-s]", r"[[:alpha:]]", r"\d{,2}", r"(?<![\w.])\d", r"x*"]


def code_point_lines(path: Path) -> Path:
    """Every code point but NUL, "\\n" and the surrogates, 256 a line between "<" and ">"."""
    points = [c for c in range(1, 0x110000) if c != 0x0A and not 0xD800 <= c <= 0xDFFF]
    lines = ("<" + "".join(map(chr, points[i:i + 256])) + ">" for i in range(0, len(points), 256))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")
def test_regex_dialect_matches_python_on_every_code_point(x86_64: Path, tmp_path: Path) -> None:
    log = code_point_lines(tmp_path / "code_points.log")
    for k, probe in enumerate(PROBES):
        fmt = logformat.LogFormat(f"probe{k}", "<Content>", masks=((probe, "M"),))
        model = tmp_path / f"probe{k}"
        model.mkdir()
        parser = parser_json.parser_json(fmt, "drain", [{"cluster_id": 1, "template": "x",
                                                   "tokens": ["x"]}])
        (model / "parser.json").write_text(json.dumps(parser), encoding="utf-8")
        (model / "vocab.json").write_text(json.dumps({"0": "x"}), encoding="utf-8")
        reference = explain_reference(model, log)
        got = [json.loads(line) for line in c_match(x86_64, model, log, explain=True)]
        assert len(got) == len(reference), probe
        for r, g in zip(reference, got):
            assert g["masked"] == r["masked"], f"{probe}: line {r['line_no']} differs"
            assert g["tokens"] == r["tokens"], f"{probe}: line {r['line_no']} tokens differ"


# --- input Python refuses, bad model directories, usage ------------------------------------

def test_match_reports_refused_lines_as_error_records_and_exits_3(
        x86_64: Path, loghub_models: dict[str, Path], tmp_path: Path) -> None:
    model = loghub_models["hdfs"]
    good = loghub_log("hdfs").read_bytes().splitlines(keepends=True)[:3]
    log = tmp_path / "bad.log"
    log.write_bytes(good[0] + b"nul \x00 byte\n" + b"caf\xc3 truncated\n" + good[1] +
                    b"x" * (logformat.MAX_LINE_BYTES + 1) + b"\n" + b"\xff\xfe\n" + good[2])
    result = run_binary(x86_64, "match", str(model), str(log))
    assert result.returncode == EXIT_REFUSED, result.stderr
    records = [json.loads(line) for line in jsonl(result.stdout)]
    unk = len(json.loads((model / "vocab.json").read_text()))
    assert [r["line_no"] for r in records] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.get("error") for r in records] == [
        None, "contains NUL bytes (byte 5)", "not valid UTF-8 (byte 4)", None,
        "longer than 1048576 bytes (1048577)", "not valid UTF-8 (byte 1)", None]
    for r in records:
        if "error" in r:
            assert r["index"] == unk and r["template"] is None
        else:
            assert r["template"] is not None
    stderr = result.stderr.decode()
    assert f"warning: {log}: line 2: contains NUL bytes (byte 5): matched as unknown" in stderr
    assert "line 5: longer than 1048576 bytes" in stderr


def test_match_of_empty_or_blank_input_prints_nothing_and_succeeds(
        x86_64: Path, loghub_models: dict[str, Path], tmp_path: Path) -> None:
    model = loghub_models["hdfs"]
    for data in (b"", b"\n\n", b"  \r\n\t\n\xe3\x80\x80"):
        log = tmp_path / "empty.log"
        log.write_bytes(data)
        result = run_binary(x86_64, "match", str(model), str(log))
        assert (result.returncode, result.stdout, result.stderr) == (EXIT_OK, b"", b"")
        result = run_binary(x86_64, "match", str(model), stdin=data)
        assert (result.returncode, result.stdout) == (EXIT_OK, b"")


def test_match_reads_stdin_with_a_dash_or_without_a_file(
        x86_64: Path, loghub_models: dict[str, Path]) -> None:
    model, log = loghub_models["bgl"], loghub_log("bgl")
    expected = c_match(x86_64, model, log)
    for args in ((str(model), "-"), (str(model),)):
        result = run_binary(x86_64, "match", *args, stdin=log.read_bytes())
        assert result.returncode == EXIT_OK
        assert jsonl(result.stdout) == expected


def test_match_refuses_gzip_input_with_a_hint(
        x86_64: Path, loghub_models: dict[str, Path], tmp_path: Path) -> None:
    log = tmp_path / "hdfs.log.gz"
    log.write_bytes(gzip.compress(loghub_log("hdfs").read_bytes()))
    result = run_binary(x86_64, "match", str(loghub_models["hdfs"]), str(log))
    assert result.returncode == EXIT_ERROR
    assert result.stdout == b""
    assert result.stderr.decode() == (f"error: {log}: gzip-compressed input: decompress it first "
                                      "(zcat FILE | alog-edge match DIR -)\n")


def bad_model(tmp_path: Path, source: Path, name: str, parser: str | bytes | None) -> Path:
    model = tmp_path / name
    model.mkdir()
    shutil.copy(source / "vocab.json", model / "vocab.json")
    if parser is not None:
        data = parser.encode() if isinstance(parser, str) else parser
        (model / "parser.json").write_bytes(data)
    return model


def test_match_refuses_a_bad_model_directory_with_one_error_line(
        x86_64: Path, loghub_models: dict[str, Path], tmp_path: Path) -> None:
    good = loghub_models["hdfs"]
    parser = json.loads((good / "parser.json").read_text())

    def variant(**changes: object) -> str:
        return json.dumps({**parser, **changes})

    missing = {k: v for k, v in parser.items() if k != "templates"}
    cases = {
        "missing_parser": (None, "parser.json: No such file or directory"),
        "malformed": ('{"format_version": 1,', "parser.json: not valid JSON (line 1, column 21)"),
        "missing_field": (json.dumps(missing),
                          "parser.json: not a parser.json: the field \"templates\" is missing"),
        "version": (variant(format_version=2),
                    "parser.json: format_version 2 is not supported (this runtime reads "
                    "version 1)"),
        "mode": (variant(mode="fuzzy"), "parser.json: unknown mode \"fuzzy\""),
        "regex": (variant(masking=[{"regex_pattern": "blk_(\\d+", "mask_with": "*"}]),
                  "parser.json: masking[0].regex_pattern: invalid regex: missing closing "
                  "parenthesis at offset 8 of \"blk_(\\d+\""),
        "huge": (b" " * (64 * 1024 * 1024 + 1), "parser.json: file too large"),
    }
    for name, (text, why) in cases.items():
        model = bad_model(tmp_path, good, name, text)
        result = run_binary(x86_64, "match", str(model), str(loghub_log("hdfs")))
        stderr = result.stderr.decode()
        assert result.returncode == EXIT_ERROR, (name, stderr)
        assert result.stdout == b""
        assert stderr.count("\n") == 1 and stderr.startswith(f"error: {model}/"), (name, stderr)
        assert why in stderr, (name, stderr)
    result = run_binary(x86_64, "match", str(tmp_path / "nowhere"))
    assert result.returncode == EXIT_ERROR
    assert result.stderr.decode() == f"error: {tmp_path / 'nowhere'}: No such file or directory\n"
    (tmp_path / "training" / "x").mkdir(parents=True)
    training = tmp_path / "training"
    (training / "vocab.json").write_text('{"a": 0}')
    shutil.copy(good / "parser.json", training / "parser.json")
    result = run_binary(x86_64, "match", str(training), str(loghub_log("hdfs")))
    assert result.returncode == EXIT_ERROR
    assert "this is the training form" in result.stderr.decode()


def test_match_usage_errors_exit_2_and_help_documents_the_exit_statuses(x86_64: Path) -> None:
    for args in (("match",), ("match", "--frobnicate", "d"), ("match", "a", "b", "c")):
        result = run_binary(x86_64, *args)
        assert result.returncode == EXIT_USAGE, args
        assert result.stderr.decode().startswith("error: ")
        assert "(see alog-edge match --help)" in result.stderr.decode()
    result = run_binary(x86_64, "match", "--help")
    assert result.returncode == EXIT_OK
    text = result.stdout.decode()
    assert text.startswith("usage: alog-edge match [--explain] [--multiline] <model_dir> [FILE|-]")
    for status in ("0 every line matched", "1 error", "2 usage error", "3 some lines"):
        assert status in " ".join(text.split())
    assert "match [--explain] [--multiline] <model_dir> [FILE|-]" in run_binary(x86_64, "--help").stdout.decode()


def test_match_is_clean_under_asan_and_ubsan_on_tricky_and_refused_input(
        x86_64_asan: Path, tmp_path: Path) -> None:
    train = tricky_file(tmp_path / "train.log", "syslog", 0)
    model = make_model([train], logformat.PRESETS["syslog"], tmp_path)
    expected = python_match(model, train)
    result = run_binary(x86_64_asan, "match", str(model), str(train))
    assert result.returncode == EXIT_OK, result.stderr.decode()[-3000:]
    assert_same_lines(expected, jsonl(result.stdout))
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"\x00\xff\n" * 3 + b"y" * (3 << 20) + b"\n\xc3\n" + train.read_bytes()[:5000])
    result = run_binary(x86_64_asan, "match", "--explain", str(model), str(bad))
    assert result.returncode == EXIT_REFUSED, result.stderr.decode()[-3000:]
    assert b"Sanitizer" not in result.stderr and b"runtime error" not in result.stderr
    # Multiline records, the content copied when the content group is not last.
    traces = stack_trace_log(tmp_path / "traces.log", 1)
    for log_format in (JAVA_FORMAT, "<Content> \\[<Thread>\\] <Rest>"):
        model = make_model([traces], replace(logformat.resolve(None, log_format), multiline=True),
                           tmp_path / log_format[:2])
        result = run_binary(x86_64_asan, "match", "--explain", str(model), str(traces))
        assert result.returncode == EXIT_OK, result.stderr.decode()[-3000:]
        assert [json.loads(line) for line in jsonl(result.stdout)] == [
            {**json.loads(line), **{k: r[k] for k in ("cluster_id", "format_matched", "content", "masked",
                                                       "tokens")}}
            for line, r in zip(python_match(model, traces), explain_reference(model, traces))]


# --- speed -----------------------------------------------------------------------------------

def test_match_keys_every_line_of_a_big_file_and_reports_lines_per_second(
        x86_64: Path, loghub_models: dict[str, Path], tmp_path: Path) -> None:
    """`alog-edge match` over each 2k file 25 times (one core) gives a record per line as Python does, each
    copy keyed alike; the lines/s beside Python's parse.match are printed (`pytest -s`): speed goals are `invoke bench`'s."""
    rows = []
    for system in SYSTEMS:
        model, log = loghub_models[system], loghub_log(system)
        started = time.perf_counter()
        frame = parse.match([log], model / "parser.json")
        py_rate = len(frame) / (time.perf_counter() - started)
        big = tmp_path / f"{system}.log"
        text = log.read_bytes()
        big.write_bytes((text if text.endswith(b"\n") else text + b"\n") * 25)  # copies never join lines
        cmd = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        cmd += [str(x86_64 / "bin" / "alog-edge"), "match", str(model), str(big)]
        started = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True)
        c_rate = 25 * len(frame) / (time.perf_counter() - started)
        assert result.returncode == 0, result.stderr
        keys = [json.loads(line)["index"] for line in result.stdout.splitlines()]
        assert len(keys) == 25 * len(frame), system  # a record per line, as Python has
        assert keys == keys[:len(frame)] * 25, system  # each copy keyed alike (no state leaks between lines)
        rows.append((system, c_rate, py_rate))
    print("\nsystem       alog-edge match   python parse.match   ratio")
    for system, c_rate, py_rate in rows:
        print(f"{system:<12} {c_rate:>12,.0f}/s {py_rate:>16,.0f}/s {c_rate / py_rate:>7.1f}x")


# --- multiline records, regexes that give up, adversarial lines for the default masks ---------

JAVA_FORMAT = "<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>"


def stack_trace_log(path: Path, variant: int) -> Path:
    """Java-style records with stack traces, wrapped messages, blank lines inside a record,
    CRLF endings and a first line that does not fit the format."""
    lines = ["\tat a continuation before any record"]
    for i in range(60):
        ts = f"2024-03-{5 + i % 3:02d} 10:{i % 60:02d}:{(7 * i + variant) % 60:02d},{i:03d}"
        n = i * 7 + variant
        if i % 4 == 0:
            lines += [f"{ts} ERROR [worker-{i % 3}] org.x.Worker: Task {n} failed on host-{i % 5}",
                      f"java.lang.IllegalStateException: bad state {n}",
                      f"\tat org.x.Worker.run(Worker.java:{80 + i % 9})",
                      "", "\tat java.lang.Thread.run(Thread.java:750)",
                      f"Caused by: java.io.IOException: disk /dev/sda{i % 3} full ({n} bytes left)",
                      "\t... 3 more"]
        elif i % 4 == 1:
            lines += [f"{ts} WARN [main] org.x.Conf: value of key.{i % 2} wrapped",
                      f"   over two lines: {n}"]
        else:
            lines.append(f"{ts} INFO [main] org.x.Worker: Task {n} done in {n % 90} ms")
    data = "".join(line + ("\r\n" if k % 7 == 3 else "\n") for k, line in enumerate(lines))
    path.write_text(data, encoding="utf-8")
    return path


def test_multiline_records_agree_with_python_with_stack_traces(x86_64: Path, tmp_path: Path) -> None:
    fmt = replace(logformat.resolve(None, JAVA_FORMAT), multiline=True)
    train = stack_trace_log(tmp_path / "train.log", 0)
    new = stack_trace_log(tmp_path / "new.log", 5)
    model = make_model([train], fmt, tmp_path)
    assert json.loads((model / "parser.json").read_text())["multiline"] is True
    for log in (train, new):
        python = python_match(model, log)
        assert_same_lines(python, c_match(x86_64, model, log))
        reference = explain_reference(model, log)
        got = [json.loads(line) for line in c_match(x86_64, model, log, explain=True)]
        keys = ("line_no", "cluster_id", "format_matched", "content", "masked", "tokens")
        assert [{k: r[k] for k in keys} for r in got] == reference
        records = [json.loads(line) for line in python]
        assert len(records) == 61, "60 records and the continuation before the first one"
        assert sum("Caused by: java.io.IOException" in r["content"] for r in reference) == 15
    # A parser.json without "multiline": the flag asks for it on the device.
    plain = make_model([train], replace(fmt, multiline=False), tmp_path / "plain")
    expected = list(parse.match_jsonl([new], plain / "parser.json", vocab.load_c_form(plain / "vocab.json")))
    flagged = run_binary(x86_64, "match", str(plain), str(new))
    assert jsonl(flagged.stdout) == expected and len(expected) > 140
    frame, _ = parse.match_records([new], plain / "parser.json", multiline=True)
    flagged = run_binary(x86_64, "match", "--multiline", str(plain), str(new))
    assert [json.loads(line)["line_no"] for line in jsonl(flagged.stdout)] == list(frame["line_no"])


def test_a_mask_that_backtracks_forever_is_cut_short_and_keyed_unknown_on_both_sides(
        x86_64: Path, tmp_path: Path) -> None:
    fmt = logformat.LogFormat("catastrophic", "<Level>: <Content>", masks=((r"((a+)+)+$", "A"),))
    evil = "ERROR: " + "a" * 40 + "!"
    log = tmp_path / "evil.log"
    log.write_text("INFO: service up 1\nINFO: service up 2\n" + evil + "\nINFO: service up 3\n")
    model = make_model([log], fmt, tmp_path)
    python = python_match(model, log)
    result = run_binary(x86_64, "match", str(model), str(log))
    assert result.returncode == EXIT_REFUSED
    assert_same_lines(python, jsonl(result.stdout))
    refused = json.loads(python[2])
    assert refused["template"] is None and refused["error"] == f"masking[0]: {bounded.GAVE_UP}"
    assert [json.loads(line)["template"] for line in python[:2]] == ["service up <*>"] * 2


def adversarial_lines() -> list[str]:
    """Long runs of what the default masks look for, without what closes them."""
    n = 20000
    return ["1" * n, "1." * n, "a1." * n, "a." * n, "1:" * n, "ab:" * n, "0x" + "f" * n, "/a" * n,
            "a@" * n, "a@b." * n, "[" + "1," * n, "[" + "[1," * n, "http://" + "a" * n, "1 " * n + "MB",
            "Jan 1 " * n, "2024-01-01 " * n, "1-" * n, "a-1" * n, "_1" * n, "...1" * n,
            "aa:bb:cc:dd:ee:" * n, "1.2.3.4," * n, "1.2.3.4:5," * n, "-" * n + "1", "a.b:" * n,
            "a.b.c" * n + ":1", "C:\\" * n, "a:\\b" * n,
            "1" * n + "." + "2" * n, "f" * n + "1", "deadbeef-" * n]


def test_default_masks_stay_fast_and_agree_on_adversarial_lines(x86_64: Path, tmp_path: Path) -> None:
    fmt = logformat.resolve(None, "<Level> <Content>")
    lines = [f"INFO {line}" for line in adversarial_lines()]
    log = tmp_path / "adversarial.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = make_model([log], fmt, tmp_path)
    python = python_match(model, log)
    assert not any("error" in json.loads(line) for line in python), "no mask gives up"
    assert_same_lines(python, c_match(x86_64, model, log))
