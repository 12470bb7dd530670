"""Reading a bundle: `open_bundle()` checks its structure and every file against MANIFEST.json.

The archive is read whole into memory (at most 1 GiB unpacked); only regular files and folders under one top
folder named after the manifest's version and target are accepted; gzip must carry the fixed header that
`bundle.build` writes (a rewritten header is an altered bundle).
"""
from __future__ import annotations

import hashlib
import lzma
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AlogError
from . import keys
from .manifest import MANIFEST, SIGNATURE, ManifestEntry, parse

MAX_BUNDLE_BYTES = 1 << 30  # what open_bundle reads into memory at most
GZIP_HEADER = bytes.fromhex("1f8b08000000000000ff")  # gzip without name or timestamp, as build writes it


@dataclass
class Bundle:
    path: Path
    top: str
    manifest: dict[str, Any]
    manifest_bytes: bytes
    signature_bytes: bytes
    files: list[ManifestEntry]
    _data: dict[str, bytes]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def key_id(self) -> str:
        return self.manifest["key_id"]

    def read(self, relpath: str) -> bytes:
        if relpath == MANIFEST:
            return self.manifest_bytes
        if relpath == SIGNATURE:
            return self.signature_bytes
        try:
            return self._data[relpath]
        except KeyError:
            raise AlogError(self.path, f"has no file {relpath}") from None

    def verify(self, pubkey: Path) -> str:
        """The signature against a trusted public key; returns its key id."""
        try:
            return keys.verify(self.manifest_bytes, self.signature_bytes, pubkey)
        except AlogError as exc:
            raise AlogError(self.path, str(exc)) from None


def open_bundle(path: Path) -> Bundle:
    """Read a bundle and check its structure and every file against MANIFEST.json (the signature
    is checked by Bundle.verify with a trusted key). Any problem: one AlogError naming `path`."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(10)
    except OSError as exc:
        raise AlogError(path, exc.strerror or str(exc)) from None
    mode = "r:gz" if magic[:2] == b"\x1f\x8b" else "r:xz" if magic[:6] == b"\xfd7zXZ\x00" else None
    if mode is None:
        raise AlogError(path, "not a bundle (.tar.gz or .tar.xz)")
    if mode == "r:gz" and magic != GZIP_HEADER:
        raise AlogError(path, f"gzip header {magic.hex()} is not a bundle's ({GZIP_HEADER.hex()}): altered")
    try:
        members = _read_members(path, mode)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        raise AlogError(path, f"damaged archive ({exc})") from None
    tops = {name.split("/", 1)[0] for name in members}
    if len(tops) != 1:
        raise AlogError(path, f"needs one top folder, has {len(tops)}")
    top = tops.pop()
    files = {name.split("/", 1)[1]: data for name, (kind, _, data) in members.items()
             if kind == "file"}
    for name in (MANIFEST, SIGNATURE):
        if name not in files:
            raise AlogError(path, f"has no {top}/{name}" + (" (unsigned)" if name == SIGNATURE else ""))
    manifest_bytes, signature_bytes = files.pop(MANIFEST), files.pop(SIGNATURE)
    try:
        doc, entries = parse(manifest_bytes, f"{path}: {top}/{MANIFEST}")
    except AlogError as exc:
        raise AlogError(None, str(exc)) from None
    expected = f"alog-edge-{doc['version']}-{doc['target']}"
    if top != expected:
        raise AlogError(path, f"top folder {top} does not match the manifest ({expected})")
    listed = {e.path: e for e in entries}
    extra = sorted(set(files) - set(listed))
    if extra:
        raise AlogError(path, f"{top}/{extra[0]} is not listed in the manifest")
    for entry in entries:
        if entry.path not in files:
            raise AlogError(path, f"{top}/{entry.path} is listed in the manifest but missing")
        data = files[entry.path]
        perm = members[f"{top}/{entry.path}"][1]
        if len(data) != entry.size:
            raise AlogError(path, f"{top}/{entry.path}: {len(data)} bytes, the manifest says {entry.size}")
        if f"{perm:04o}" != entry.mode:
            raise AlogError(path, f"{top}/{entry.path}: mode {perm:04o}, the manifest says {entry.mode}")
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise AlogError(path, f"{top}/{entry.path}: sha256 differs from the manifest")
    return Bundle(path, top, doc, manifest_bytes, signature_bytes, entries, files)


def _read_members(path: Path, mode: str) -> dict[str, tuple[str, int, bytes]]:
    members: dict[str, tuple[str, int, bytes]] = {}
    total = 0
    with tarfile.open(path, mode) as tar:
        for member in tar:
            name = member.name.rstrip("/")
            parts_ = name.split("/")
            if name.startswith("/") or ".." in parts_ or "" in parts_ or "." in parts_:
                raise AlogError(path, f"tar member {member.name!r}: absolute or climbing path refused")
            if name in members:
                raise AlogError(path, f"tar member {name} appears twice")
            if member.isdir():
                members[name] = ("dir", member.mode & 0o7777, b"")
            elif member.isreg():
                total += member.size
                if total > MAX_BUNDLE_BYTES:
                    raise AlogError(path, "unpacks to more than 1 GiB")
                source = tar.extractfile(member)
                assert source is not None
                members[name] = ("file", member.mode & 0o7777, source.read())
            else:
                what = "link" if member.issym() or member.islnk() else "special file"
                raise AlogError(path, f"tar member {name} is a {what}: only files and folders are allowed")
    return members
