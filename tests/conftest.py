"""Shared fixtures: the real datasets beside the repo, and running tasks as a user would."""
from __future__ import annotations

import json
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
def board(tmp_path_factory):
    """ONE emulated aarch64 board for the whole session (`invoke board start` on free loopback ports),
    powered off at the end: (workspace, status object)."""
    from alog_edge.delivery import board as emulated
    from board_support import free_port

    ws = tmp_path_factory.mktemp("board")
    proc = invoke("board", "start", "-w", str(ws), "--ssh-port", str(free_port()),
                  "--serial-port", str(free_port()), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    try:
        yield ws, json.loads(proc.stdout)
    finally:
        if emulated.read_state(ws)[0] != "stopped":
            emulated.stop(ws)
