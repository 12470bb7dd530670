"""Log formats: logparser-style format strings, presets, and checked line reading.

A format string such as `<Date> <Time> <Level> <Component>: <Content>` becomes
one anchored regex with a named group per header, built exactly as logparser
does (literal text is kept as regex text, runs of spaces become `\\s+`), so the
C runtime can compile the same regex from parser.json.
"""
from __future__ import annotations

import gzip
import zlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Iterator

from alog_edge.errors import AlogError

# Masks for logs nobody tuned for. Order matters: specific shapes first, plain numbers last. Few
# masks on purpose: each is one regex pass per line on the device, and separate HOST, HEX, SIZE
# and DURATION masks changed no grouping accuracy on the six shared LogHub systems. Every pattern
# starts only where a run of its characters starts (a lookbehind or \b), so no line makes one scan
# quadratic; the fuzzer and tests/test_parity_match.py try adversarial lines on both sides.
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_IPV4 = r"(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?"
DEFAULT_MASKS: tuple[tuple[str, str], ...] = (
    (r"(?<![\w+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+", "URL"),
    (r"(?<![\w.+-])[\w.+-]+@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+", "EMAIL"),
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    # Dates and times inside messages, each one token whatever its spaces.
    (r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?(?![\w:])", "DATE"),
    (rf"\b(?:{_WEEKDAY},?\s+)?{_MONTH}\.?\s+\d{{1,2}},?\s+(?:\d{{4}}\s+)?\d{{1,2}}:\d{{2}}(?::\d{{2}})?"
     rf"(?:[.,]\d+)?(?:\s+\d{{4}}\b)?", "DATE"),
    (r"(?<![\w:.])\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?![\w:])", "TIME"),
    (r"\b(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}\b", "MAC"),
    # IPv4 addresses with their port, and lists of them, as one value.
    (rf"(?<![\w.]){_IPV4}(?:,\s?{_IPV4})*(?![\w.])", "IP"),
    # host:port (a name with a dot; a name alone could be a class or a file name).
    (r"(?<![\w.-])(?:[a-zA-Z0-9-]+\.)+[a-zA-Z][a-zA-Z0-9-]*:\d{1,5}(?![\w.])", "HOST"),
    # Unix and Windows paths.
    (r"(?<![\w/.:~-])(?:/[\w.@%+~-]+)+/?|(?<![\w.])[A-Za-z]:\\[^\s\"'<>|]*", "PATH"),
    # Numbers; a unit after one stays a word ("35 ms" and "12 ms" share "<NUM> ms").
    (r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?![\w.])", "NUM"),
    # What is left of words with digits in them: ids such as attempt_01_m_000008_0, core.7167, hex
    # (0x1F, 9f1c2e3a) and the digits of key=value and key:value values.
    (r"(?<![\w.-])(?=[\w.-]*\d)[\w.-]*\w", "ID"),
    # A bracketed list of values, whatever its length.
    (r"\[[^\[\]\s,]*(?:,\s?[^\[\]\s,]*)+\]", "LIST"),
)

# Mining settings of the generic default (a --log-format without a preset).
GENERIC: dict = {"sim_th": 0.4, "depth": 4, "refine": True}


@dataclass(frozen=True)
class LogFormat:
    """How to split a line into headers and content, and how Drain3 mines the content."""

    name: str
    format: str
    masks: tuple[tuple[str, str], ...] = DEFAULT_MASKS
    session_regex: str | None = None
    timestamp_fields: tuple[str, ...] = ()
    timestamp_format: str | None = None  # strptime format, "ISO8601", or None for no timestamps
    yearless: bool = False
    host_field: str | None = None
    level_field: str | None = None
    sim_th: float = 0.4
    depth: int = 4
    extra_delimiters: tuple[str, ...] = ()
    multiline: bool = False  # a line that does not fit the format continues the record before it
    refine: bool = False  # split clusters at constant words after mining (refine.py)
    headers: tuple[str, ...] = field(init=False)
    regex: str = field(init=False)

    def __post_init__(self) -> None:
        regex, headers = format_to_regex(self.format)
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "headers", tuple(headers))


def format_to_regex(log_format: str) -> tuple[str, list[str]]:
    """logparser's generate_logformat_regex: the format string as one anchored regex."""
    if "<Content>" not in log_format:
        raise AlogError(None, f"log format {log_format!r} has no <Content> field")
    parts = re.split(r"(<[^<>]+>)", log_format)
    regex, headers = "", []
    for k, part in enumerate(parts):
        if k % 2 == 0:
            regex += re.sub(" +", r"\\s+", part)
        else:
            header = part.strip("<>")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", header):
                raise AlogError(None, f"log format field <{header}> is not a valid name")
            if header in headers:
                raise AlogError(None, f"log format field <{header}> appears twice")
            headers.append(header)
            regex += f"(?P<{header}>.*?)"
    regex = "^" + regex + "$"
    try:
        re.compile(regex)
    except re.error as exc:
        raise AlogError(None, f"log format {log_format!r} is not a valid pattern: {exc}") from None
    return regex, headers


_SYSLOG = "<Month> <Day> <Time> <Host> <Component>(\\[<Pid>\\])?: <Content>"

