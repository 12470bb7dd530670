"""MANIFEST.json of a bundle: what it lists, how it is written, and how it is checked when read.

    {"format": 1, "version": "0.1.0+1a2b3c4d5e", "target": "x86_64", "key_id": "5D976E89EA2D2E95",
     "min_glibc": "2.36", "created": 1764800000,
     "files": [{"path": "bin/alog-edge", "size": 123, "mode": "0755", "sha256": "...",
                "elf_machine": "x86_64"}, ...],
     "parts": {"runtime": {"sha256": "...", "bytes": N}, "models": {"sha256": "...", "bytes": N}}}

`files` holds every file of the bundle but MANIFEST.json and its signature, sorted by path. A part's
sha256 is the sha256 of `sha256sum`'s output for its files in path order ("<sha256>  <path>\\n"
lines), so a device can recompute it with busybox; "models" is every file under models/,
"runtime" all the others.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import AlogError

FORMAT = 1
TARGETS = ("x86_64", "aarch64")
MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.json.minisig"
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")
_PATH_RE = re.compile(r"^[0-9A-Za-z_+.@-]+(/[0-9A-Za-z_+.@-]+)*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KEY_ID = re.compile(r"^[0-9A-F]{16}$")
_GLIBC = re.compile(r"^\d+\.\d+$")
MODES = ("0644", "0755")


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    size: int
    mode: str
    sha256: str
    elf_machine: str | None = None

    @property
    def part(self) -> str:
        return "models" if self.path.startswith("models/") else "runtime"

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "mode": self.mode, "sha256": self.sha256,
                "elf_machine": self.elf_machine}


def part_digest(entries: Iterable[ManifestEntry]) -> dict[str, Any]:
    listed = sorted(entries, key=lambda e: e.path)
    text = "".join(f"{e.sha256}  {e.path}\n" for e in listed)
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "bytes": sum(e.size for e in listed)}


def parts(entries: list[ManifestEntry]) -> dict[str, dict[str, Any]]:
    return {name: part_digest(e for e in entries if e.part == name) for name in ("runtime", "models")}


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise AlogError("--version", f"{version!r} is not a version: letters, digits and ._+- "
                                     "(at most 64, starting with a letter or digit)")
    return version


def dumps(manifest: dict[str, Any]) -> bytes:
    """The bytes that are signed: fixed key order, one file per line, a final newline."""
    head = {k: manifest[k] for k in ("format", "version", "target", "key_id", "min_glibc", "created")}
    lines = ["{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()) + ","]
    files = manifest["files"]
    lines.append(' "files": [')
    for i, f in enumerate(files):
        lines.append("  " + json.dumps(f) + ("," if i + 1 < len(files) else ""))
    lines.append(" ],")
    lines.append(' "parts": ' + json.dumps(manifest["parts"], sort_keys=True) + "}")
    return ("\n".join(lines) + "\n").encode()


def parse(data: bytes, where: str = MANIFEST) -> tuple[dict[str, Any], list[ManifestEntry]]:
    """Parse and check a manifest; any problem is one AlogError naming `where`."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AlogError(where, f"not JSON ({exc})") from None

    def bad(msg: str) -> AlogError:
        return AlogError(where, msg)

    if not isinstance(doc, dict):
        raise bad("not a JSON object")
    if doc.get("format") != FORMAT:
        raise bad(f"format {doc.get('format')!r}, this tool reads format {FORMAT}")
    version = doc.get("version")
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise bad(f"bad version {version!r}")
    if doc.get("target") not in TARGETS:
        raise bad(f"bad target {doc.get('target')!r}")
    if not isinstance(doc.get("key_id"), str) or not _KEY_ID.match(doc["key_id"]):
        raise bad(f"bad key_id {doc.get('key_id')!r}")
    if doc.get("min_glibc") is not None and not (isinstance(doc["min_glibc"], str)
                                                 and _GLIBC.match(doc["min_glibc"])):
        raise bad(f"bad min_glibc {doc.get('min_glibc')!r}")
    if not isinstance(doc.get("created"), int) or isinstance(doc["created"], bool) or doc["created"] < 0:
        raise bad("bad created time")
    files = doc.get("files")
    if not isinstance(files, list) or not files:
        raise bad("no files listed")
    entries: list[ManifestEntry] = []
    for item in files:
        if not isinstance(item, dict):
            raise bad("a files entry is not an object")
        path, size, mode, sha = item.get("path"), item.get("size"), item.get("mode"), item.get("sha256")
        if not isinstance(path, str) or not _PATH_RE.match(path) or ".." in path.split("/"):
            raise bad(f"bad file path {path!r}")
        if path in (MANIFEST, SIGNATURE):
            raise bad(f"{path} lists itself")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad(f"{path}: bad size")
        if mode not in MODES:
            raise bad(f"{path}: mode {mode!r} (0644 or 0755)")
        if not isinstance(sha, str) or not _HEX64.match(sha):
            raise bad(f"{path}: bad sha256")
        machine = item.get("elf_machine")
        if machine is not None and machine not in TARGETS:
            raise bad(f"{path}: bad elf_machine {machine!r}")
        entries.append(ManifestEntry(path, size, mode, sha, machine))
    paths = [e.path for e in entries]
    if paths != sorted(paths) or len(set(paths)) != len(paths):
        raise bad("files are not sorted by path, or one is listed twice")
    prefixes = {p.rsplit("/", 1)[0] for p in paths if "/" in p}
    clash = next((p for p in paths if p in prefixes), None)
    if clash:
        raise bad(f"{clash} is listed as a file and as a folder")
    if "bin/alog-edge" not in paths:
        raise bad("bin/alog-edge is not listed")
    if doc.get("parts") != parts(entries):
        raise bad("parts do not match the files listed")
    wrong = [e.path for e in entries if e.elf_machine not in (None, doc["target"])]
    if wrong:
        raise bad(f"{wrong[0]} is built for {next(e for e in entries if e.path == wrong[0]).elf_machine}, "
                  f"not for the bundle's target {doc['target']}")
    return doc, entries
