"""User-given template lists (e.g. HDFS_templates.csv): read them, and key lines by the most literal match."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from alog_edge.errors import AlogError
from alog_edge.formats import logformat


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
