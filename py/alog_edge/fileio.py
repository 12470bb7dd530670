"""Atomic writes and checked reads shared by every step.

Every writer stages its files beside their final place and renames them only
when the whole step succeeded, so a failed step leaves no partial artifact.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import AlogError


class AtomicOutputs:
    """Stage several output files; rename them all into place on success."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def path(self, final: str | Path) -> Path:
        final = Path(final)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        except OSError as exc:
            raise AlogError(final.parent, f"cannot write here: {exc.strerror or exc}") from None
        os.close(fd)
        self._staged.append((Path(tmp), final))
        return Path(tmp)

    def write_json(self, final: str | Path, obj: Any) -> Path:
        tmp = self.path(final)
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return tmp

    def write_text(self, final: str | Path, text: str) -> Path:
        tmp = self.path(final)
        tmp.write_text(text, encoding="utf-8")
        return tmp

    def discard(self) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged.clear()

    def commit(self) -> None:
        for tmp, final in self._staged:
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        self._staged.clear()

    def __enter__(self) -> "AtomicOutputs":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


class AtomicDir:
    """Build a directory beside its final place and swap it in whole."""

    def __init__(self, final: str | Path) -> None:
        self.final = Path(final)
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", dir=self.final.parent))
        except OSError as exc:
            raise AlogError(self.final.parent, f"cannot write here: {exc.strerror or exc}") from None

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        os.chmod(self.tmp, 0o755)
        old = None
        if self.final.exists():
            old = self.final.with_name(f".{self.final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.final, old)
        os.replace(self.tmp, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def require_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise AlogError(path, "no such file")
    if path.is_dir():
        raise AlogError(path, "is a directory, expected a file")
    if path.stat().st_size == 0:
        raise AlogError(path, "is empty")
    return path


def read_json(path: str | Path) -> Any:
    path = require_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise AlogError(path, "is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise AlogError(path, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def read_parquet(path: str | Path, columns: list[str]) -> "Any":
    import pandas as pd
    import pyarrow

    path = require_file(path)
    try:
        frame = pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise AlogError(path, f"not a readable parquet file ({exc})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AlogError(path, f"missing column(s): {', '.join(missing)}")
    return frame


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON value independent of its file's formatting."""
    canonical = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
