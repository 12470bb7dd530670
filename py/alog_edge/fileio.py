"""Atomic writes and checked reads shared by every step.

Every writer stages its files beside their final place and renames them only
when the whole step succeeded, so a failed step leaves no partial artifact.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Iterator

from alog_edge.errors import AlogError


# Staged files and folders not yet committed: removed at exit whatever ended the process early.
_LIVE: set[Path] = set()


def _remove_live() -> None:
    for path in list(_LIVE):
        _remove(path)


atexit.register(_remove_live)


def _remove(path: Path) -> None:
    _LIVE.discard(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def signals_held() -> Iterator[None]:
    """Termination signals wait while outputs are renamed into place (then raise as usual)."""
    held = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _cannot_write(path: Path, exc: OSError) -> AlogError:
    return AlogError(path, f"cannot write here: {exc.strerror or exc}")


def check_outputs(*paths: str | Path | None) -> None:
    """Refuse, before any work, output file paths that cannot be written: a directory, a parent that is a file."""
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        if path.is_dir():
            raise AlogError(path, "is a directory, expected a file path to write")
        parent = next((p for p in path.parents if p.exists()), Path("."))
        if not parent.is_dir():
            raise AlogError(parent, "is not a directory: cannot write files under it")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise AlogError(parent, "is not writable")


class AtomicOutputs:
    """Stage several output files beside their final places; on success they all appear, or none does.

    Commit renames the staged files over their final paths after keeping a hard link to every file
    they replace, so a rename that fails puts the earlier ones back. A failure or a termination
    signal (see errorpath) removes everything staged.
    """

    def __init__(self, *finals: str | Path) -> None:
        check_outputs(*finals)
        self._staged: list[tuple[Path, Path]] = []

    def path(self, final: str | Path) -> Path:
        final = Path(final)
        check_outputs(final)
        if any(f == final for _, f in self._staged):
            raise AlogError(final, "is given as two outputs of one step")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        except OSError as exc:
            raise _cannot_write(final.parent, exc) from None
        os.close(fd)
        _LIVE.add(Path(tmp))
        self._staged.append((Path(tmp), final))
        return Path(tmp)

    def write_json(self, final: str | Path, obj: Any) -> Path:
        tmp = self.path(final)
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(obj, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        return tmp

    def write_text(self, final: str | Path, text: str) -> Path:
        tmp = self.path(final)
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        return tmp

    def discard(self) -> None:
        for tmp, _ in self._staged:
            _remove(tmp)
        self._staged.clear()

    def commit(self) -> None:
        with signals_held():
            self._commit()

    def _commit(self) -> None:
        done: list[tuple[Path, Path | None]] = []  # (final, the hard link to what it replaced)
        old = None
        try:
            for tmp, final in self._staged:
                check_outputs(final)
                os.chmod(tmp, 0o644)
                old = None
                if final.exists():
                    old = Path(f"{tmp}.old")
                    _LIVE.add(old)
                    try:
                        os.link(final, old)
                    except OSError:  # a file system without hard links
                        shutil.copy2(final, old)
                os.replace(tmp, final)
                _LIVE.discard(tmp)
                done.append((final, old))
                old = None
        except (OSError, AlogError) as exc:
            if old is not None:  # the link made for the file whose rename failed
                _remove(old)
            for final, old in reversed(done):
                try:
                    if old is not None:
                        os.replace(old, final)
                        _LIVE.discard(old)
                    else:
                        final.unlink(missing_ok=True)
                except OSError:
                    pass
            self.discard()
            for _, old in done:
                if old is not None:
                    _remove(old)
            if isinstance(exc, AlogError):
                raise
            raise AlogError(exc.filename or final, f"cannot write: {exc.strerror or exc}; "
                                                   "no output of this step was changed") from None
        for _, old in done:
            if old is not None:
                _remove(old)
        self._staged.clear()

    def __enter__(self) -> "AtomicOutputs":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
            return
        being_written = self._staged[-1][1] if self._staged else None
        self.discard()
        if isinstance(exc, OSError) and being_written is not None:  # a full disk, a file too large
            raise AlogError(being_written, f"cannot write: {exc.strerror or exc}; no output of this step "
                                           "was changed") from None


class AtomicDir:
    """Build a directory beside its final place and swap it in whole (the old one comes back on failure)."""

    def __init__(self, final: str | Path) -> None:
        self.final = Path(final)
        if self.final.exists() and not self.final.is_dir():
            raise AlogError(self.final, "exists and is not a directory")
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", dir=self.final.parent))
        except OSError as exc:
            raise _cannot_write(self.final.parent, exc) from None
        _LIVE.add(self.tmp)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            _remove(self.tmp)
            if isinstance(exc, OSError):
                raise AlogError(self.final, f"cannot write: {exc.strerror or exc}; the directory was not "
                                            "changed") from None
            return
        os.chmod(self.tmp, 0o755)
        with signals_held():
            self._swap()

    def _swap(self) -> None:
        old = None
        try:
            if self.final.exists():
                old = Path(f"{self.tmp}.old")
                _LIVE.add(old)
                os.replace(self.final, old)
            os.replace(self.tmp, self.final)
            _LIVE.discard(self.tmp)
        except OSError as exc:
            if old is not None and not self.final.exists():
                os.replace(old, self.final)
                _LIVE.discard(old)
            _remove(self.tmp)
            raise AlogError(self.final, f"cannot replace: {exc.strerror or exc}") from None
        if old is not None:
            _remove(old)


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
    except RecursionError:
        raise AlogError(path, "JSON nested too deeply") from None
    except OSError as exc:
        raise AlogError(path, f"cannot read: {exc.strerror or exc}") from None


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
