"""Parser accuracy on LogHub-style folders against their ground truth, preset vs generic default.

A LogHub-style folder holds `<System>/<System>_2k.log` and `<System>/<System>_2k.log_structured*.csv`
(LineId, EventId, EventTemplate). Each system is parsed twice: with its preset (when one has the
system's name) and with the generic default, given only its logparser format string. Grouping
accuracy (GA) is logparser's; parsing accuracy (PA) is the share of lines whose template equals
the ground truth's exactly, after mask names (`<NUM>`) become `<*>` and whitespace runs one space.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from alog_edge.formats import logformat
from alog_edge.data import parse
from alog_edge.errors import AlogError
from alog_edge.evaluation.metrics import format_table, grouping_accuracy

# Published Drain grouping accuracy on these samples (LogPAI benchmark).
PUBLISHED_DRAIN = {"HDFS": 0.998, "BGL": 0.963, "Hadoop": 0.948, "Zookeeper": 0.967,
                   "OpenStack": 0.733, "Linux": 0.690}

# logparser's format strings of the shared systems (its benchmark settings): all the generic
# default is given.
LOGHUB_FORMATS = {
    "HDFS": "<Date> <Time> <Pid> <Level> <Component>: <Content>",
    "BGL": "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
    "Hadoop": "<Date> <Time> <Level> \\[<Process>\\] <Component>: <Content>",
    "Zookeeper": "<Date> <Time> - <Level>  \\[<Node>:<Component>@<Id>\\] - <Content>",
    "OpenStack": "<Logrecord> <Date> <Time> <Pid> <Level> <Component> \\[<ADDR>\\] <Content>",
    "Linux": "<Month> <Date> <Time> <Level> <Component>(\\[<PID>\\])?: <Content>",
}


def normalise_template(template: str) -> str:
    return " ".join(re.sub(r"<[A-Z]*\*?>", "<*>", str(template)).split())


def truth_file(folder: Path, system: str) -> Path:
    found = sorted((folder / system).glob(f"{system}_2k.log_structured*.csv"))
    corrected = [p for p in found if "corrected" in p.name]
    if not found:
        raise AlogError(folder / system, f"no {system}_2k.log_structured*.csv ground truth")
    return (corrected or found)[0]


def score(folder: Path, system: str, fmt: logformat.LogFormat, workspace: Path) -> dict[str, Any]:
    """GA, PA, template counts and lines/s of one parse of one system."""
    log = folder / system / f"{system}_2k.log"
    truth_path = truth_file(folder, system)
    res = parse.parse([log], fmt, workspace)
    parsed = pd.read_parquet(workspace / "parsed.parquet", columns=["line_no", "cluster_id", "template"])
    truth = pd.read_csv(truth_path, usecols=["LineId", "EventId", "EventTemplate"])
    if list(parsed["line_no"]) != list(truth["LineId"]):
        raise AlogError(truth_path, "ground truth lines do not align with the parsed lines")
    pa = (parsed["template"].map(normalise_template) == truth["EventTemplate"].map(normalise_template)).mean()
    return {"ga": round(grouping_accuracy(parsed["cluster_id"], truth["EventId"]), 4), "pa": round(float(pa), 4),
            "templates": res.clusters, "true_templates": int(truth["EventId"].nunique()),
            "lines_per_s": round(res.lines_per_second)}


def system_accuracy(datasets: Path, system: str, workspace: Path, log_format: str | None = None) -> dict[str, Any]:
    """The preset (if any) and the generic default side by side for one system."""
    row: dict[str, Any] = {"system": system}
    preset = logformat.PRESETS.get(system.lower())
    log_format = log_format or LOGHUB_FORMATS.get(system) or (preset.format if preset else None)
    if log_format is None:
        raise AlogError(datasets / system, f"no format string for {system}: give one (System=FORMAT)")
    if preset is not None:
        p = score(datasets, system, preset, workspace / system / "preset")
        row.update({"preset_ga": p["ga"], "preset_pa": p["pa"]})
    g = score(datasets, system, logformat.resolve(None, log_format), workspace / system / "generic")
    row.update({"generic_ga": g["ga"], "generic_pa": g["pa"], "templates": g["templates"],
                "true_templates": g["true_templates"], "generic_lines_per_s": g["lines_per_s"]})
    if system in PUBLISHED_DRAIN:
        row["published_drain"] = PUBLISHED_DRAIN[system]
    return row


def systems_in(folder: Path) -> list[str]:
    """The systems of a LogHub-style folder: subfolders holding <name>_2k.log."""
    if not folder.is_dir():
        raise AlogError(folder, "no such folder")
    found = sorted(d.name for d in folder.iterdir() if (d / f"{d.name}_2k.log").is_file())
    if not found:
        raise AlogError(folder, "no <System>/<System>_2k.log in this folder")
    return found


def accuracy_table(datasets: Path, workspace: Path, formats: dict[str, str] | None = None) -> list[dict[str, Any]]:
    formats = formats or {}
    rows = [system_accuracy(datasets, s, workspace, formats.get(s)) for s in systems_in(datasets)]
    mean: dict[str, Any] = {"system": "mean"}
    for key in ("preset_ga", "generic_ga", "preset_pa", "generic_pa"):
        values = [r[key] for r in rows if key in r]
        if values:
            mean[key] = round(sum(values) / len(values), 4)
    return rows + [mean]


def parse_formats(specs: list[str]) -> dict[str, str]:
    """--formats System=FORMAT (repeatable), or a JSON file {"System": "FORMAT"}."""
    import json
    out: dict[str, str] = {}
    for spec in specs:
        if "=" in spec and "<" in spec.split("=", 1)[1]:
            name, fmt = spec.split("=", 1)
            out[name] = fmt
            continue
        path = Path(spec)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AlogError(path, f"not System=FORMAT nor a JSON file of formats ({exc})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise AlogError(path, 'expected {"System": "<format string>", ...}')
        out.update(data)
    return out


COLUMNS = ["system", "preset_ga", "generic_ga", "preset_pa", "generic_pa", "templates", "true_templates",
           "generic_lines_per_s", "published_drain"]


def format_rows(rows: list[dict[str, Any]]) -> str:
    return format_table(rows, COLUMNS)
