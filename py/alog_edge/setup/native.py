"""Native build of the C runtime: toolchains, pinned registry artifacts, Conan and CMake.

The invoke tasks call three functions:

- `setup_native(repo)`: installs the Debian packages of the native build, fetches the registry
  artifacts that the local Conan recipes repackage (each checked against its sha256 pin),
  extracts trixie's static qemu-aarch64 into `.tools/qemu/`, and exports the recipes into the
  project-local Conan home `.tools/conan/` (remotes disabled). Idempotent and fast on a second run.
- `build_runtime(repo, target, sanitize=False)`: `conan build` with the explicit profiles in
  `toolchains/`, then `cmake --install` into `build/<target>/` (`build/x86_64-asan/` for the
  sanitizer build): `bin/alog-edge`, `lib/` (its shared libraries), `share/licenses/`.
- `run_ctest(repo, target, sanitize=False, memcheck=False)`: the C tests of a build; aarch64 runs
  them under qemu, `memcheck` under valgrind (x86_64).

and two more drive the libFuzzer targets of `runtime/fuzz/`:

- `build_fuzzers(repo)`: builds them with clang (ASan+UBSan+libFuzzer) into `build/fuzz/`,
  against the Conan dependencies of the x86_64 build.
- `run_fuzzer(repo, name, seconds)`: runs one for a bounded time from its committed seed corpus;
  a crash raises NativeBuildError naming the input that reproduces it.

Artifacts are fetched only through the ordinary clients, by package name: `pip download` for the
onnxruntime wheels, `apt-get download` for Debian packages. Debian packages of another arch or
release (bookworm arm64, trixie) come through a private apt state under `.tools/apt/` whose
sources are derived from the system's, so the system's apt configuration is never changed.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from alog_edge.errors import AlogError

log = logging.getLogger(__name__)

# Build target -> Conan arch, host profile (toolchains/), ELF e_machine of its binaries.
CONAN_ARCH: dict[str, str] = {"x86_64": "x86_64", "aarch64": "armv8"}
HOST_PROFILE: dict[str, str] = {"x86_64": "linux-x86_64", "aarch64": "linux-armv8"}
ELF_MACHINE: dict[str, int] = {"x86_64": 62, "aarch64": 183}

# Debian packages the native build needs beyond a fresh machine (Python 3.11, gcc, cmake, git, apt).
APT_PACKAGES: tuple[str, ...] = (
    "gcc", "g++", "cmake", "ninja-build", "binutils",
    "gcc-aarch64-linux-gnu", "g++-aarch64-linux-gnu", "libc6-dev-arm64-cross",
    "clang", "libclang-rt-14-dev",  # the fuzzers (libFuzzer, sanitizer runtimes)
    "valgrind",
    "qemu-system-arm", "e2fsprogs",  # the emulated aarch64 board (invoke board)
)

# Local recipes under toolchains/recipes/, in export order (alog-repack is their python_requires).
RECIPES: tuple[str, ...] = ("alog-repack", "onnxruntime", "cjson", "pcre2", "libsodium")
RUNTIME_REQUIRES: tuple[str, ...] = ("onnxruntime", "cjson", "pcre2", "libsodium")

# Trixie's qemu-user ships a static qemu-aarch64 that runs onnxruntime (bookworm's 7.2 crashes in
# its CPU detection). Only that one file is extracted; the package is never installed.
QEMU_DEB: dict[str, Any] = {
    "file": "qemu-user_10.0.13+ds-0+deb13u1_amd64.deb",
    "sha256": "ca6ede739327a20ae5a3498230c8a3a9a072c586e131bc6bcc1201eb1725e336",
    "apt": {"package": "qemu-user", "version": "1:10.0.13+ds-0+deb13u1", "arch": "amd64",
            "suite": "trixie"},
}
QEMU_MEMBER = "usr/bin/qemu-aarch64"
AARCH64_LIBS = "/usr/aarch64-linux-gnu"  # qemu -L: the cross libc/libstdc++ of libc6-dev-arm64-cross


class NativeBuildError(AlogError):
    """A step of the native build failed; the message is one line that says which and why."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


