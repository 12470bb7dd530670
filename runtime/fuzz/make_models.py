"""Write the fuzzers' model directories and seed corpora (run from the repo root with the venv).

    python runtime/fuzz/make_models.py [DATASETS]

models/drain:      parser.json (mode "drain", the syslog preset: the default masks, plus the
                   extra delimiters "=" and ",") mined from seeds/syslog.log, and its vocab.json
models/templates:  parser.json (mode "templates") from HDFS_templates.csv over HDFS_2k.log
corpus/match_line: one line per file from seeds/syslog.log and HDFS_2k.log
corpus/load_json:  the parser.json and vocab.json files, behind their selector byte
The outputs are committed; rerun after a change of parser.json's format.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "py"))

from alog_edge import logformat, parse, vocab  # noqa: E402


def model(log: Path, fmt: logformat.LogFormat, out: Path, template_file: Path | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        parse.parse([log], fmt, ws, template_file=template_file)
        frame = pd.read_parquet(ws / "parsed.parquet")
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(ws / "parser.json", out / "parser.json")
        (out / "vocab.json").write_text(json.dumps(vocab.build(frame["template"]).c_form(),
                                                   ensure_ascii=False, indent=1) + "\n")


def main() -> None:
    datasets = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "datasets"
    hdfs = datasets / "loghub-2k" / "HDFS" / "HDFS_2k.log"
    # The syslog preset (the default masks), with extra delimiters to exercise them too.
    syslog = replace(logformat.PRESETS["syslog"], extra_delimiters=("=", ","))
    model(HERE / "seeds" / "syslog.log", syslog, HERE / "models" / "drain")
    model(hdfs, logformat.PRESETS["hdfs"], HERE / "models" / "templates",
          template_file=datasets / "hdfs-sessions" / "HDFS_templates.csv")
    lines = (HERE / "seeds" / "syslog.log").read_bytes().splitlines()
    lines += hdfs.read_bytes().splitlines()[:40:4]
    # Adversarial lines for the default masks: long runs of what they look for, unclosed.
    head = b"Mar  3 10:00:01 edge-01 app[1]: "
    for run in (b"1.", b"a.", b"a1.", b"1:", b"[1,", b"a@b.", b"/a", b"0x", b"Jan 1 ", b"1.2.3.4,",
                b"deadbeef-", b"http://a", b"2024-01-01 ", b"ab:"):
        lines.append(head + run * (300 // len(run)))
    lines.append(head + b"Task 7 failed\n\tat a.B.c(B.java:1)\nCaused by: x")  # a multiline record
    corpus = HERE / "corpus" / "match_line"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    for i, line in enumerate(lines):
        (corpus / f"line-{i:03d}").write_bytes(line)
    corpus = HERE / "corpus" / "load_json"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    for kind in ("drain", "templates"):
        d = HERE / "models" / kind
        (corpus / f"parser-{kind}").write_bytes(b"P" + (d / "parser.json").read_bytes())
        (corpus / f"vocab-{kind}").write_bytes(b"V" + (d / "vocab.json").read_bytes())


if __name__ == "__main__":
    main()
