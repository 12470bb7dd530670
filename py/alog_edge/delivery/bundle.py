"""Signed, reproducible bundles: `build()` writes one, `open_bundle()` reads and checks one.

Layout of dist/alog-edge-<version>-<target>.tar.gz (or .tar.xz): one top folder with MANIFEST.json
and MANIFEST.json.minisig first (an installer can check the signature before it unpacks anything),
then bin/alog-edge (stripped), lib/<soname> for every non-glibc library it loads (stripped, found
from DT_NEEDED), install.sh, service/, models/. Only regular files and folders, owned by 0:0, with
the mtime `created`; gzip without name or timestamp; gzip level 6; xz at preset 6 (a device unpacks it in
about 9 MiB of memory). The same inputs give the same bytes.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import logging
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from alog_edge.toolchain import build as native
from ..errors import AlogError
from . import elf, keys
from .bundle_open import Bundle, open_bundle  # noqa: F401 (re-exported: the delivery contract names bundle.open_bundle)
from .manifest import MANIFEST, SIGNATURE, ManifestEntry, check_version, dumps, parse, parts

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
STRIP = {"x86_64": "strip", "aarch64": "aarch64-linux-gnu-strip"}
EXTENSIONS = {"gz": ".tar.gz", "xz": ".tar.xz"}
EXECUTABLES = ("bin/alog-edge", "install.sh", "service/alog-edge.init")
SERVICE_FILES = ("alog-edge.init", "alog-edge.service")
# What GzipFile(filename="", mtime=0, compresslevel=6) writes: deflate, no flags, no time, OS unknown.


@dataclass(frozen=True)
class BundleRequest:
    target: str
    key: Path | None = None            # default: keys.default_key_path(), created when missing
    models: Path | None = None         # default: <workspace>/demo/models/onnx
    runtime: Path | None = None        # install prefix of build_runtime (default build/<target>)
    version: str | None = None         # default: <runtime version>+<10 hex of the content>
    out: Path | None = None            # default: dist/alog-edge-<version>-<target>.tar.<compress>
    compress: str = "gz"
    xz_preset: int = 6                 # what --compress xz uses; the tests take 0 (same format, faster)
    workspace: Path = Path("workspace")
    repo: Path = REPO


@dataclass
class BundleResult:
    path: Path
    version: str
    target: str
    key_id: str
    key: Path
    min_glibc: str | None
    files: list[ManifestEntry]
    parts: dict[str, dict[str, Any]]
    archive_bytes: int
    archive_sha256: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"bundle": str(self.path), "version": self.version, "target": self.target,
                "key_id": self.key_id, "min_glibc": self.min_glibc, "files": len(self.files),
                "runtime_bytes": self.parts["runtime"]["bytes"], "models_bytes": self.parts["models"]["bytes"],
                "archive_bytes": self.archive_bytes, "sha256": self.archive_sha256,
                "seconds": round(self.seconds, 2)}

    def text(self) -> str:
        rows = [f"  {e.path:<34} {e.size:>12,}  {e.mode}  {e.sha256[:16]}" for e in self.files]
        return "\n".join([
            *self.notes,
            f"{self.path}  ({self.archive_bytes:,} bytes, built in {self.seconds:.1f}s)",
            f"  version {self.version}, target {self.target}, needs glibc >= {self.min_glibc}",
            f"  signed by key {self.key_id} ({self.key}); trust it on a device with "
            f"--trust-key {keys.public_path(self.key)}",
            f"  runtime {self.parts['runtime']['bytes']:,} bytes (sha256 {self.parts['runtime']['sha256'][:16]}), "
            f"models {self.parts['models']['bytes']:,} bytes (sha256 {self.parts['models']['sha256'][:16]})",
            f"  sha256 {self.archive_sha256}", *rows])


def runtime_version(repo: Path) -> str:
    header = (repo / "runtime" / "include" / "alog_edge.h").read_text()
    return re.search(r'^#define AE_VERSION_STRING "([^"]+)"$', header, re.MULTILINE).group(1)


def build(req: BundleRequest) -> BundleResult:
    started = time.monotonic()
    if req.target not in STRIP:
        raise AlogError("--target", f"unknown target {req.target!r}: x86_64 or aarch64")
    if req.compress not in EXTENSIONS:
        raise AlogError("--compress", f"{req.compress!r}: gz or xz")
    notes: list[str] = []
    runtime = _runtime(req)
    models = _models(req)
    key = _key(req, notes)
    key_id = keys.secret_key_id(key)
    out_dir = (req.out.parent if req.out else req.repo / "dist")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle.", dir=out_dir) as tmp:
        stage = Path(tmp)
        sources = _stage(req, runtime, models, stage)
        entries, min_glibc = _entries(stage, req.target)
        digest = parts(entries)
        version = check_version(req.version) if req.version else (
            runtime_version(req.repo) + "+" + hashlib.sha256(
                (digest["runtime"]["sha256"] + digest["models"]["sha256"]).encode()).hexdigest()[:10])
        created = _created(req.repo, sources)
        manifest = {"format": 1, "version": version, "target": req.target, "key_id": key_id,
                    "min_glibc": min_glibc, "created": created,
                    "files": [e.as_json() for e in entries], "parts": digest}
        manifest_bytes = dumps(manifest)
        parse(manifest_bytes)  # what we sign is what every reader accepts
        signature = keys.sign(manifest_bytes, key, f"timestamp:{created}\tfile:{MANIFEST}\thashed\t"
                                                   f"alog-edge {version} {req.target}")
        top = f"alog-edge-{version}-{req.target}"
        out = req.out or out_dir / f"{top}{EXTENSIONS[req.compress]}"
        tmp_out = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            with open(tmp_out, "wb") as f:
                _write_tar(f, top, stage, entries, manifest_bytes, signature, created, req.compress, req.xz_preset)
            os.replace(tmp_out, out)
        except OSError as exc:
            raise AlogError(out, f"cannot write the bundle: {exc.strerror or exc}") from None
        finally:
            tmp_out.unlink(missing_ok=True)
    data = out.read_bytes()
    return BundleResult(out, version, req.target, key_id, key, min_glibc, entries, digest, len(data),
                        hashlib.sha256(data).hexdigest(), time.monotonic() - started, notes)


def _runtime(req: BundleRequest) -> Path:
    if req.runtime is not None:
        prefix = req.runtime
    else:
        prefix = native.install_prefix(req.repo, req.target)
        if _stale(req.repo, prefix / "bin" / "alog-edge"):
            log.info("bundle: building the runtime for %s", req.target)
            prefix = native.build_runtime(req.repo, req.target, quiet=True)
    binary = prefix / "bin" / "alog-edge"
    if not binary.is_file():
        raise AlogError(binary, "missing: build it with `invoke build-runtime --target " + req.target + "`")
    machine = elf.inspect(binary).machine
    if machine != req.target:
        raise AlogError(binary, f"is built for {machine}, not for the target {req.target}")
    return prefix


def _stale(repo: Path, binary: Path) -> bool:
    """True when the binary is missing or older than a source of the runtime."""
    if not binary.is_file():
        return True
    built = binary.stat().st_mtime
    sources = [repo / "conanfile.py", repo / "CMakeLists.txt", *(repo / "runtime").rglob("*"),
               *(repo / "toolchains").rglob("*")]
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


def _models(req: BundleRequest) -> Path:
    demo = req.workspace / "demo"
    models = req.models or demo / "models" / "onnx"
    if req.models is None and not (models / "golden.json").is_file() and (demo / "deeplog.pth").is_file():
        from alog_edge.export import convert as export  # torch: only when converting
        log.info("bundle: converting the models of %s into %s", demo, models)
        export.convert(export.ConvertRequest(
            vocab=demo / "vocab.json", parser=demo / "parser.json", output_dir=models,
            deeplog_model=demo / "deeplog.pth",
            mscred_model=demo / "mscred.pth" if (demo / "mscred.pth").is_file() else None,
            sequences=_present(demo / "sequences.parquet"), counts=_present(demo / "counts.parquet")))
    if not models.is_dir():
        raise AlogError(models, "no model directory here: run `invoke demo` or `invoke convert`, "
                                "or name one with --models")
    for needed in ("golden.json", "vocab.json", "parser.json"):
        if not (models / needed).is_file():
            raise AlogError(models / needed, "missing: not a model directory from `invoke convert`")
    if not any(models.glob("*.onnx")):
        raise AlogError(models, "holds no *.onnx model")
    return models


def _present(path: Path) -> Path | None:
    return path if path.exists() else None


def _key(req: BundleRequest, notes: list[str]) -> Path:
    if req.key is not None:
        return req.key
    key = keys.default_key_path()
    if not key.exists():
        pair = keys.generate(key)
        notes.append(f"created the signing key {key} (id {pair.key_id}); back it up, "
                     "and keep it out of repositories")
    return key


def _stage(req: BundleRequest, runtime: Path, models: Path, stage: Path) -> list[Path]:
    """Copy every file of the bundle into `stage`; returns the source files."""
    sources: list[Path] = []
    binary = runtime / "bin" / "alog-edge"
    (stage / "bin").mkdir()
    (stage / "lib").mkdir()
    _strip(req.target, binary, stage / "bin" / "alog-edge", "--strip-all")
    sources.append(binary)
    for soname, path in sorted(elf.closure(binary, req.target, [runtime / "lib"]).items()):
        _strip(req.target, path, stage / "lib" / soname, "--strip-unneeded")
        sources.append(path)
    deploy = req.repo / "deploy"
    shutil.copyfile(deploy / "install.sh", stage / "install.sh")
    (stage / "service").mkdir()
    for name in SERVICE_FILES:
        shutil.copyfile(deploy / name, stage / "service" / name)
    sources += [deploy / "install.sh", *(deploy / n for n in SERVICE_FILES)]
    for path in sorted(models.rglob("*")):
        rel = path.relative_to(models)
        if any(part.startswith(".") for part in rel.parts) or path.suffix == ".log":
            continue  # hidden files and conversion logs are not for the device
        if path.is_dir():
            continue
        if not path.is_file():
            raise AlogError(path, "not a regular file: refused in a bundle")
        if keys.refuses_as_payload(path):
            raise AlogError(path, "is a minisign secret key: refusing to put a key into a bundle")
        dest = stage / "models" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        sources.append(path)
    return sources


def _strip(target: str, source: Path, dest: Path, how: str) -> None:
    try:
        subprocess.run([STRIP[target], how, "-o", str(dest), str(source)], check=True,
                       capture_output=True, text=True)
    except FileNotFoundError:
        raise AlogError(None, f"{STRIP[target]} not found: run `invoke setup`") from None
    except subprocess.CalledProcessError as exc:
        raise AlogError(source, f"{STRIP[target]} failed: {exc.stderr.strip()}") from None


def _entries(stage: Path, target: str) -> tuple[list[ManifestEntry], str | None]:
    entries = []
    newest: tuple[int, ...] | None = None
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        rel = path.relative_to(stage).as_posix()
        machine = None
        if elf.is_elf(path):
            info = elf.inspect(path)
            if info.machine != target:
                raise AlogError(rel, f"is built for {info.machine}, not for the target {target}")
            machine = info.machine
            if info.glibc is not None:
                newest = info.glibc if newest is None else max(newest, info.glibc)
        data = path.read_bytes()
        mode = "0755" if rel in EXECUTABLES else "0644"
        entries.append(ManifestEntry(rel, len(data), mode, hashlib.sha256(data).hexdigest(), machine))
    return sorted(entries, key=lambda e: e.path), elf.version_text(newest)


def _created(repo: Path, sources: list[Path]) -> int:
    """SOURCE_DATE_EPOCH, else the newest of the last commit's time and the model files' mtimes
    (never the build time: a fresh clone gives the same bundle)."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        try:
            return int(os.environ["SOURCE_DATE_EPOCH"])
        except ValueError:
            raise AlogError("SOURCE_DATE_EPOCH", "not an integer") from None
    times = [int(p.stat().st_mtime) for p in sources if repo not in p.resolve().parents]
    commit = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%ct"], capture_output=True,
                            text=True)
    if commit.returncode == 0 and commit.stdout.strip().isdigit():
        times.append(int(commit.stdout))
    else:  # not a git checkout: the newest input of the runtime too
        times += [int(p.stat().st_mtime) for p in sources]
    return max(times)


