"""The libFuzzer targets of `runtime/fuzz/`, built with clang (ASan+UBSan+libFuzzer) into `build/fuzz/`.

- `build_fuzzers(repo)`: against the Conan dependencies of the x86_64 build.
- `run_fuzzer(repo, name, seconds)`: runs one for a bounded time from its committed seed corpus;
  a crash raises NativeBuildError naming the input that reproduces it.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from alog_edge.toolchain.build import build_runtime, cmake_build_dir
from alog_edge.toolchain.deps import NativeBuildError, Paths, run_command

log = logging.getLogger(__name__)


# The libFuzzer targets of runtime/fuzz/: name -> (seed corpus under runtime/fuzz/corpus/, dict).
FUZZERS: dict[str, tuple[str, str | None]] = {
    "fuzz_match_line": ("match_line", None),
    "fuzz_load_json": ("load_json", "json.dict"),
    "fuzz_load_model": ("load_model", "json.dict"),
    "fuzz_verify": ("verify", "json.dict"),
}


@dataclass(frozen=True)


class FuzzRun:
    """What one bounded fuzzer run did."""

    name: str
    runs: int
    seconds: float
    new_units: int
    corpus: Path


def fuzz_build_dir(repo: Path) -> Path:
    """Where build_fuzzers builds the fuzzers (and run_fuzzer keeps their working corpora)."""
    return Path(repo).resolve() / "build" / "fuzz"


def build_fuzzers(repo: Path) -> Path:
    """Build the libFuzzer targets of runtime/fuzz/ with clang; returns their folder (build/fuzz/).

    They compile the runtime's matcher and JSON loaders again with
    -fsanitize=fuzzer,address,undefined, and link cjson and pcre2 from the Conan packages of the
    x86_64 build (built first when needed: its generators folder is the CMAKE_PREFIX_PATH).
    """
    paths = Paths(Path(repo).resolve())
    build_runtime(paths.repo, "x86_64")
    if shutil.which("clang") is None:
        raise NativeBuildError("clang not found: run setup_native (it installs clang and "
                               "libclang-rt-14-dev, libFuzzer's runtime)")
    out = fuzz_build_dir(paths.repo)
    generators = cmake_build_dir(paths.repo, "x86_64") / "generators"
    started = time.monotonic()
    fixtures = out / "fixtures"  # fuzz_load_model's model directory
    run_command([sys.executable, str(paths.repo / "runtime" / "tests" / "make_onnx_fixtures.py"), str(fixtures)],
         what="the fuzzers' ONNX fixtures", quiet=True)
    run_command(["cmake", "-S", str(paths.repo / "runtime" / "fuzz"), "-B", str(out), "-G", "Ninja",
          "-DCMAKE_C_COMPILER=clang", "-DCMAKE_BUILD_TYPE=Release",
          f"-DCMAKE_PREFIX_PATH={generators}", f"-DAE_FUZZ_FIXTURES={fixtures}"],
         what="cmake configure of the fuzzers", quiet=True)
    run_command(["cmake", "--build", str(out)], what="cmake build of the fuzzers", quiet=True)
    log.info("fuzzers built in %s (%.1fs)", out, time.monotonic() - started)
    return out


def run_fuzzer(repo: Path, name: str, seconds: int = 20, *, jobs: int = 1) -> FuzzRun:
    """Run a fuzzer of build_fuzzers for `seconds` (libFuzzer's -max_total_time).

    It starts from the committed seeds (runtime/fuzz/corpus/<corpus>/, read only) and the working
    corpus build/fuzz/corpus/<name>/ (kept between runs, so coverage accumulates). A crash, leak,
    sanitizer report or timeout raises NativeBuildError naming the input that reproduces it
    (`build/fuzz/<name> <input>`).
    """
    paths = Paths(Path(repo).resolve())
    if name not in FUZZERS:
        raise NativeBuildError(f"unknown fuzzer {name!r}: choose one of {', '.join(FUZZERS)}")
    out = fuzz_build_dir(paths.repo)
    binary = out / name
    if not binary.is_file():
        raise NativeBuildError(f"{binary}: missing; run build_fuzzers first")
    seeds_name, dict_name = FUZZERS[name]
    seeds = paths.repo / "runtime" / "fuzz" / "corpus" / seeds_name
    corpus = out / "corpus" / name
    artifacts = out / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [str(binary), f"-max_total_time={int(seconds)}", "-timeout=20", "-rss_limit_mb=4096",
           "-print_final_stats=1", f"-artifact_prefix={artifacts}/{name}-"]
    if dict_name:
        cmd.append(f"-dict={paths.repo / 'runtime' / 'fuzz' / dict_name}")
    if jobs > 1:
        cmd += [f"-jobs={jobs}", f"-workers={jobs}"]
    cmd += [str(corpus), str(seeds)]
    log.info("fuzzing %s for %ds", name, seconds)
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                            timeout=seconds + 300, cwd=out)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        crash = [line for line in result.stderr.splitlines()
                 if "Test unit written to" in line or "ERROR:" in line]
        log.error("%s", result.stderr[-8000:])
        raise NativeBuildError(f"{name} failed (exit {result.returncode}): "
                               f"{'; '.join(crash[-2:]) or 'see the log'}")
    stats = _fuzz_stats(result.stderr)
    return FuzzRun(name, int(stats.get("number_of_executed_units", 0)), elapsed,
                   int(stats.get("new_units_added", 0)), corpus)


def _fuzz_stats(stderr: str) -> dict[str, str]:
    """libFuzzer's -print_final_stats lines: `stat::<name>: <value>`."""
    stats = {}
    for line in stderr.splitlines():
        if line.startswith("stat::") and ":" in line[6:]:
            key, value = line[6:].split(":", 1)
            stats[key.strip()] = value.strip()
    return stats
