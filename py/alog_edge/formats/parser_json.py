"""parser.json: everything the C matcher (runtime/src/parser.c) needs to key lines exactly as Python does.

The format regex and its fields, the ordered mask rules, delimiters, the session regex, Drain's
settings, and the templates in Drain3's full-search order. Written by parse, copied into the model
directory by convert, read back by `match`, the parity harness and the device.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alog_edge.errors import AlogError
from alog_edge.fileio import read_json
from alog_edge.formats import logformat
from alog_edge.formats.logformat import LogFormat


PARSER_FORMAT_VERSION = 1
MATCH_STRATEGY = "always"
UNMATCHED_CLUSTER = 0


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
