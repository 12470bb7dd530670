"""Build and test the C runtime: `conan build` with the profiles of `toolchains/`, `cmake --install`
into `build/<target>/` (`build/x86_64-asan/` for the sanitizer build), and its ctest tests.

- `build_runtime(repo, target, sanitize=False)`: `bin/alog-edge`, `lib/` (its shared libraries),
  `share/licenses/`; the native dependencies are prepared first (`deps.setup_native`).
- `run_ctest(repo, target, sanitize=False, memcheck=False)`: the C tests of a build; aarch64 runs
  them under qemu, `memcheck` under valgrind (x86_64).
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from alog_edge.toolchain.deps import NativeBuildError, Paths, conan, run_command
from alog_edge.toolchain.prepare import setup_native

log = logging.getLogger(__name__)


# Build target -> Conan arch, host profile (toolchains/), ELF e_machine of its binaries.
CONAN_ARCH: dict[str, str] = {"x86_64": "x86_64", "aarch64": "armv8"}
HOST_PROFILE: dict[str, str] = {"x86_64": "linux-x86_64", "aarch64": "linux-armv8"}
ELF_MACHINE: dict[str, int] = {"x86_64": 62, "aarch64": 183}
AARCH64_LIBS = "/usr/aarch64-linux-gnu"  # qemu -L: the cross libc/libstdc++ of libc6-dev-arm64-cross


def build_runtime(repo: Path, target: str, sanitize: bool = False, quiet: bool = False) -> Path:
    """Build the runtime for `target` (x86_64 or aarch64) and install it; returns the install prefix.
    `quiet`: Conan's and CMake's output only when the build fails.

    The prefix (`build/<target>/`, or `build/x86_64-asan/` with `sanitize`) holds `bin/alog-edge`
    (RUNPATH `$ORIGIN/../lib`), `lib/` with the shared libraries it needs (real files and their
    SONAME links) and `share/licenses/<package>/`. The CMake build tree is
    `build/cmake/<arch>[-asan]/Release/`, with Conan's CMake presets (CMakeUserPresets.json).
    """
    paths = Paths(Path(repo).resolve())
    _check_variant(target, sanitize)
    setup_native(paths.repo)
    started = time.monotonic()
    args = ["build", str(paths.repo),
            "-pr:b", str(paths.toolchains / "build"),
            "-pr:h", str(paths.toolchains / HOST_PROFILE[target]),
            "--build=missing"]
    if sanitize:
        args += ["-o", "&:sanitize=True",
                 "-c", 'tools.cmake.cmake_layout:build_folder_vars=["settings.arch", "const.asan"]']
    log.info("building the runtime for %s%s", target, " (ASan+UBSan)" if sanitize else "")
    conan(paths, *args, what=f"conan build for {_variant(target, sanitize)}", quiet=quiet)
    prefix = install_prefix(paths.repo, target, sanitize)
    if prefix.exists():
        shutil.rmtree(prefix)
    run_command(["cmake", "--install", str(cmake_build_dir(paths.repo, target, sanitize)),
          "--prefix", str(prefix)], what=f"cmake --install for {_variant(target, sanitize)}",
         quiet=True)
    log.info("runtime for %s installed in %s (%.1fs)", _variant(target, sanitize), prefix,
             time.monotonic() - started)
    return prefix


def run_ctest(repo: Path, target: str, sanitize: bool = False, memcheck: bool = False,
              only: str | None = None) -> None:
    """Run the C tests of a build made by build_runtime (aarch64: under qemu; memcheck: valgrind);
    `only`: a ctest -R regex of the tests to run."""
    paths = Paths(Path(repo).resolve())
    _check_variant(target, sanitize)
    if memcheck and (target != "x86_64" or sanitize):
        raise NativeBuildError("memcheck (valgrind) runs on the plain x86_64 build only")
    build_dir = cmake_build_dir(paths.repo, target, sanitize)
    if not (build_dir / "CTestTestfile.cmake").is_file():
        raise NativeBuildError(f"{build_dir}: no build for {_variant(target, sanitize)}; "
                               "run build_runtime first")
    if target == "aarch64" and not paths.qemu.is_file():
        raise NativeBuildError(f"{paths.qemu}: missing; run setup_native first")
    cmd = ["ctest", "--test-dir", str(build_dir), "--output-on-failure", "--no-tests=error",
           "-j", str(os.cpu_count() or 2)]
    if memcheck:
        cmd += ["-T", "memcheck"]
    if only:
        cmd += ["-R", only]
    started = time.monotonic()
    log.info("running the C tests of %s%s", _variant(target, sanitize),
             " under valgrind" if memcheck else "")
    run_command(cmd, what=f"ctest for {_variant(target, sanitize)}{' (memcheck)' if memcheck else ''}")
    log.info("C tests of %s passed (%.1fs)", _variant(target, sanitize), time.monotonic() - started)


def install_prefix(repo: Path, target: str, sanitize: bool = False) -> Path:
    """Where build_runtime installs `bin/` and `lib/` for a target."""
    return Path(repo).resolve() / "build" / _variant(target, sanitize)


def cmake_build_dir(repo: Path, target: str, sanitize: bool = False) -> Path:
    """The CMake build tree of a target (cmake_layout with the profiles' build_folder_vars)."""
    name = CONAN_ARCH[target] + ("-asan" if sanitize else "")
    return Path(repo).resolve() / "build" / "cmake" / name / "Release"


def qemu_command(repo: Path) -> list[str]:
    """The command prefix that runs an aarch64 Linux binary on this machine."""
    return [str(Paths(Path(repo).resolve()).qemu), "-L", AARCH64_LIBS]


def elf_machine(path: Path) -> int:
    """The e_machine field of an ELF file (62 = x86_64, 183 = AArch64)."""
    with open(path, "rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise NativeBuildError(f"{path}: not an ELF file")
    order = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], order)


# ----------------------------------------------------------------------------------------------
# helpers


def _variant(target: str, sanitize: bool) -> str:
    return target + ("-asan" if sanitize else "")


def _check_variant(target: str, sanitize: bool) -> None:
    if target not in CONAN_ARCH:
        raise NativeBuildError(f"unknown target {target!r}: choose one of {', '.join(CONAN_ARCH)}")
    if sanitize and target != "x86_64":
        raise NativeBuildError("the sanitizer build (ASan+UBSan) is for x86_64 only")
