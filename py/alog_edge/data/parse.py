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
from drain3 import TemplateMiner
from drain3.drain import LogCluster, Node
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig
from tqdm import tqdm

from alog_edge.data import bounded, refine
from alog_edge.formats import logformat
from alog_edge.errors import AlogError
from alog_edge.fileio import AtomicOutputs, check_outputs, read_json
from alog_edge.formats.logformat import LogFormat

log = logging.getLogger(__name__)

PARSER_FORMAT_VERSION = 1
MATCH_STRATEGY = "always"
UNMATCHED_CLUSTER = 0

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


# --- Drain3 ----------------------------------------------------------------------------

def miner_config(fmt: LogFormat) -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.drain_sim_th = fmt.sim_th
    config.drain_depth = fmt.depth
    config.drain_extra_delimiters = list(fmt.extra_delimiters)
    config.masking_instructions = [MaskingInstruction(p, m) for p, m in fmt.masks]
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    return config


def _node_to_json(node: Node) -> dict[str, Any]:
    return {"clusters": list(node.cluster_ids),
            "children": {k: _node_to_json(c) for k, c in node.key_to_child_node.items()}}


def _node_from_json(obj: dict[str, Any]) -> Node:
    node = Node()
    node.cluster_ids = [int(c) for c in obj["clusters"]]
    node.key_to_child_node = {k: _node_from_json(c) for k, c in obj["children"].items()}
    return node


def drain_state(miner: TemplateMiner) -> dict[str, Any]:
    """The Drain prefix tree and clusters as plain JSON (Drain3's own snapshot is jsonpickle)."""
    drain = miner.drain
    return {
        "clusters_counter": drain.clusters_counter,
        "clusters": [{"id": c.cluster_id, "size": c.size, "tokens": list(c.log_template_tokens)}
                     for c in drain.id_to_cluster.values()],
        "tree": _node_to_json(drain.root_node),
    }