PRESETS: dict[str, LogFormat] = {
    p.name: p
    for p in (
        # The six LogHub systems: the published Drain benchmark settings, plus masks for the ids and
        # hex values those settings leave as words (measured by `invoke parse-accuracy`).
        LogFormat("hdfs", "<Date> <Time> <Pid> <Level> <Component>: <Content>",
                  masks=((r"blk_-?\d+(\s+blk_-?\d+)*", "*"), (r"(\d+\.){3}\d+(:\d+)?", "*")),
                  session_regex=r"blk_-?\d+", timestamp_fields=("Date", "Time"),
                  timestamp_format="%y%m%d %H%M%S", level_field="Level", sim_th=0.5, depth=4),
        LogFormat("bgl", "<Label> <Epoch> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
                  masks=((r"core\.\d+", "*"), (r"0x[0-9a-fA-F]+", "*"), (r"(\d+\.){3}\d+(:\d+)?", "*")),
                  timestamp_fields=("Time",), timestamp_format="%Y-%m-%d-%H.%M.%S.%f",
                  host_field="Node", level_field="Level", sim_th=0.5, depth=4),
        LogFormat("hadoop", "<Date> <Time> <Level> \\[<Process>\\] <Component>: <Content>",
                  masks=((r"(\d+\.){3}\d+", "*"), (r"(?<=[=:])-?\d+\b", "*")),
                  timestamp_fields=("Date", "Time"), timestamp_format="%Y-%m-%d %H:%M:%S,%f",
                  level_field="Level", sim_th=0.5, depth=4),
        LogFormat("zookeeper", "<Date> <Time> - <Level>  \\[<Node>:<Component>@<Id>\\] - <Content>",
                  masks=((r"(/|)(\d+\.){3}\d+(:\d+)?", "*"), (r"0x[0-9a-fA-F]+", "*")),
                  session_regex=r"0x[0-9a-f]{9,}",
                  timestamp_fields=("Date", "Time"), timestamp_format="%Y-%m-%d %H:%M:%S,%f",
                  level_field="Level", sim_th=0.55, depth=4),
        LogFormat("openstack", "<Logrecord> <Date> <Time> <Pid> <Level> <Component> \\[<ADDR>\\] <Content>",
                  masks=((r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "*"),
                         (r"((\d+\.){3}\d+,?)+", "*"), (r"/.+?\s", "*"), (r"\d+", "*")),
                  session_regex=r"\[instance: ([0-9a-f-]{36})\]",
                  timestamp_fields=("Date", "Time"), timestamp_format="%Y-%m-%d %H:%M:%S.%f",
                  level_field="Level", sim_th=0.6, depth=5),
        LogFormat("linux", _SYSLOG,
                  masks=((r"(\d+\.){3}\d+", "*"), (r"\d{2}:\d{2}:\d{2}", "*")),
                  timestamp_fields=("Month", "Day", "Time"), timestamp_format="%b %d %H:%M:%S",
                  yearless=True, host_field="Host", sim_th=0.39, depth=6),
        # General-purpose formats.
        LogFormat("syslog", _SYSLOG, timestamp_fields=("Month", "Day", "Time"),
                  timestamp_format="%b %d %H:%M:%S", yearless=True, host_field="Host"),
        LogFormat("iso8601", "<Timestamp> <Content>", timestamp_fields=("Timestamp",),
                  timestamp_format="ISO8601"),
        LogFormat("dmesg", "\\[<Uptime>\\] <Content>"),
        LogFormat("demo", "<Timestamp> <Host> <Component>\\[<Pid>\\]: <Level> <Content>",
                  session_regex=r"\bsid=([0-9a-f]{8})\b", timestamp_fields=("Timestamp",),
                  timestamp_format="ISO8601", host_field="Host", level_field="Level"),
    )
}


def resolve(preset: str | None, log_format: str | None) -> LogFormat:
    """The preset by name, or a custom format string with the default masks."""
    if preset and log_format:
        raise AlogError(None, "give either --format or --log-format, not both")
    if log_format:
        fmt = LogFormat("custom", log_format)
        host = next((h for h in fmt.headers if h.lower() in ("host", "hostname", "node")), None)
        level = next((h for h in fmt.headers if h.lower() in ("level", "severity")), None)
        return replace(fmt, host_field=host, level_field=level, **GENERIC)
    name = (preset or "syslog").lower()
    if name not in PRESETS:
        raise AlogError(None, f"unknown format preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


MAX_LINE_BYTES = 1 << 20


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    try:
        with _open(path) as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                count += chunk.count(b"\n")
                last = chunk[-1:]
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz
        raise AlogError(path, f"cannot read: {_reason(exc)}") from None
    return count + (0 if last == b"\n" else 1)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "the compressed stream ends early (truncated .gz)"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def read_lines(path: str | Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """Yield (line_no, text without its line ending); bad input raises AlogError naming the line."""
    path = Path(path)
    if not path.exists():
        raise AlogError(path, "no such file")
    if path.is_dir():
        raise AlogError(path, "is a directory, expected a log file")
    seen_any = False
    try:
        with _open(path) as handle:
            line_no = 0
            while True:
                raw = handle.readline(max_line_bytes + 2)
                if not raw:
                    break
                line_no += 1
                if len(raw) > max_line_bytes and not raw.endswith(b"\n") or len(raw) > max_line_bytes + 1:
                    raise AlogError(path, f"line {line_no} is longer than {max_line_bytes} bytes")
                if b"\x00" in raw:
                    raise AlogError(path, f"line {line_no} contains NUL bytes: this looks like a binary file")
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise AlogError(path, f"line {line_no} is not valid UTF-8 (byte {exc.start + 1})") from None
                text = text.rstrip("\r\n")
                seen_any = seen_any or bool(text.strip())
                yield line_no, text
    except (OSError, EOFError, zlib.error) as exc:
        raise AlogError(path, f"cannot read: {_reason(exc)}") from None
    if not seen_any:
        raise AlogError(path, "is empty: no log lines")


def year_for(path: Path, year: int | None) -> int:
    """Year for formats whose timestamps have none: the flag, else the file's mtime."""
    return year if year is not None else datetime.fromtimestamp(path.stat().st_mtime).year
