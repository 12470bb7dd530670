"""Time-bounded regex matching, so that no mask or format regex can hang the parser.

Python's `re` has no match limit, but since 3.11 it checks for signals while it backtracks: an
interval timer (SIGALRM, main thread only) interrupts a match that has run longer than
LIMIT_SECONDS (plus a share per byte of the line). The line is then refused with the message the C matcher gives when PCRE2 stops at
its match limit, and both sides key it as unknown.
"""
from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any, Callable

LIMIT_SECONDS = 2.0        # for a short line; long lines get more (linear masks take longer)
SECONDS_PER_BYTE = 1e-5    # 10 s more for a 1 MiB line
TICK_SECONDS = 0.05
GAVE_UP = "the regex engine gave up on this line (too much backtracking)"


class RegexGaveUp(Exception):
    """A regex ran past the limit on one line; `what` names it (line_regex, masking[3])."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: {GAVE_UP}")
        self.what = what


class Guard:
    """`with Guard() as g: g.run("masking[0]", fn, text)`: fn(text), or RegexGaveUp past the limit."""

    def __init__(self, limit: float = LIMIT_SECONDS) -> None:
        self.limit = limit
        self.what = ""
        self.started: float | None = None
        self.budget = limit
        self._armed = False
        self._old: Any = None

    def __enter__(self) -> "Guard":
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
            self._old = signal.signal(signal.SIGALRM, self._tick)
            signal.setitimer(signal.ITIMER_REAL, TICK_SECONDS, TICK_SECONDS)
            self._armed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, self._old)
            self._armed = False

    def _tick(self, signum: int, frame: FrameType | None) -> None:
        started = self.started
        if started is not None and time.monotonic() - started > self.budget:
            self.started = None
            raise RegexGaveUp(self.what)

    def run(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        self.what = what
        self.budget = self.limit + SECONDS_PER_BYTE * sum(len(a) for a in args if isinstance(a, str))
        self.started = time.monotonic()
        try:
            return fn(*args)
        finally:
            self.started = None

    def mask(self, masker: Any, text: str) -> str:
        """Drain3's LogMasker.mask(text), mask by mask, the whole line within the limit."""
        self.budget = self.limit + SECONDS_PER_BYTE * len(text)
        self.started = time.monotonic()
        try:
            for i, mi in enumerate(masker.masking_instructions):
                self.what = f"masking[{i}]"
                text = mi.mask(text, masker.mask_prefix, masker.mask_suffix)
            return text
        finally:
            self.started = None