def _tarinfo(name: str, size: int, mode: int, mtime: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = 0 if directory else size
    info.mode, info.mtime = mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _write_tar(f: BinaryIO, top: str, stage: Path, entries: list[ManifestEntry], manifest_bytes: bytes,
               signature: bytes, created: int, compress: str, xz_preset: int = 6) -> None:
    stream: Any = (gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=6)
                   if compress == "gz" else lzma.LZMAFile(f, "wb", format=lzma.FORMAT_XZ, preset=xz_preset))
    with stream, tarfile.open(fileobj=stream, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(_tarinfo(top, 0, 0o755, created, directory=True))
        for name, data in ((MANIFEST, manifest_bytes), (SIGNATURE, signature)):
            tar.addfile(_tarinfo(f"{top}/{name}", len(data), 0o644, created), io.BytesIO(data))
        folders = sorted({"/".join(e.path.split("/")[:i]) for e in entries
                          for i in range(1, e.path.count("/") + 1)})
        items = [(d, None) for d in folders] + [(e.path, e) for e in entries]
        for name, entry in sorted(items, key=lambda item: item[0]):
            if entry is None:
                tar.addfile(_tarinfo(f"{top}/{name}", 0, 0o755, created, directory=True))
                continue
            with open(stage / name, "rb") as data:
                tar.addfile(_tarinfo(f"{top}/{name}", entry.size, int(entry.mode, 8), created), data)


# ----------------------------------------------------------------------------------------------
