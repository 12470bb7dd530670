"""The one error path of every task: one line on stderr, a non-zero exit, never a traceback.

- AlogError (bad input, a failed step): `error: <file or flag>: <what is wrong>`, exit 1.
- An OSError naming a file (disk full, permission denied): the same line with the OS's reason.
- A full or closed stdout (ENOSPC, EPIPE): one line (EPIPE: none, as `head` closed it), exit 1.
- SIGTERM/SIGHUP (raised as Terminated) and SIGINT (KeyboardInterrupt): every staged output is removed
  on the way out; exit 128+N.
- Anything else is a bug: one line naming the file where the full trace was written, exit 1.
"""
from __future__ import annotations

import atexit
import datetime
import errno
import logging
import os
import re
import signal
import sys
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from alog_edge.errors import AlogError

log = logging.getLogger(__name__)

EXIT_ERROR = 1


class Terminated(KeyboardInterrupt):
    """A termination signal, raised where the program is so that `with` blocks clean up (and code that
    stops a child on Ctrl-C, such as invoke's runner, does so on SIGTERM too)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Failure(Exception):
    """What the error path decided: the line to print (or none) and the exit status."""

    def __init__(self, line: str | None, code: int) -> None:
        super().__init__(line or "")
        self.line = line
        self.code = code


def printable(text: str) -> str:
    """One line whatever the text holds (file names that are not UTF-8, newlines in messages)."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(text.split("\n")).strip()


def trace_dir() -> Path:
    base = os.environ.get("ALOG_EDGE_TRACE_DIR") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root if os.environ.get("ALOG_EDGE_TRACE_DIR") else root / "alog-edge" / "traces"


