"""The one exception type that reaches the user as a single line."""
from __future__ import annotations

from pathlib import Path


class AlogError(Exception):
    """Bad input or a failed step: printed as `error: <file>: <what is wrong>`."""

    def __init__(self, path: str | Path | None, message: str) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message
