"""Shared fixtures: the real datasets beside the repo, and running tasks as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("ALOG_EDGE_DATASETS", REPO.parent / "shared" / "datasets"))
LOGHUB = DATASETS / "loghub-2k"
HDFS_SESSIONS = DATASETS / "hdfs-sessions"
sys.path.insert(0, str(REPO / "py"))


@pytest.fixture(scope="session")
def datasets() -> Path:
    assert LOGHUB.is_dir(), f"datasets not found at {DATASETS} (set ALOG_EDGE_DATASETS)"
    return DATASETS


def invoke(*args: str, cwd: Path = REPO, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """Run `invoke ARGS` in a fresh process, exactly as a user types it."""
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, datasets):
    """A real workspace with both models trained tiny and its model directory (tests/badinput_util.py);
    read-only: copy what a test changes."""
    from badinput_util import build_tiny
    ws = tmp_path_factory.mktemp("tiny")
    return ws, build_tiny(ws, datasets)


# Session fixtures of the delivery tests: model directories, keys, runtime builds, bundles.
pytest_plugins = ["bundle_fixtures", "ssh_fixtures", "board_support"]  # delivery: bundles, SSH devices, the board
