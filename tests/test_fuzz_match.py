"""The libFuzzer targets of runtime/fuzz/, built with clang (ASan+UBSan) and run for a bounded time.

fuzz_match_line feeds raw lines to a "drain" model (the default masks, extra delimiters) and a
"templates" model (HDFS), and compares both indexes with a linear scan done Python's way;
fuzz_load_json feeds parser.json and vocab.json files to the loaders (and matches a few lines
with every parser that loads); fuzz_load_model feeds meta.json files to ae_model_load and golden.json
files to selftest's reader, in a copy of the full_model fixture. A crash, leak, sanitizer report, timeout or broken invariant fails
the test and names the input that reproduces it (build/fuzz/artifacts/).

ALOG_EDGE_FUZZ_SECONDS sets the time per fuzzer (default 5: the suite checks that every fuzzer builds,
runs thousands of inputs and finds nothing; `invoke fuzz` is the long run, 60 s each by default, and keeps the
corpus this run grew in build/fuzz/corpus/).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from alog_edge.toolchain import fuzz
from conftest import REPO

SECONDS = int(os.environ.get("ALOG_EDGE_FUZZ_SECONDS", "5"))


@pytest.fixture(scope="module")
def fuzzers() -> Path:
    return fuzz.build_fuzzers(REPO)


@pytest.mark.parametrize("name", list(fuzz.FUZZERS))
def test_fuzzer_runs_its_time_without_a_finding(name: str, fuzzers: Path) -> None:
    artifacts = fuzzers / "artifacts"
    before = set(artifacts.glob(f"{name}-*"))
    run = fuzz.run_fuzzer(REPO, name, SECONDS)
    assert run.runs > 1000, f"{name} ran only {run.runs} inputs in {run.seconds:.0f}s"
    assert set(artifacts.glob(f"{name}-*")) == before  # no crash, leak or timeout input written
    assert run.corpus == fuzzers / "corpus" / name and run.corpus.is_dir()


def test_an_unknown_fuzzer_is_refused() -> None:
    with pytest.raises(fuzz.NativeBuildError, match="unknown fuzzer 'fuzz_nothing'"):
        fuzz.run_fuzzer(REPO, "fuzz_nothing", 1)
