"""parse: raw logs -> parsed.parquet, templates.json, parser.json, drain_state.json.

Templates are mined with Drain3. Every line is then matched once more against
the final clusters with `TemplateMiner.match(..., "always")`, the same rule the
device applies, so the training data carries exactly the keys inference will see.
"""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field as dc_field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from alog_edge.data import bounded
from alog_edge.data.drain import full_search_order, mask_all, matcher_from_parser, mine, save_state
from alog_edge.data.template_list import TemplateListMatcher, read_template_file
from alog_edge.errors import AlogError
from alog_edge.fileio import AtomicOutputs, check_outputs
from alog_edge.formats import logformat
from alog_edge.formats.logformat import LogFormat
from alog_edge.formats.parser_json import (MATCH_STRATEGY, UNMATCHED_CLUSTER, format_from_parser, load_parser,
                                           parser_json)

log = logging.getLogger(__name__)


PARSED_SCHEMA = pa.schema([
    ("line_no", pa.int64()), ("source", pa.string()), ("timestamp", pa.timestamp("us")),
    ("host", pa.string()), ("session", pa.string()), ("level", pa.string()),
    ("content", pa.string()), ("cluster_id", pa.int64()), ("template", pa.string()),
])


@dataclass
class ParseResult:
    lines: int
    format_misses: int
    clusters: int
    seconds: float
    outputs: list[Path]
    continued: int = 0

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else float("inf")


# --- splitting lines into header fields ---------------------------------------------------


@dataclass
class Records:
    """Column lists of the records read so far (cheaper than a dict per line). A record is a line,
    or with a multiline format a line and the lines after it that do not fit the format."""

    line_no: list[int]
    source: list[str]
    fields: dict[str, list[str | None]]
    content: list[str]
    misses: int = 0
    continued: int = 0  # lines joined to the record before them (multiline)
    refused: dict[int, str] = dc_field(default_factory=dict)  # record index -> why (a regex gave up)

    @classmethod
    def empty(cls, fmt: LogFormat) -> "Records":
        return cls([], [], {h: [] for h in fmt.headers if h != "Content"}, [])


def split_lines(paths: Iterable[Path], fmt: LogFormat, max_line_bytes: int,
                progress: tqdm | None = None) -> Records:
    """Read every line and split it by the format; a line the format misses keeps its whole text as
    content, or with a multiline format continues the record before it ("\n" + the line)."""
    regex = re.compile(fmt.regex)
    rec = Records.empty(fmt)
    header_names = list(rec.fields)
    with bounded.Guard() as guard:
        for path in paths:
            matched_here = 0
            source = path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # parquet needs UTF-8
            open_record = False  # the last record is from this file and may take continuation lines
            for line_no, text in logformat.read_lines(path, max_line_bytes):
                if progress is not None:
                    progress.update(1)
                if not text.strip():
                    continue
                try:
                    m = guard.run("line_regex", regex.match, text)
                except bounded.RegexGaveUp as exc:
                    rec.refused[len(rec.content)] = str(exc)
                    m, open_record = None, False
                else:
                    if m is None and fmt.multiline and open_record:
                        rec.content[-1] += "\n" + text
                        rec.continued += 1
                        continue
                rec.line_no.append(line_no)
                rec.source.append(source)
                open_record = len(rec.content) not in rec.refused
                if m is None:
                    rec.misses += 1
                    rec.content.append(text)
                    for h in header_names:
                        rec.fields[h].append(None)
                    continue
                matched_here += 1
                rec.content.append(m.group("Content"))
                for h in header_names:
                    rec.fields[h].append(m.group(h))
            if matched_here == 0:
                raise AlogError(path, f"no line matches the log format {fmt.format!r} (preset {fmt.name})")
    return rec


def timestamps(rec: Records, fmt: LogFormat, year: int | None, first_path: Path) -> pd.Series:
    n = len(rec.content)
    if not fmt.timestamp_format or not fmt.timestamp_fields:
        return pd.Series([pd.NaT] * n, dtype="datetime64[us]")
    cols = [pd.Series(rec.fields[f], dtype="object") for f in fmt.timestamp_fields]
    text = cols[0].astype("string")
    for col in cols[1:]:
        text = text + " " + col.astype("string")
    form = fmt.timestamp_format
    if fmt.yearless:
        text = str(logformat.year_for(first_path, year)) + " " + text
        form = "%Y " + form
    if form == "ISO8601":
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True).dt.tz_localize(None)
    else:
        parsed = pd.to_datetime(text, format=form, errors="coerce")
    return parsed.astype("datetime64[us]")


