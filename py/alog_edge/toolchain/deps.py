"""The native build's foundations: paths under `.tools/`, the one error type, running a command, and
Debian packages (this machine's, and those of another arch or release through a private apt state).

Artifacts are fetched only through the ordinary clients, by package name: `pip download` for the
onnxruntime wheels, `apt-get download` for Debian packages. Debian packages of another arch or
release (bookworm arm64, trixie) come through a private apt state under `.tools/apt/` whose
sources are derived from the system's, so the system's apt configuration is never changed.
"""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from alog_edge.errors import AlogError

log = logging.getLogger(__name__)


# Debian packages the native build needs beyond a fresh machine (Python 3.11, gcc, cmake, git, apt).
APT_PACKAGES: tuple[str, ...] = (
    "gcc", "g++", "cmake", "ninja-build", "binutils",
    "gcc-aarch64-linux-gnu", "g++-aarch64-linux-gnu", "libc6-dev-arm64-cross",
    "clang", "libclang-rt-14-dev",  # the fuzzers (libFuzzer, sanitizer runtimes)
    "valgrind",
    "qemu-system-arm", "e2fsprogs",  # the emulated aarch64 board (invoke board)
)


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
# Debian packages of this machine


def install_apt_packages(packages: Sequence[str] = APT_PACKAGES) -> None:
    """apt-get install the packages that are not installed yet (apt-get update first)."""
    missing = sorted(set(packages) - _dpkg_installed(packages))
    if not missing:
        log.info("debian packages: up to date")
        return
    log.info("debian packages: installing %s", " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_command(["apt-get", "update", "-qq"], what="apt-get update", env=env, quiet=True)
    run_command(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
         what="apt-get install " + " ".join(missing), env=env, quiet=True)


def _dpkg_installed(packages: Sequence[str]) -> set[str]:
    """The packages among `packages` that dpkg knows as installed (for the native arch)."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],
                            capture_output=True, text=True)  # exit 1 when one is unknown
    return {line.split()[0] for line in result.stdout.splitlines()
            if line.endswith(" installed")}


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


def _apt_download(paths: Paths, artifacts: list[dict[str, Any]]) -> None:
    suites = _write_apt_sources(paths, artifacts)
    log.info("artifacts: apt-get update (private state in %s: %s)", paths.apt, ", ".join(suites))
    run_command(["apt-get", *_apt_options(paths), "-qq", "update"], what="apt-get update (private state)",
         quiet=True)
    specs = [f"{a['apt']['package']}:{a['apt']['arch']}={a['apt']['version']}" for a in artifacts]
    log.info("artifacts: apt-get download %s", " ".join(specs))
    with tempfile.TemporaryDirectory(dir=paths.downloads) as tmp:
        run_command(["apt-get", *_apt_options(paths), "-qq", "download", *specs],
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


def conan(paths: Paths, *args: str, what: str, capture: bool = False, quiet: bool = False) -> str:
    env = dict(os.environ, CONAN_HOME=str(paths.conan_home))
    return run_command([sys.executable, "-m", "conans.conan", *args], what=what, env=env,
                capture=capture, quiet=quiet, cwd=paths.repo)


def run_command(cmd: Sequence[str], *, what: str, cwd: Path | str | None = None,
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
