"""Flag specs: the type and range of a task's flag, declared once beside the flag.

A spec turns the text a user typed into a value, or refuses it with one line that names the flag
and the range: `error: --seq-len: must be an integer >= 1 (got '0')`. Tasks declare them in the
task decorator (`@task(flags={"seq_len": Int(1, 65536)})`); checking happens before the task body
runs, so no work starts on a bad value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from alog_edge.errors import AlogError


def flag_name(name: str) -> str:
    return "--" + name.strip("_").replace("_", "-")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


@dataclass(frozen=True)
class Number:
    """An integer or a finite number within bounds (`low`/`high` inclusive unless `open_*`)."""

    integer: bool
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    @property
    def metavar(self) -> str:
        return "INT" if self.integer else "NUMBER"

    def describe(self) -> str:
        what = "an integer" if self.integer else "a number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {_fmt(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {_fmt(self.high)}")
        return what + (" " + " and ".join(parts) if parts else "")

    def check(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.open_high else value > self.high))

    def convert(self, text: str) -> int | float | None:
        """The value, or None when `text` is not one."""
        text = text.strip()
        try:
            value: int | float = int(text, 10) if self.integer else float(text)
        except ValueError:
            if not self.integer:
                return None
            try:  # "1e3" or "10.0" for an integer flag: accepted when whole
                f = float(text)
            except ValueError:
                return None
            if not math.isfinite(f) or not f.is_integer():
                return None
            value = int(f)
        if not math.isfinite(value) or not self.check(value):
            return None
        return value

    def parse(self, name: str, raw: Any) -> int | float | None:
        if raw is None:
            return None
        if isinstance(raw, bool):
            raise AlogError(flag_name(name), f"must be {self.describe()} (got no value)")
        value = self.convert(str(raw))
        if value is None:
            raise AlogError(flag_name(name), f"must be {self.describe()} (got {str(raw)!r})")
        return value

    def bad_examples(self) -> list[str]:
        """Values this spec refuses: for the bad-input tests."""
        out = ["ten", "", "nan", "inf", "-inf", "1e999"]
        if self.integer:
            out.append("1.5")
        if self.low is not None:
            out.append(_fmt(self.low) if self.open_low else _fmt(self.low - (1 if self.integer else abs(self.low) * 0.5 + 1e-3)))
        if self.high is not None:
            out.append(_fmt(self.high) if self.open_high else _fmt(self.high + (1 if self.integer else abs(self.high) * 0.5 + 1e-3)))
        return out


def Int(low: int | None = None, high: int | None = None) -> Number:
    """An integer in [low, high]."""
    return Number(True, low, high)


def Float(low: float | None = None, high: float | None = None, *, gt: float | None = None,
          lt: float | None = None) -> Number:
    """A finite number in [low, high], or (gt, lt) for open bounds."""
    return Number(False, gt if gt is not None else low, lt if lt is not None else high,
                  open_low=gt is not None, open_high=lt is not None)


@dataclass(frozen=True)
class IntList:
    """Comma-separated integers, each in range; `length` fixes how many."""

    item: Number
    length: int | None = None
    unique: bool = True

    metavar = "INT,INT,..."

    def describe(self) -> str:
        count = f"{self.length} " if self.length else ""
        return (f"{count}comma-separated {'distinct ' if self.unique else ''}integers, each "
                f"{self.item.describe().removeprefix('an integer ') or 'an integer'}")

    def parse(self, name: str, raw: Any) -> tuple[int, ...] | None:
        if raw is None:
            return None
        if isinstance(raw, (tuple, list)):
            raw = ",".join(str(x) for x in raw)
        parts = str(raw).split(",")
        values = [self.item.convert(p) for p in parts]
        if (any(v is None for v in values) or (self.length and len(values) != self.length)
                or (self.unique and len(set(values)) != len(values))):
            raise AlogError(flag_name(name), f"must be {self.describe()} (got {str(raw)!r})")
        return tuple(int(v) for v in values)  # type: ignore[arg-type]

    def bad_examples(self) -> list[str]:
        good = _fmt(self.item.low if self.item.low is not None else 1)
        out = ["", ",", "1,x", good + ",nan"] + [f"{good},{b}" for b in self.item.bad_examples()[-2:]]
        if self.length:
            out.append(",".join([good] * (self.length + 1)))
        if self.unique:
            out.append(f"{good},{good}")
        return out


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of words."""

    choices: tuple[str, ...]

    @property
    def metavar(self) -> str:
        return "|".join(self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)

    def parse(self, name: str, raw: Any) -> str | None:
        if raw is None:
            return None
        if str(raw) not in self.choices:
            raise AlogError(flag_name(name), f"must be {self.describe()} (got {str(raw)!r})")
        return str(raw)

    def bad_examples(self) -> list[str]:
        return ["", "bogus"]


def choice(*choices: str) -> Choice:
    return Choice(tuple(choices))


Spec = Number | IntList | Choice


def parse_all(specs: dict[str, Spec], values: dict[str, Any]) -> dict[str, Any]:
    """Every declared flag converted and range-checked; the first bad one raises AlogError."""
    out = dict(values)
    for name, spec in specs.items():
        if name in out:
            out[name] = spec.parse(name, out[name])
    return out