def sessions(content: list[str], session_regex: str | None) -> list[str | None]:
    """Session ids found in each line's content; several ids (an HDFS delete of many blocks) join with a space."""
    if not session_regex:
        return [None] * len(content)
    rx = re.compile(session_regex)
    out: list[str | None] = []
    for text in content:
        ids = [m.group(1) if m.groups() else m.group(0) for m in rx.finditer(text)]
        out.append(" ".join(dict.fromkeys(ids)) if ids else None)
    return out


# --- the steps ---------------------------------------------------------------------------


def _frame(rec: Records, fmt: LogFormat, cluster_ids: list[int], templates: list[str],
           year: int | None, first_path: Path) -> pd.DataFrame:
    frame = pd.DataFrame({
        "line_no": pd.Series(rec.line_no, dtype="int64"),
        "source": rec.source,
        "timestamp": timestamps(rec, fmt, year, first_path),
        "host": rec.fields[fmt.host_field] if fmt.host_field else [None] * len(rec.content),
        "session": sessions(rec.content, fmt.session_regex),
        "level": rec.fields[fmt.level_field] if fmt.level_field else [None] * len(rec.content),
        "content": rec.content,
        "cluster_id": pd.Series(cluster_ids, dtype="int64"),
        "template": templates,
    })
    return frame


def _write_parquet(frame: pd.DataFrame, out: Path) -> None:
    table = pa.Table.from_pandas(frame, schema=PARSED_SCHEMA, preserve_index=False)
    pq.write_table(table, out)


def _progress(paths: list[Path], desc: str) -> tqdm:
    total = sum(logformat.count_lines(p) for p in paths if p.is_file())
    return tqdm(total=total, desc=desc, unit="line", unit_scale=True, disable=None, leave=False)


def parse(paths: list[Path], fmt: LogFormat, workspace: Path, *, parsed_out: Path | None = None,
          templates_out: Path | None = None, parser_out: Path | None = None, state_out: Path | None = None,
          template_file: Path | None = None, year: int | None = None,
          max_line_bytes: int = logformat.MAX_LINE_BYTES) -> ParseResult:
    """Mine templates from raw logs (or match a user template list) and write the parse artifacts."""
    if not paths:
        raise AlogError(None, "no log files given (--logs)")
    parsed_out = parsed_out or workspace / "parsed.parquet"
    templates_out = templates_out or workspace / "templates.json"
    parser_out = parser_out or workspace / "parser.json"
    state_out = state_out or workspace / "drain_state.json"
    check_outputs(parsed_out, templates_out, parser_out, state_out)
    started = time.perf_counter()
    with _progress(paths, "read") as bar:
        rec = split_lines(paths, fmt, max_line_bytes, bar)

    if template_file is not None:
        user_templates = read_template_file(template_file)
        matcher = TemplateListMatcher(user_templates)
        cache: dict[str, int] = {}
        ids = [cache.setdefault(c, matcher.match(c)) if c not in cache else cache[c] for c in rec.content]
        line_templates = [user_templates[i - 1] if i else c for i, c in zip(ids, rec.content)]
        entries = [{"cluster_id": i + 1, "template": t} for i, t in enumerate(user_templates)]
        mode, state, n_clusters = "templates", None, len(user_templates)
    else:
        miner, ids = mine(rec.content, fmt)
        ids = [UNMATCHED_CLUSTER if k in rec.refused else i for k, i in enumerate(ids)]
        final = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
        line_templates = [final.get(i, c) for i, c in zip(ids, rec.content)]
        entries = [{"cluster_id": c.cluster_id, "template": c.get_template(),
                    "tokens": list(c.log_template_tokens)} for c in full_search_order(miner)]
        mode, state, n_clusters = "drain", save_state(miner), len(final)

    frame = _frame(rec, fmt, ids, line_templates, year, paths[0])
    sizes = frame.groupby("cluster_id").size()
    summary = [{"cluster_id": int(e["cluster_id"]), "template": e["template"],
                "size": int(sizes.get(e["cluster_id"], 0))}
               for e in sorted(entries, key=lambda e: e["cluster_id"])]
    with AtomicOutputs() as out:
        _write_parquet(frame, out.path(parsed_out))
        out.write_json(templates_out, summary)
        out.write_json(parser_out, parser_json(fmt, mode, entries))
        if state is not None:
            out.write_json(state_out, state)
    outputs = [parsed_out, templates_out, parser_out] + ([state_out] if state is not None else [])
    return ParseResult(len(rec.content), rec.misses, n_clusters, time.perf_counter() - started, outputs,
                       rec.continued)


