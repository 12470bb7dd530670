"""Parser accuracy on the LogHub 2k samples against their corrected ground truth."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from . import logformat, parse
from .errors import AlogError
from .evaluate import format_table, grouping_accuracy

# Published Drain grouping accuracy on these samples (LogPAI benchmark).
PUBLISHED_DRAIN = {"HDFS": 0.998, "BGL": 0.963, "Hadoop": 0.948, "Zookeeper": 0.967,
                   "OpenStack": 0.733, "Linux": 0.690}


def system_accuracy(datasets: Path, system: str, workspace: Path) -> dict[str, Any]:
    folder = datasets / system
    truth_path = folder / f"{system}_2k.log_structured_corrected.csv"
    if not truth_path.exists():
        raise AlogError(truth_path, "no such file")
    res = parse.parse([folder / f"{system}_2k.log"], logformat.PRESETS[system.lower()], workspace / system)
    parsed = pd.read_parquet(workspace / system / "parsed.parquet", columns=["line_no", "cluster_id"])
    truth = pd.read_csv(truth_path, usecols=["LineId", "EventId"])
    if list(parsed["line_no"]) != list(truth["LineId"]):
        raise AlogError(truth_path, "ground truth lines do not align with the parsed lines")
    acc = grouping_accuracy(parsed["cluster_id"], truth["EventId"])
    return {"system": system, "accuracy": round(acc, 4), "published_drain": PUBLISHED_DRAIN[system],
            "templates": res.clusters, "true_templates": int(truth["EventId"].nunique()),
            "lines_per_s": round(res.lines_per_second)}


def accuracy_table(datasets: Path, workspace: Path) -> list[dict[str, Any]]:
    return [system_accuracy(datasets, s, workspace) for s in PUBLISHED_DRAIN]


def format_rows(rows: list[dict[str, Any]]) -> str:
    return format_table(rows, ["system", "accuracy", "published_drain", "templates", "true_templates", "lines_per_s"])
