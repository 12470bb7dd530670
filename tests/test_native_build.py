"""The native build end to end: real Conan + CMake builds of the C runtime, no mocks.

Each target is built once per session (x86_64, aarch64 cross-compiled, x86_64 with ASan+UBSan: conftest.py)
through alog_edge.toolchain, as the invoke tasks do. Then: the ELF machine and RUNPATH of the
installed binary, the shared libraries beside it, the C tests (natively, under the sanitizers,
under valgrind, and for aarch64 under qemu), and the CLI run from a copy of the install prefix.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alog_edge.toolchain import build as native, prepare

REPO = Path(__file__).resolve().parents[1]
EM_X86_64, EM_AARCH64 = 62, 183


def elf_machine(path: Path) -> int:
    """e_machine, read from the ELF header (bytes 18-19, little-endian on both targets)."""
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    assert header[5] == 1, f"{path} is not little-endian"
    return int.from_bytes(header[18:20], "little")


def dynamic_section(path: Path) -> str:
    return subprocess.run(["readelf", "-d", str(path)], check=True, capture_output=True,
                          text=True).stdout


def run_cli(prefix: Path, target: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an installed alog-edge as a user would: no LD_LIBRARY_PATH, qemu for aarch64."""
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    cmd = [str(prefix / "bin" / "alog-edge"), *args]
    if target == "aarch64":
        cmd = native.qemu_command(REPO) + cmd
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory with real ONNX models, written by the C tests' fixture script."""
    out = tmp_path_factory.mktemp("fixtures")
    subprocess.run([sys.executable, str(REPO / "runtime" / "tests" / "make_onnx_fixtures.py"),
                    str(out)], check=True)
    return out


@pytest.fixture(params=["x86_64", "aarch64"])
def target(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def prefix(target: str, request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"runtime_{target}")  # conftest's session builds


def files_state(*folders: Path) -> dict[str, tuple[int, int]]:
    return {str(f): (f.stat().st_size, f.stat().st_mtime_ns) for d in folders for f in sorted(d.rglob("*"))
            if f.is_file()}


def test_setup_native_is_a_no_op_once_done(caplog: pytest.LogCaptureFixture) -> None:
    prepare.setup_native(REPO)
    tools = REPO / ".tools"
    before = files_state(tools / "downloads", tools / "qemu")
    with caplog.at_level(logging.INFO):
        prepare.setup_native(REPO)
    said = caplog.text
    for step in ("debian packages: up to date", "verified in", "qemu: ",
                 "conan: recipes exported and up to date"):
        assert step in said, step
    assert "fetch" not in said and "extracting" not in said, said
    assert files_state(tools / "downloads", tools / "qemu") == before  # nothing re-fetched
    assert (tools / "qemu" / "qemu-aarch64").is_file()


def test_build_installs_into_build_target(target: str, prefix: Path) -> None:
    assert prefix == REPO / "build" / target
    assert (prefix / "bin" / "alog-edge").is_file()


def test_the_binary_is_built_for_its_target(target: str, prefix: Path) -> None:
    expected = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}[target]
    assert elf_machine(prefix / "bin" / "alog-edge") == expected
    assert native.elf_machine(prefix / "bin" / "alog-edge") == expected


def test_the_binary_finds_its_libraries_through_runpath_origin_lib(prefix: Path) -> None:
    dynamic = dynamic_section(prefix / "bin" / "alog-edge")
    runpath = re.search(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", dynamic)
    assert runpath is not None, dynamic
    assert runpath.group(1) == "$ORIGIN/../lib"
    assert "(RPATH)" not in dynamic
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", dynamic)
    assert "libonnxruntime.so.1" in needed and "libcjson.so.1" in needed
    for soname in needed:
        if not soname.startswith(("libc.so", "libm.so", "libpthread", "libdl", "ld-linux")):
            assert (prefix / "lib" / soname).exists(), f"{soname} is not in lib/"


def test_lib_holds_the_shared_libraries_for_the_target(target: str, prefix: Path) -> None:
    lib = prefix / "lib"
    assert os.readlink(lib / "libonnxruntime.so.1") == "libonnxruntime.so.1.31.1"
    assert os.readlink(lib / "libcjson.so.1") == "libcjson.so.1.7.15"
    assert os.readlink(lib / "libpcre2-8.so.0") == "libpcre2-8.so.0.11.2"
    expected = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}[target]
    for real in ("libonnxruntime.so.1.31.1", "libcjson.so.1.7.15", "libpcre2-8.so.0.11.2"):
        assert elf_machine(lib / real) == expected, real
    for package in ("onnxruntime", "cjson", "pcre2"):
        assert any((prefix / "share" / "licenses" / package).iterdir()), package
    soname = re.search(r"\(SONAME\)\s+Library soname: \[(.*)\]",
                       dynamic_section(lib / "libonnxruntime.so.1.31.1"))
    assert soname is not None and soname.group(1) == "libonnxruntime.so.1"