def match(paths: list[Path], parser_path: Path, *, year: int | None = None,
          max_line_bytes: int = logformat.MAX_LINE_BYTES, multiline: bool | None = None) -> pd.DataFrame:
    """Key new lines with an existing parser (no mining): the same columns as parsed.parquet."""
    return match_records(paths, parser_path, year=year, max_line_bytes=max_line_bytes, multiline=multiline)[0]


def match_records(paths: list[Path], parser_path: Path, *, year: int | None = None,
                  max_line_bytes: int = logformat.MAX_LINE_BYTES,
                  multiline: bool | None = None) -> tuple[pd.DataFrame, dict[int, str]]:
    """match(), and the records a regex gave up on (row -> why): keyed unknown, as the C matcher does."""
    parser = load_parser(parser_path)
    fmt = format_from_parser(parser)
    if multiline is not None:
        fmt = replace(fmt, multiline=multiline)
    with _progress(paths, "read") as bar:
        rec = split_lines(paths, fmt, max_line_bytes, bar)
    templates_by_id = {int(t["cluster_id"]): t["template"] for t in parser["templates"]}
    refused_text: dict[str, str] = {}
    if parser["mode"] == "templates":
        matcher = TemplateListMatcher([t["template"] for t in parser["templates"]])
        match_one = matcher.match
    else:
        miner = matcher_from_parser(parser, parser_path)
        masked_of = mask_all(miner, dict.fromkeys(rec.content), refused_text)

        def match_one(text: str) -> int:
            if text not in masked_of:
                return UNMATCHED_CLUSTER
            cluster = miner.drain.match(masked_of[text], full_search_strategy=MATCH_STRATEGY)
            return cluster.cluster_id if cluster is not None else UNMATCHED_CLUSTER

    cache: dict[str, int] = {}
    ids = []
    for text in tqdm(rec.content, desc="match", unit="line", unit_scale=True, disable=None, leave=False):
        cid = cache.get(text)
        if cid is None:
            cid = cache[text] = match_one(text)
        ids.append(cid)
    refused = dict(rec.refused)
    for k, text in enumerate(rec.content):
        if k not in refused and text in refused_text:
            refused[k] = refused_text[text]
    ids = [UNMATCHED_CLUSTER if k in refused else i for k, i in enumerate(ids)]
    line_templates = [templates_by_id.get(i, c) for i, c in zip(ids, rec.content)]
    return _frame(rec, fmt, ids, line_templates, year, paths[0]), refused


def write_parsed(frame: pd.DataFrame, path: Path) -> None:
    with AtomicOutputs() as out:
        _write_parquet(frame, out.path(path))


def match_jsonl(paths: list[Path], parser_path: Path, vocab: "Any") -> Iterator[str]:
    """`invoke match`: one JSON line per non-blank input line: line_no, index, template (null when unknown)."""
    frame, refused = match_records(paths, parser_path)
    unk = vocab.unk_index
    for k, (source, line_no, template) in enumerate(zip(frame["source"], frame["line_no"], frame["template"])):
        if k in refused:
            record = {"line_no": int(line_no), "index": unk, "template": None, "error": refused[k]}
        else:
            index = vocab.key(template)
            record = {"line_no": int(line_no), "index": index, "template": template if index != unk else None}
        if len(paths) > 1:
            record = {"source": source, **record}
        yield json.dumps(record, ensure_ascii=False)