def load_miner(parser: dict[str, Any], state: dict[str, Any], state_path: Path) -> TemplateMiner:
    """The miner exactly as mining left it (to mine more lines into it)."""
    fmt = format_from_parser(parser)
    miner = TemplateMiner(config=miner_config(fmt))
    try:
        drain = miner.drain
        for c in state["clusters"]:
            cluster = LogCluster(c["tokens"], int(c["id"]))
            cluster.size = int(c["size"])
            drain.id_to_cluster[cluster.cluster_id] = cluster
        drain.clusters_counter = int(state["clusters_counter"])
        drain.root_node = _node_from_json(state["tree"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AlogError(state_path, f"not a Drain state file ({exc!r})") from None
    return miner


def matcher_from_parser(parser: dict[str, Any], parser_path: Path) -> TemplateMiner:
    """A miner for `match(..., "always")` built from parser.json alone.

    Full search visits a token-count node's own clusters before its children's, so a flat tree
    holding the templates in parser.json's order gives Drain3 the same candidates in the same order.
    """
    try:
        clusters = [LogCluster(list(entry["tokens"]), int(entry["cluster_id"])) for entry in parser["templates"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise AlogError(parser_path, f"malformed templates entry ({exc!r})") from None
    return flat_miner(format_from_parser(parser), clusters)


def full_search_order(miner: TemplateMiner) -> list[LogCluster]:
    """Clusters in the order Drain3's full search visits them, per token count: ties go to the earliest."""
    drain = miner.drain
    out = []
    for key in drain.root_node.key_to_child_node:
        for cid in drain.get_clusters_ids_for_seq_len(int(key)):
            out.append(drain.id_to_cluster[cid])
    return out


def flat_miner(fmt: LogFormat, clusters: Iterable[LogCluster]) -> TemplateMiner:
    """A miner whose tree holds the clusters flat under their token count, in the order given:
    Drain3's full search then visits them in that order, as the C matcher does with parser.json."""
    miner = TemplateMiner(config=miner_config(fmt))
    drain = miner.drain
    for cluster in clusters:
        drain.id_to_cluster[cluster.cluster_id] = cluster
        node = drain.root_node.key_to_child_node.setdefault(str(len(cluster.log_template_tokens)), Node())
        node.cluster_ids.append(cluster.cluster_id)
    drain.clusters_counter = max(drain.id_to_cluster, default=0)
    return miner


def mask_all(miner: TemplateMiner, texts: Iterable[str], refused: dict[str, str]) -> dict[str, str]:
    """Each text masked by the miner's masks; a text on which a mask ran past its time goes to refused."""
    out = {}
    with bounded.Guard() as guard:
        for text in texts:
            try:
                out[text] = guard.mask(miner.masker, text)
            except bounded.RegexGaveUp as exc:
                refused[text] = str(exc)
    return out


def mine(contents: list[str], fmt: LogFormat,
         refused: dict[str, str] | None = None) -> tuple[TemplateMiner, list[int]]:
    """Mine the contents with Drain3 (then refine the clusters when the format asks for it), and key
    every line by matching it against the final clusters: the key inference gives it. Contents on
    which a mask gives up are neither mined nor matched (key 0) and land in `refused`."""
    refused = {} if refused is None else refused
    miner = TemplateMiner(config=miner_config(fmt))
    uniques = list(dict.fromkeys(contents))
    with tqdm(total=len(contents) + 2 * len(uniques), desc="mine", unit="line", unit_scale=True,
              disable=None, leave=False) as bar:
        # Each distinct content is masked once (masking is most of the time); Drain3 mines every line.
        masked_of = mask_all(miner, uniques, refused)
        for text in contents:
            if text in masked_of:
                miner.drain.add_log_message(masked_of[text])
            bar.update(1)
        uniques = [text for text in uniques if text in masked_of]
        masked = [masked_of[text] for text in uniques]
        if fmt.refine:
            assigned = []
            for text in masked:
                cluster = miner.drain.match(text, full_search_strategy=MATCH_STRATEGY)
                if cluster is not None:
                    assigned.append((cluster.cluster_id, tuple(miner.drain.get_content_as_tokens(text))))
                bar.update(1)
            members = refine.group_members(assigned)
            refined = refine.refine([(c.cluster_id, tuple(c.log_template_tokens)) for c in full_search_order(miner)],
                                    members)
            miner = flat_miner(fmt, [LogCluster(list(r.tokens), r.cluster_id) for r in refined])
        else:
            bar.update(len(uniques))
        # Every line's key is what matching against the final clusters gives.
        by_content: dict[str, int] = {}
        for text, m in zip(uniques, masked):
            cluster = miner.drain.match(m, full_search_strategy=MATCH_STRATEGY)
            by_content[text] = cluster.cluster_id if cluster is not None else UNMATCHED_CLUSTER
            bar.update(1)
    ids = [by_content.get(text, UNMATCHED_CLUSTER) for text in contents]
    if fmt.refine:
        sizes = pd.Series(ids).value_counts()
        for cluster in miner.drain.clusters:
            cluster.size = int(sizes.get(cluster.cluster_id, 0))
    return miner, ids


# --- user-given templates (e.g. HDFS_templates.csv) ------------------------------------

def read_template_file(path: str | Path) -> list[str]:
    """One template per line (line N = event id N), or a LogHub CSV with an EventTemplate column."""
    path = Path(path)
    lines = [t for _, t in logformat.read_lines(path)]
    if lines and lines[0].startswith("EventId,EventTemplate"):
        frame = pd.read_csv(path)
        return [str(t) for t in frame["EventTemplate"]]
    templates = [t.strip() for t in lines]
    if any(not t for t in templates):
        raise AlogError(path, f"line {templates.index('') + 1} is empty: every line must hold a template")
    return templates


class TemplateListMatcher:
    """Match content against user templates whose `<*>` stands for any text; the most specific wins."""

    def __init__(self, templates: list[str]) -> None:
        self.templates = templates
        self._regexes = [re.compile("^" + ".*?".join(re.escape(p) for p in t.split("<*>")) + "$", re.S)
                         for t in templates]
        self._literal = [len(t.replace("<*>", "")) for t in templates]

    def match(self, content: str) -> int:
        """1-based event id of the best match, or 0."""
        best, best_len = 0, -1
        for i, rx in enumerate(self._regexes):
            if self._literal[i] > best_len and rx.match(content):
                best, best_len = i + 1, self._literal[i]
        return best


# --- parser.json -------------------------------------------------------------------------

def parser_json(fmt: LogFormat, mode: str, templates: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format_version": PARSER_FORMAT_VERSION,
        "preset": fmt.name,
        "log_format": fmt.format,
        "line_regex": fmt.regex,
        "headers": list(fmt.headers),
        "content_group": "Content",
        "host_field": fmt.host_field,
        "level_field": fmt.level_field,
        "session_regex": fmt.session_regex,
        "timestamp": {"fields": list(fmt.timestamp_fields), "format": fmt.timestamp_format,
                      "yearless": fmt.yearless},
        "masking": [{"regex_pattern": p, "mask_with": m} for p, m in fmt.masks],
        "mask_prefix": "<",
        "mask_suffix": ">",
        "param_str": "<*>",
        "extra_delimiters": list(fmt.extra_delimiters),
        "multiline": fmt.multiline,
        "drain": {"sim_th": fmt.sim_th, "depth": fmt.depth, "refine": fmt.refine},
        "mode": mode,
        "match_strategy": MATCH_STRATEGY if mode == "drain" else "most_literal",
        "templates": templates,
    }


def format_from_parser(parser: dict[str, Any]) -> LogFormat:
    ts = parser.get("timestamp") or {}
    return LogFormat(
        name=parser.get("preset", "custom"), format=parser["log_format"],
        masks=tuple((m["regex_pattern"], m["mask_with"]) for m in parser["masking"]),
        session_regex=parser.get("session_regex"), timestamp_fields=tuple(ts.get("fields", ())),
        timestamp_format=ts.get("format"), yearless=bool(ts.get("yearless")),
        host_field=parser.get("host_field"), level_field=parser.get("level_field"),
        sim_th=float(parser["drain"]["sim_th"]), depth=int(parser["drain"]["depth"]),
        refine=bool(parser["drain"].get("refine", False)),
        extra_delimiters=tuple(parser.get("extra_delimiters", ())),
        multiline=bool(parser.get("multiline", False)))


_STR, _OPT_STR = (str,), (str, type(None))


def check_parser_types(parser: dict[str, Any], path: str | Path) -> None:
    """Every value parser.json's readers use has the type they expect, and its regexes compile."""
    def need(ok: bool, where: str, what: str) -> None:
        if not ok:
            raise AlogError(path, f"{where} must be {what}")

    def str_list(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(x, str) for x in value)

    need(isinstance(parser["format_version"], int), "format_version", "an integer")
    need(isinstance(parser["log_format"], str), "log_format", "a string")
    need(parser["mode"] in ("drain", "templates"), "mode", '"drain" or "templates"')
    masking = parser["masking"]
    need(isinstance(masking, list) and all(isinstance(m, dict) and isinstance(m.get("regex_pattern"), str)
                                           and isinstance(m.get("mask_with"), str) for m in masking),
         "masking", "a list of {regex_pattern, mask_with} strings")
    drain = parser["drain"]
    need(isinstance(drain, dict) and isinstance(drain.get("sim_th"), (int, float))
         and not isinstance(drain.get("sim_th"), bool) and 0 <= drain["sim_th"] <= 1
         and isinstance(drain.get("depth"), int) and not isinstance(drain.get("depth"), bool)
         and 3 <= drain["depth"] <= 100, "drain", "{sim_th: a number in 0..1, depth: an integer in 3..100}")
    templates = parser["templates"]
    need(isinstance(templates, list) and all(isinstance(t, dict) and isinstance(t.get("template"), str)
                                             for t in templates), "templates", "a list of {cluster_id, template}")
    if parser["mode"] == "drain":
        need(all(str_list(t.get("tokens")) for t in templates), "templates[].tokens", "a list of strings")
    for key in ("session_regex", "host_field", "level_field"):
        need(isinstance(parser.get(key), _OPT_STR), key, "a string or null")
    for key in ("extra_delimiters", "headers"):
        need(key not in parser or str_list(parser[key]), key, "a list of strings")
    ts = parser.get("timestamp")
    need(ts is None or (isinstance(ts, dict) and str_list(ts.get("fields", [])) and
                        isinstance(ts.get("format"), _OPT_STR) and isinstance(ts.get("yearless", False), bool)),
         "timestamp", "null or {fields: a list of strings, format: a string or null, yearless: a boolean}")
    for where, pattern in ([("session_regex", parser.get("session_regex"))] +
                           [(f"masking[{i}].regex_pattern", m["regex_pattern"]) for i, m in enumerate(masking)]):
        if pattern is not None:
            try:
                re.compile(pattern)
            except (re.error, RecursionError, OverflowError) as exc:
                raise AlogError(path, f"{where} is not a valid regex ({exc})") from None


def load_parser(path: str | Path) -> dict[str, Any]:
    parser = read_json(path)
    required = ("format_version", "log_format", "masking", "drain", "mode", "templates")
    if not isinstance(parser, dict) or any(k not in parser for k in required):
        raise AlogError(path, f"not a parser.json (needs {', '.join(required)})")
    check_parser_types(parser, path)
    if parser["format_version"] != PARSER_FORMAT_VERSION:
        raise AlogError(path, f"parser format version {parser['format_version']} is not supported")
    # Drain3 is configured from log_format and its defaults: refuse a file that says otherwise.
    if "line_regex" in parser and parser["line_regex"] != logformat.format_to_regex(parser["log_format"])[0]:
        raise AlogError(path, "line_regex does not match log_format")
    for key, default in (("mask_prefix", "<"), ("mask_suffix", ">"), ("param_str", "<*>"), ("content_group", "Content")):
        if parser.get(key, default) != default:
            raise AlogError(path, f"{key} {parser[key]!r} is not supported (only {default!r})")
    ids = [t.get("cluster_id") if isinstance(t, dict) else None for t in parser["templates"]]
    if any(not isinstance(i, int) or i <= UNMATCHED_CLUSTER for i in ids):
        raise AlogError(path, "every templates entry needs a positive integer cluster_id")
    if len(set(ids)) != len(ids):
        raise AlogError(path, "templates entries repeat a cluster_id")
    return parser


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
        mode, state, n_clusters = "drain", drain_state(miner), len(final)

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
