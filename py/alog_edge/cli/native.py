"""The C runtime's tasks behind tasks.py: build, C tests, fuzzers, and the C-vs-Python benchmark."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from alog_edge.errors import AlogError

TARGETS = {"x86_64": ("x86_64",), "aarch64": ("aarch64",), "all": ("x86_64", "aarch64")}


def targets(target: str) -> tuple[str, ...]:
    if target not in TARGETS:
        raise AlogError(None, f"unknown target {target!r}: x86_64, aarch64 or all")
    return TARGETS[target]


def build_runtime(repo: Path, target: str, sanitize: bool) -> Iterator[str]:
    """One line per target built: where it was installed."""
    from alog_edge.toolchain import build
    for t in targets(target):
        yield f"{t}: {build.build_runtime(repo, t, sanitize=sanitize)}"


def test_runtime(repo: Path, target: str, sanitize: bool, memcheck: bool) -> None:
    from alog_edge.toolchain import build
    for t in targets(target):
        build.build_runtime(repo, t, sanitize=sanitize)
        build.run_ctest(repo, t, sanitize=sanitize, memcheck=memcheck)


def fuzz(repo: Path, seconds: int) -> Iterator[str]:
    """One line per fuzzer run."""
    from alog_edge.toolchain import fuzz as f
    f.build_fuzzers(repo)
    for name in f.FUZZERS:
        run = f.run_fuzzer(repo, name, seconds)
        yield f"{name}: {run.runs} inputs in {run.seconds:.0f}s, {run.new_units} new corpus units, no crash"


def bench(repo: Path, root: Path, datasets: Path, batch: int, seconds: float, json_: bool, aarch64: bool) -> str:
    from alog_edge.parity import bench as b
    from alog_edge.toolchain import build
    binary = build.build_runtime(repo, "x86_64") / "bin" / "alog-edge"
    if aarch64:
        arm = [*build.qemu_command(repo), str(build.build_runtime(repo, "aarch64") / "bin" / "alog-edge")]
        rows = b.emulated_rows(binary, arm, b.demo_case(root / "demo"))
        return "\n".join(json.dumps(r) for r in rows) if json_ else b.format_emulated(rows)
    cases = [b.prepare_hdfs(root / "bench" / "hdfs", datasets), b.demo_case(root / "demo")]
    rows = b.bench_all(binary, cases, batch, seconds)
    rows += b.generic_match_rows(binary, root / "bench" / "hdfs-generic", datasets)
    return "\n".join(json.dumps(r) for r in rows) if json_ else b.format_rows(rows)
