"""What the native build needs, prepared once and checked fast afterwards: `setup_native(repo)`.

It installs the Debian packages of the native build, fetches the registry artifacts that the local
Conan recipes repackage (each checked against its sha256 pin), extracts trixie's static
qemu-aarch64 into `.tools/qemu/`, and exports the recipes into the project-local Conan home
`.tools/conan/` (remotes disabled). Idempotent and fast on a second run.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from alog_edge.toolchain.deps import (NativeBuildError, Paths, _apt_download, _check_sha256, _verified, conan,
                                      install_apt_packages, run_command)

log = logging.getLogger(__name__)


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


# ----------------------------------------------------------------------------------------------
# Public entry points


def setup_native(repo: Path) -> None:
    """Install and fetch everything the native build needs; a no-op (well under a second) when done."""
    paths = Paths(Path(repo).resolve())
    started = time.monotonic()
    install_apt_packages()
    fetch_artifacts(paths.repo)
    install_qemu(paths.repo)
    export_recipes(paths.repo)
    log.info("native setup: ready in %.1fs", time.monotonic() - started)


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


def _pip_download(paths: Paths, artifact: dict[str, Any]) -> None:
    pip = artifact["pip"]
    log.info("artifacts: pip download %s for %s", pip["requirement"], pip["platform"])
    with tempfile.TemporaryDirectory(dir=paths.downloads) as tmp:
        run_command([sys.executable, "-m", "pip", "download", pip["requirement"], "--no-deps",
              "--only-binary=:all:", "--platform", pip["platform"],
              "--python-version", pip["python_version"], "--disable-pip-version-check", "-q",
              "-d", tmp], what=f"pip download {pip['requirement']} ({pip['platform']})", quiet=True)
        got = Path(tmp) / artifact["file"]
        if not got.is_file():
            names = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise NativeBuildError(f"pip download {pip['requirement']} ({pip['platform']}) gave "
                                   f"{names}, not the pinned {artifact['file']}")
        got.replace(paths.downloads / artifact["file"])


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
        conan(paths, "export", str(paths.recipes / name), what=f"conan export {name}", quiet=True)
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
    remotes = json.loads(conan(paths, "remote", "list", "--format=json", what="conan remote list",
                                capture=True))
    for remote in remotes:
        if remote.get("enabled", True):
            conan(paths, "remote", "disable", remote["name"],
                   what=f"conan remote disable {remote['name']}", quiet=True)
    stamp.write_text("remotes disabled: every dependency is a local recipe in toolchains/recipes\n")