def test_c_tests_pass_on_x86_64(runtime_x86_64: Path) -> None:
    native.run_ctest(REPO, "x86_64")


def test_c_tests_pass_under_asan_and_ubsan(runtime_x86_64_asan: Path) -> None:
    assert runtime_x86_64_asan == REPO / "build" / "x86_64-asan"
    assert "libasan.so" in dynamic_section(runtime_x86_64_asan / "bin" / "alog-edge")
    native.run_ctest(REPO, "x86_64", sanitize=True)


def test_c_tests_pass_on_aarch64_under_qemu(runtime_aarch64: Path) -> None:
    native.run_ctest(REPO, "aarch64")


# Under valgrind every onnxruntime session costs seconds: the suite runs every test of the modules
# without models and, of those with models, the ones that go through the most code. ASan+UBSan
# (leak checking included) run them all; `invoke test-runtime --memcheck` runs them all under valgrind.
VALGRIND_TESTS = ("^(common|vocab|parser|match|pcre2|pyregex|fields|strmap)_"
                  "|^(session_runs_a_model_with_two_outputs"
                  "|model_load_reads_a_whole_model_directory"
                  "|model_load_refuses_a_truncated_onnx_file_with_onnxruntimes_reason"
                  "|model_deeplog_gives_the_same_verdicts_in_any_batch_size"
                  "|model_mscred_returns_the_models_score_of_each_window"
                  "|detector_gives_the_same_events_in_batch_and_follow_modes"
                  "|detector_skips_blank_and_refused_lines_and_goes_on"
                  "|cli_run_writes_an_mscred_alarm_with_its_slot_in_utc"
                  "|cli_score_refuses_a_bad_id_naming_the_line_and_prints_no_session)$")


def test_c_tests_are_clean_under_valgrind(runtime_x86_64: Path) -> None:
    native.run_ctest(REPO, "x86_64", memcheck=True, only=VALGRIND_TESTS)


def test_version_runs_natively_and_under_qemu(target: str, prefix: Path) -> None:
    result = run_cli(prefix, target, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"alog-edge 0.1.0 (onnxruntime 1.31.1, {target})\n"


def test_info_describes_a_model_directory_from_a_moved_install(
        target: str, prefix: Path, model_dir: Path, tmp_path: Path) -> None:
    moved = tmp_path / "alog-edge"
    shutil.copytree(prefix, moved, symlinks=True)  # RUNPATH $ORIGIN/../lib: relocatable
    result = run_cli(moved, target, "info", str(model_dir / "model_dir"))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["target"] == target
    assert info["version"] == "0.1.0"
    assert info["onnxruntime_version"] == "1.31.1"
    assert info["onnxruntime_api_version"] == 21
    assert info["vocab_size"] == 3
    assert [m["file"] for m in info["models"]] == ["deeplog.onnx", "mscred.onnx"]
    deeplog, mscred = info["models"]
    assert deeplog["inputs"] == [{"name": "input_sequence", "type": "int64",
                                  "shape": ["batch_size", "sequence_length"]}]
    assert deeplog["outputs"] == [{"name": "predictions", "type": "float32",
                                   "shape": ["batch_size", 3]}]
    assert [o["name"] for o in mscred["outputs"]] == ["reconstruction", "anomaly_score"]
    assert mscred["inputs"][0]["shape"] == ["batch_size", 1, 5, 3]


def test_info_refuses_a_training_form_vocab_with_one_error_line(
        target: str, prefix: Path, model_dir: Path) -> None:
    vocab = model_dir / "training_form" / "vocab.json"
    result = run_cli(prefix, target, "info", str(vocab.parent))
    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {vocab}: this is the training form {{\"<template>\": index}}; the "
                      "model directory needs the C form {\"<index>\": \"<template>\"}: run "
                      "`invoke convert`"]


def test_an_unknown_target_or_an_aarch64_sanitizer_build_is_refused() -> None:
    with pytest.raises(native.NativeBuildError, match="unknown target 'riscv64'"):
        native.build_runtime(REPO, "riscv64")
    with pytest.raises(native.NativeBuildError, match="x86_64 only"):
        native.build_runtime(REPO, "aarch64", sanitize=True)