def write_trace(what: str, exc: BaseException) -> Path | None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    for folder in (trace_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"alog-edge-{what}-{stamp}-{os.getpid()}.txt"
            path.write_text(f"alog-edge {what}: argv {sys.argv!r}\n{text}", encoding="utf-8", errors="replace")
            return path
        except OSError:
            continue
    return None


def _stdout_broken(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EIO) and exc.filename is None


def silence_stdout() -> None:
    """Point fd 1 at /dev/null, so that the interpreter's final flush does not fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


def classify(exc: BaseException, what: str) -> Failure:
    """The line and exit status for an exception that ended a task."""
    if isinstance(exc, AlogError):
        return Failure(f"error: {printable(str(exc))}", EXIT_ERROR)
    if isinstance(exc, Terminated):
        name = signal.Signals(exc.signum).name
        return Failure(f"error: interrupted by {name}; nothing was written", 128 + exc.signum)
    if isinstance(exc, KeyboardInterrupt):
        return Failure("error: interrupted by SIGINT; nothing was written", 128 + signal.SIGINT)
    if isinstance(exc, StdoutClosed):
        silence_stdout()  # the reader went away (e.g. `| head`): nothing to tell it
        return Failure(None, EXIT_ERROR)
    if isinstance(exc, BrokenPipeError) and exc.filename is None:  # a pipe or socket that is not stdout
        return Failure(f"error: the other end closed the connection ({exc.strerror or exc})", EXIT_ERROR)
    if isinstance(exc, StdoutError):
        silence_stdout()
        return Failure(f"error: stdout: {exc.reason}", EXIT_ERROR)
    if _stdout_broken(exc):  # a print() that failed (files are named by AtomicOutputs)
        silence_stdout()
        return Failure(f"error: writing the output failed: {os.strerror(exc.errno)}", EXIT_ERROR)  # type: ignore[arg-type]
    if isinstance(exc, OSError) and exc.filename is not None:
        return Failure(f"error: {printable(os.fsdecode(exc.filename))}: {exc.strerror or exc}", EXIT_ERROR)
    if isinstance(exc, MemoryError):
        return Failure("error: out of memory", EXIT_ERROR)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return Failure(f"error: {exc.strerror}", EXIT_ERROR)
    path = write_trace(what, exc)
    where = f"; the full trace is in {path}" if path else ""
    return Failure(f"error: internal error in {what}: {type(exc).__name__}: "
                   f"{printable(str(exc))[:300]}{where}", EXIT_ERROR)


class StdoutError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StdoutClosed(Exception):
    """stdout's reader went away (EPIPE)."""


class CheckedStdout:
    """sys.stdout whose write errors say they are stdout's (a file's errors name the file)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _checked(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except BrokenPipeError:
            raise StdoutClosed() from None
        except OSError as exc:
            raise StdoutError(exc.strerror or str(exc)) from None

    def write(self, text: str) -> int:
        return self._checked(self._stream.write, text)

    def flush(self) -> None:
        self._checked(self._stream.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def checked_stdout() -> Iterator[None]:
    real = sys.stdout
    sys.stdout = CheckedStdout(real)  # type: ignore[assignment]
    try:
        yield
    finally:
        if isinstance(sys.stdout, CheckedStdout):
            sys.stdout = real


def flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise StdoutClosed() from None
    except OSError as exc:
        raise StdoutError(exc.strerror or str(exc)) from None


@contextmanager
def termination_raises() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Terminated while the block runs, as SIGINT raises KeyboardInterrupt."""
    def handler(signum: int, frame: Any) -> None:
        raise Terminated(signum)

    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: signals stay as they are
        pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def guarded(what: str, body: Callable[[], Any]) -> Any:
    """Run `body`; any exception leaves as Failure (one line, exit status). SystemExit passes."""
    try:
        with termination_raises(), checked_stdout():
            result = body()
            flush_stdout()
            return result
    except (SystemExit, Failure):
        raise
    except BaseException as exc:  # noqa: B902 - this is the one place every error ends
        if type(exc).__module__.startswith("invoke"):
            raise  # invoke's own Exit/UnexpectedExit carry their own message and status
        raise classify(exc, what) from None


def _excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    if isinstance(exc, BrokenPipeError):  # outside a task only stdout is written: `invoke --list | head`
        exc = StdoutClosed()
    elif _stdout_broken(exc) or (isinstance(exc, OSError) and exc.errno == errno.EBADF and exc.filename is None):
        exc = StdoutError(exc.strerror or str(exc))  # type: ignore[union-attr]
    failure = exc if isinstance(exc, Failure) else classify(exc, "invoke")
    if failure.line:
        print(failure.line, file=sys.stderr)


def _flush_at_exit() -> None:
    try:
        sys.stdout.flush()
    except OSError as exc:
        line = classify(StdoutClosed() if isinstance(exc, BrokenPipeError) else StdoutError(exc.strerror or str(exc)),
                        "invoke").line
        if line:
            print(line, file=sys.stderr)
        sys.stderr.flush()
        os._exit(EXIT_ERROR)


# --- invoke's own parse errors, in the same form -----------------------------------------

_UNKNOWN = re.compile(r"^No idea what '(.*)' is!$")
_NEEDS_VALUE = re.compile(r"^Flag '?<\w+: ([^ >(\[]+).*needed value and was not given one!$")
_MISSING = re.compile(r"^'(.*)' did not receive required positional arguments: (.*)$")
_NO_VALUE = re.compile(r"^Flag '?<\w+: ([^ >(\[]+).*doesn't take any value!$")


def parse_error_line(message: str, task: str | None) -> str:
    """invoke's ParseError text -> `error: <flag>: <what is wrong>`."""
    message = printable(message)
    m = _UNKNOWN.match(message)
    if m:
        word = m.group(1)
        if word.startswith("-"):
            where = f"invoke --help {task}" if task else "invoke --help TASK"
            return f"error: {word}: no such flag{f' of {task}' if task else ''} ({where} lists them)"
        return f"error: {word}: no such task (invoke --list lists them)"
    m = _NEEDS_VALUE.match(message)
    if m:
        return f"error: --{m.group(1).replace('_', '-')}: needs a value"
    m = _MISSING.match(message)
    if m:
        flags = ["--" + x.strip(" '").replace("_", "-") for x in m.group(2).split(",")]
        return f"error: {flags[0]}: {m.group(1)} needs it (required: {', '.join(flags)})"
    m = _NO_VALUE.match(message)
    if m:
        return f"error: --{m.group(1).replace('_', '-')}: takes no value"
    return message if message.startswith("error: ") else f"error: {message}"


def hold_closed_std_streams() -> None:
    """A closed stdout or stderr (`>&-`) leaves sys.stdout None: hold the descriptor with /dev/null opened
    for reading, so that output fails with one line (EBADF) instead of an AttributeError."""
    for fd, name, flags in ((1, "stdout", os.O_RDONLY), (2, "stderr", os.O_WRONLY)):
        if getattr(sys, name) is not None:
            continue
        try:
            held = os.open(os.devnull, flags)
            if held != fd:
                os.dup2(held, fd)
                os.close(held)
            setattr(sys, name, open(fd, "w", encoding="utf-8", errors="backslashreplace", closefd=False))
        except OSError:
            pass


def install_invoke_hooks() -> None:
    """Make invoke's parse errors, and whatever escapes it, end in one line (once per process)."""
    import invoke.parser
    import invoke.program
    from invoke.exceptions import ParseError

    program = invoke.program.Program
    if getattr(program, "_alog_edge_hooked", False):
        return
    hold_closed_std_streams()

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except ParseError as exc:
                context = getattr(exc, "context", None)
                task = getattr(context, "name", None)
                raise ParseError(parse_error_line(str(exc), task), context) from None
        return wrapper

    for name in ("parse_tasks", "parse_cleanup"):
        setattr(program, name, wrap(getattr(program, name)))
    context = invoke.parser.ParserContext
    help_for = context.help_for

    def repeatable_help(self: Any, flag: str) -> tuple[str, str]:
        """invoke shows a repeatable flag (`--logs`) as if it took no value: say that it takes one."""
        names, text = help_for(self, flag)
        if self.flags[flag].kind is list:
            names = ", ".join(f"{n}=STRING" if n.startswith("--") else f"{n} STRING" for n in names.split(", "))
        return names, text
    context.help_for = repeatable_help
    program._alog_edge_hooked = True  # type: ignore[attr-defined]
    sys.excepthook = _excepthook
    atexit.register(_flush_at_exit)