@dataclass(frozen=True)
class Paths:
    repo: Path

    @property
    def tools(self) -> Path:
        return self.repo / ".tools"

    @property
    def conan_home(self) -> Path:
        return self.tools / "conan"

    @property
    def downloads(self) -> Path:
        return self.tools / "downloads"

    @property
    def apt(self) -> Path:
        return self.tools / "apt"

    @property
    def qemu(self) -> Path:
        return self.tools / "qemu" / "qemu-aarch64"

    @property
    def toolchains(self) -> Path:
        return self.repo / "toolchains"

    @property
    def recipes(self) -> Path:
        return self.toolchains / "recipes"


# ----------------------------------------------------------------------------------------------
# Public entry points


def setup_native(repo: Path) -> None:
    """Install and fetch everything the native build needs; a no-op (well under a second) when done."""
    paths = Paths(Path(repo).resolve())
    started = time.monotonic()
    install_apt_packages()
    fetch_artifacts(paths.repo)
    install_qemu(paths.repo)
    from alog_edge.delivery import board_image  # the emulated board's kernel and initramfs
    board_image.fetch_board_image(paths.repo)
    export_recipes(paths.repo)
    log.info("native setup: ready in %.1fs", time.monotonic() - started)


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
    _conan(paths, *args, what=f"conan build for {_variant(target, sanitize)}", quiet=quiet)
    prefix = install_prefix(paths.repo, target, sanitize)
    if prefix.exists():
        shutil.rmtree(prefix)
    _run(["cmake", "--install", str(cmake_build_dir(paths.repo, target, sanitize)),
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
    _run(cmd, what=f"ctest for {_variant(target, sanitize)}{' (memcheck)' if memcheck else ''}")
    log.info("C tests of %s passed (%.1fs)", _variant(target, sanitize), time.monotonic() - started)


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
    _run([sys.executable, str(paths.repo / "runtime" / "tests" / "make_onnx_fixtures.py"), str(fixtures)],
         what="the fuzzers' ONNX fixtures", quiet=True)
    _run(["cmake", "-S", str(paths.repo / "runtime" / "fuzz"), "-B", str(out), "-G", "Ninja",
          "-DCMAKE_C_COMPILER=clang", "-DCMAKE_BUILD_TYPE=Release",
          f"-DCMAKE_PREFIX_PATH={generators}", f"-DAE_FUZZ_FIXTURES={fixtures}"],
         what="cmake configure of the fuzzers", quiet=True)
    _run(["cmake", "--build", str(out)], what="cmake build of the fuzzers", quiet=True)
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
# Debian packages of this machine


def install_apt_packages(packages: Sequence[str] = APT_PACKAGES) -> None:
    """apt-get install the packages that are not installed yet (apt-get update first)."""
    missing = sorted(set(packages) - _dpkg_installed(packages))
    if not missing:
        log.info("debian packages: up to date")
        return
    log.info("debian packages: installing %s", " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(["apt-get", "update", "-qq"], what="apt-get update", env=env, quiet=True)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
         what="apt-get install " + " ".join(missing), env=env, quiet=True)


def _dpkg_installed(packages: Sequence[str]) -> set[str]:
    """The packages among `packages` that dpkg knows as installed (for the native arch)."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],
                            capture_output=True, text=True)  # exit 1 when one is unknown
    return {line.split()[0] for line in result.stdout.splitlines()
            if line.endswith(" installed")}


# ----------------------------------------------------------------------------------------------
# Registry artifacts


def recipe_artifacts(repo: Path) -> list[dict[str, Any]]:
    """Every artifact pinned by the recipes' conandata.yml (all versions and arches), deduplicated."""
    import yaml  # PyYAML comes with conan

    found: dict[str, dict[str, Any]] = {}
    for name in RECIPES:
        data_file = Paths(Path(repo)).recipes / name / "conandata.yml"
        if not data_file.is_file():
            continue
        data = yaml.safe_load(data_file.read_text()) or {}
        for per_arch in (data.get("artifacts") or {}).values():
            for entries in per_arch.values():
                for entry in entries:
                    known = found.setdefault(entry["file"], entry)
                    if known["sha256"] != entry["sha256"]:
                        raise NativeBuildError(f"{data_file}: {entry['file']} is pinned twice "
                                               "with different sha256")
    return list(found.values())


def fetch_artifacts(repo: Path) -> None:
    """Fetch the recipes' artifacts and the qemu-user package into .tools/downloads/, verified."""
    paths = Paths(Path(repo).resolve())
    wanted = recipe_artifacts(paths.repo) + [QEMU_DEB]
    missing = [a for a in wanted if not _verified(paths.downloads / a["file"], a["sha256"])]
    if not missing:
        log.info("artifacts: %d verified in %s", len(wanted), paths.downloads)
        return
    paths.downloads.mkdir(parents=True, exist_ok=True)
    wheels = [a for a in missing if "pip" in a]
    debs = [a for a in missing if "apt" in a]
    for artifact in wheels:
        _pip_download(paths, artifact)
    if debs:
        _apt_download(paths, debs)
    for artifact in missing:
        _check_sha256(paths.downloads / artifact["file"], artifact["sha256"])
    log.info("artifacts: fetched %s", ", ".join(a["file"] for a in missing))


def _verified(path: Path, sha256: str) -> bool:
    return path.is_file() and _sha256(path) == sha256


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(path: Path, sha256: str) -> None:
    actual = _sha256(path)
    if actual != sha256:
        path.replace(path.with_name(path.name + ".rejected"))
        raise NativeBuildError(f"{path}: sha256 mismatch: pinned {sha256}, got {actual} "
                               f"(kept as {path.name}.rejected)")


def _pip_download(paths: Paths, artifact: dict[str, Any]) -> None:
    pip = artifact["pip"]
    log.info("artifacts: pip download %s for %s", pip["requirement"], pip["platform"])
    with tempfile.TemporaryDirectory(dir=paths.downloads) as tmp:
        _run([sys.executable, "-m", "pip", "download", pip["requirement"], "--no-deps",
              "--only-binary=:all:", "--platform", pip["platform"],
              "--python-version", pip["python_version"], "--disable-pip-version-check", "-q",
              "-d", tmp], what=f"pip download {pip['requirement']} ({pip['platform']})", quiet=True)
        got = Path(tmp) / artifact["file"]
        if not got.is_file():
            names = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise NativeBuildError(f"pip download {pip['requirement']} ({pip['platform']}) gave "
                                   f"{names}, not the pinned {artifact['file']}")
        got.replace(paths.downloads / artifact["file"])


def _apt_download(paths: Paths, artifacts: list[dict[str, Any]]) -> None:
    suites = _write_apt_sources(paths, artifacts)
    log.info("artifacts: apt-get update (private state in %s: %s)", paths.apt, ", ".join(suites))
    _run(["apt-get", *_apt_options(paths), "-qq", "update"], what="apt-get update (private state)",
         quiet=True)
    specs = [f"{a['apt']['package']}:{a['apt']['arch']}={a['apt']['version']}" for a in artifacts]
    log.info("artifacts: apt-get download %s", " ".join(specs))
    with tempfile.TemporaryDirectory(dir=paths.downloads) as tmp:
        _run(["apt-get", *_apt_options(paths), "-qq", "download", *specs],
             what=f"apt-get download {' '.join(specs)} (are the pinned versions still on the mirror?)",
             cwd=tmp, quiet=True)
        for artifact in artifacts:
            apt = artifact["apt"]
            # apt-get names the file <package>_<version, ':' as %3a>_<arch>.deb
            got = Path(tmp) / f"{apt['package']}_{apt['version'].replace(':', '%3a')}_{apt['arch']}.deb"
            if not got.is_file():
                raise NativeBuildError(f"apt-get download {apt['package']}:{apt['arch']}="
                                       f"{apt['version']} did not leave {got.name}")
            got.replace(paths.downloads / artifact["file"])


def _apt_options(paths: Paths) -> list[str]:
    state = paths.apt / "state"
    options = {
        "Dir::Etc::sourcelist": str(paths.apt / "sources.list"),
        "Dir::Etc::sourceparts": "-",
        "Dir::Etc::preferencesparts": "-",
        "Dir::State": str(state),
        "Dir::State::status": str(state / "status"),
        "Dir::Cache": str(paths.apt / "cache"),
    }
    args: list[str] = []
    for key, value in options.items():
        args += ["-o", f"{key}={value}"]
    for arch in ("amd64", "arm64"):
        args += ["-o", f"APT::Architectures::={arch}"]
    if os.geteuid() == 0:  # downloads land in a folder that apt's _apt user may not write
        args += ["-o", "APT::Sandbox::User=root"]
    return args


def _write_apt_sources(paths: Paths, artifacts: Iterable[dict[str, Any]]) -> list[str]:
    """Write .tools/apt/sources.list for the suites (and arches) the artifacts come from."""
    mirror, security, keyring = system_debian_mirrors()
    arches: dict[str, set[str]] = {}
    for artifact in artifacts:
        arches.setdefault(artifact["apt"]["suite"], set()).add(artifact["apt"]["arch"])
    lines = ["# Written by alog_edge.native: a private apt source list (see _apt_options)."]
    for suite, archs in sorted(arches.items()):
        opts = f"arch={','.join(sorted(archs))}" + (f" signed-by={keyring}" if keyring else "")
        lines.append(f"deb [{opts}] {mirror} {suite} main")
        lines.append(f"deb [{opts}] {mirror} {suite}-updates main")
        if security:
            lines.append(f"deb [{opts}] {security} {suite}-security main")
    for sub in ("state/lists/partial", "cache/archives/partial"):
        (paths.apt / sub).mkdir(parents=True, exist_ok=True)
    (paths.apt / "state" / "status").touch()
    (paths.apt / "sources.list").write_text("\n".join(lines) + "\n")
    return sorted(arches)


def system_debian_mirrors(etc: Path = Path("/etc/apt")) -> tuple[str, str | None, str | None]:
    """(mirror, security mirror or None, keyring or None) from the system's Debian apt sources."""
    entries: list[dict[str, str]] = []
    for sources in sorted((etc / "sources.list.d").glob("*.sources")):
        entries += _deb822_entries(sources.read_text())
    for listfile in [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]:
        if listfile.is_file():
            entries += _one_line_entries(listfile.read_text())
    mirror = security = keyring = None
    for entry in entries:
        if "deb" not in entry.get("types", "").split() or "main" not in entry.get("components", ""):
            continue
        uri = entry.get("uris", "").split()
        suites = entry.get("suites", "").split()
        if not uri or not suites:
            continue
        if any(s.endswith("-security") for s in suites):
            security = security or uri[0].rstrip("/")
        elif mirror is None:
            mirror = uri[0].rstrip("/")
            keyring = entry.get("signed-by") or None
    if mirror is None:
        raise NativeBuildError(f"{etc}: no Debian mirror with a main component in the apt sources")
    if keyring and not Path(keyring).is_file():
        keyring = None
    return mirror, security, keyring


def _deb822_entries(text: str) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    for stanza in text.split("\n\n"):
        entry: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and key:
                entry[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            entry[key] = value.strip()
        if entry and entry.get("enabled", "yes").lower() != "no":
            entries.append(entry)
    return entries


def _one_line_entries(text: str) -> list[dict[str, str]]:
    entries = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        options = {}
        if words[1].startswith("["):
            end = next(i for i, w in enumerate(words) if w.endswith("]"))
            for opt in " ".join(words[1:end + 1]).strip("[]").split():
                k, _, v = opt.partition("=")
                options[k.lower()] = v
            words = [words[0], *words[end + 1:]]
        if len(words) >= 4:
            entries.append({"types": "deb", "uris": words[1], "suites": words[2],
                            "components": " ".join(words[3:]),
                            "signed-by": options.get("signed-by", "")})
    return entries


# ----------------------------------------------------------------------------------------------
# qemu


def install_qemu(repo: Path) -> Path:
    """Extract usr/bin/qemu-aarch64 from the pinned qemu-user package into .tools/qemu/."""
    paths = Paths(Path(repo).resolve())
    stamp = paths.qemu.with_name("qemu-aarch64.from")
    if paths.qemu.is_file() and stamp.is_file() and stamp.read_text() == QEMU_DEB["sha256"]:
        log.info("qemu: %s up to date", paths.qemu)
        return paths.qemu
    deb = paths.downloads / QEMU_DEB["file"]
    _check_sha256(deb, QEMU_DEB["sha256"])
    paths.qemu.parent.mkdir(parents=True, exist_ok=True)
    log.info("qemu: extracting %s from %s", QEMU_MEMBER, deb.name)
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                if member.name.lstrip("./") == QEMU_MEMBER and member.isfile():
                    source = tar.extractfile(member)
                    assert source is not None
                    tmp = paths.qemu.with_name("qemu-aarch64.tmp")
                    with open(tmp, "wb") as out:
                        shutil.copyfileobj(source, out)
                    tmp.chmod(0o755)
                    tmp.replace(paths.qemu)
                    break
            else:
                raise NativeBuildError(f"{deb}: has no {QEMU_MEMBER}")
        proc.stdout.read()
    if proc.returncode != 0:
        raise NativeBuildError(f"dpkg-deb --fsys-tarfile {deb} failed (exit {proc.returncode})")
    stamp.write_text(QEMU_DEB["sha256"])
    return paths.qemu


# ----------------------------------------------------------------------------------------------
# Conan


def export_recipes(repo: Path) -> None:
    """Prepare the project-local Conan home and export the local recipes into it."""
    paths = Paths(Path(repo).resolve())
    _ensure_conan_home(paths)
    digest = hashlib.sha256()
    for name in RECIPES:
        for file in sorted((paths.recipes / name).rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(paths.recipes)).encode() + b"\0")
                digest.update(file.read_bytes())
    stamp = paths.conan_home / "alog-edge-recipes.sha256"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        log.info("conan: recipes exported and up to date")
        return
    for name in RECIPES:
        _conan(paths, "export", str(paths.recipes / name), what=f"conan export {name}", quiet=True)
    stamp.write_text(digest.hexdigest())
    log.info("conan: exported %s into %s", ", ".join(RECIPES), paths.conan_home)


def _ensure_conan_home(paths: Paths) -> None:
    if importlib.util.find_spec("conan") is None:
        raise NativeBuildError(f"conan is not installed for {sys.executable}: pip install conan (2.x)")
    stamp = paths.conan_home / "alog-edge-home"
    if stamp.is_file():
        return
    paths.conan_home.mkdir(parents=True, exist_ok=True)
    (paths.conan_home / "global.conf").write_text(
        "# Project-local Conan home of alog-edge (written by alog_edge.native).\n"
        "core:non_interactive = True\n")
    remotes = json.loads(_conan(paths, "remote", "list", "--format=json", what="conan remote list",
                                capture=True))
    for remote in remotes:
        if remote.get("enabled", True):
            _conan(paths, "remote", "disable", remote["name"],
                   what=f"conan remote disable {remote['name']}", quiet=True)
    stamp.write_text("remotes disabled: every dependency is a local recipe in toolchains/recipes\n")


def _conan(paths: Paths, *args: str, what: str, capture: bool = False, quiet: bool = False) -> str:
    env = dict(os.environ, CONAN_HOME=str(paths.conan_home))
    return _run([sys.executable, "-m", "conans.conan", *args], what=what, env=env,
                capture=capture, quiet=quiet, cwd=paths.repo)


# ----------------------------------------------------------------------------------------------
# helpers


def _variant(target: str, sanitize: bool) -> str:
    return target + ("-asan" if sanitize else "")


def _check_variant(target: str, sanitize: bool) -> None:
    if target not in CONAN_ARCH:
        raise NativeBuildError(f"unknown target {target!r}: choose one of {', '.join(CONAN_ARCH)}")
    if sanitize and target != "x86_64":
        raise NativeBuildError("the sanitizer build (ASan+UBSan) is for x86_64 only")


def _run(cmd: Sequence[str], *, what: str, cwd: Path | str | None = None,
         env: dict[str, str] | None = None, capture: bool = False, quiet: bool = False) -> str:
    """Run a command; raise NativeBuildError naming `what` on failure.

    capture: return stdout. quiet: hide the output unless the command fails (then it is logged).
    """
    try:
        result = subprocess.run(list(cmd), cwd=cwd, env=env, text=True,
                                stdout=subprocess.PIPE if capture or quiet else None,
                                stderr=subprocess.STDOUT if quiet and not capture else
                                (subprocess.PIPE if capture else None))
    except FileNotFoundError as exc:
        raise NativeBuildError(f"{what}: {exc.filename} not found") from None
    if result.returncode != 0:
        for text in (result.stdout, getattr(result, "stderr", None)):
            if quiet and text:
                log.error("%s", text.rstrip())
        raise NativeBuildError(f"{what} failed (exit {result.returncode})")
    return result.stdout if capture else ""

