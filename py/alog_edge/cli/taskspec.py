"""The invoke Task every alog-edge task is: flag specs checked before the body, one error path.

    @task(help={"seq_len": "window h"}, flags={"seq_len": Int(1, 65536)})
    def train_deeplog(c, seq_len=10): ...

A flag whose default is an int or float and that declares no spec gets an unbounded Int/Float, so a
typo is still one line; the bad-input tests require a declared range for every numeric flag.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from invoke import Exit, Task
from invoke.parser import Argument

from alog_edge.cli import errorpath
from alog_edge.errors import AlogError
from alog_edge.cli.flags import Float, Int, Spec, flag_name, parse_all

SHORT_FLAGS = {"workspace": "w"}


class TextArgument(Argument):
    """An argument whose text reaches the task unconverted: its spec converts it (one line on error)."""

    def set_value(self, value: Any, cast: bool = True) -> None:
        super().set_value(value, cast=cast and self.kind not in (int, float))


def inferred_specs(body: Callable[..., Any]) -> dict[str, Spec]:
    out: dict[str, Spec] = {}
    for p in inspect.signature(body).parameters.values():
        if isinstance(p.default, bool):
            continue
        if isinstance(p.default, int):
            out[p.name] = Int()
        elif isinstance(p.default, float):
            out[p.name] = Float()
    return out


class FlagTask(Task):
    """An invoke Task with per-flag specs (`flags=`), no automatic short flags but -w, and one error path."""

    def __init__(self, body: Callable[..., Any], *args: Any, flags: dict[str, Spec] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("auto_shortflags", False)  # invoke's picks gave '--=STRING' for a flag
        super().__init__(body, *args, **kwargs)
        params = list(inspect.signature(body).parameters)
        declared = dict(flags or {})
        stray = [n for n in declared if n not in params]
        if stray:
            raise ValueError(f"{body.__name__}: flag specs for parameters that do not exist: {stray}")
        self.declared_flags = declared
        self.flag_specs: dict[str, Spec] = {**inferred_specs(body), **declared}
        for name, spec in self.flag_specs.items():
            key = name if name in self.help else name.replace("_", "-")
            text = self.help.get(key, "")
            self.help[key] = f"{text} [{spec.describe()}]".strip()

    def arg_opts(self, name: str, default: Any, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        if name in SHORT_FLAGS and SHORT_FLAGS[name] not in taken_names:
            opts["names"] = list(opts["names"]) + [SHORT_FLAGS[name]]
        spec = self.flag_specs.get(name)
        if spec is not None:
            opts["kind"] = int if getattr(spec, "metavar", "") == "INT" else str
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args = super().get_arguments(ignore_unknown_help)
        for arg in args:
            if arg.kind in (int, float):
                arg.__class__ = TextArgument
        return args

    def checked_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The flags converted and range-checked (AlogError names the first bad one)."""
        return parse_all(self.flag_specs, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        what = self.name or getattr(self.body, "__name__", "task")

        def run() -> Any:
            return super(FlagTask, self).__call__(*args, **self.checked_kwargs(kwargs))
        return run_one_error_path(what, run)


def run_one_error_path(what: str, body: Callable[[], Any]) -> Any:
    try:
        return errorpath.guarded(what.replace("_", "-"), body)
    except errorpath.Failure as failure:
        raise Exit(failure.line, code=failure.code) from None


def user_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input ends as one line `error: <file or flag>: <problem>` and a non-zero exit, never a traceback.

    FlagTask applies this path to every task already; the decorator keeps it for bodies called
    outside a FlagTask."""
    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run_one_error_path(body.__name__, lambda: body(*args, **kwargs))
    return wrapper


def refuse(flag: str, message: str) -> AlogError:
    """An error about a flag's value found in a task body (e.g. a cross-flag rule)."""
    return AlogError(flag_name(flag), message)
