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


# One build of each runtime variant and one trained HDFS DeepLog for the whole session: every test file
# that needs them takes these (a build or a training per file cost minutes of the suite).
@pytest.fixture(scope="session")
def runtime_x86_64() -> Path:
    """The install prefix of the x86_64 runtime (build/x86_64/), built once per session."""
    from alog_edge.toolchain import build as native
    return native.build_runtime(REPO, "x86_64", quiet=True)


@pytest.fixture(scope="session")
def runtime_aarch64() -> Path:
    """The install prefix of the aarch64 runtime (build/aarch64/, cross-compiled), built once per session."""
    from alog_edge.toolchain import build as native
    return native.build_runtime(REPO, "aarch64", quiet=True)


@pytest.fixture(scope="session")
def runtime_x86_64_asan() -> Path:
    """The install prefix of the ASan+UBSan x86_64 runtime (build/x86_64-asan/), built once per session."""
    from alog_edge.toolchain import build as native
    return native.build_runtime(REPO, "x86_64", sanitize=True, quiet=True)


@pytest.fixture(scope="session")
def hdfs_deeplog(tmp_path_factory, datasets):
    """DeepLog trained once per session on every real hdfs_train session (6 epochs, seed 3), and HDFS_2k
    parsed with the sessions' templates: (workspace, vocab, TrainResult). The workspace holds vocab.json,
    sequences.parquet, deeplog.pth, parser.json and parsed.parquet; read-only: `copy_workspace` it to add to it."""
    from alog_edge.data import dataset, parse
    from alog_edge.formats import logformat, vocab
    from alog_edge.training import train
    from alog_edge.models.deeplog import DeepLogConfig
    ws = tmp_path_factory.mktemp("hdfs-deeplog")
    dataset.build_deeplog_inputs(ws, sessions_file=HDFS_SESSIONS / "hdfs_train",
                                 templates_file=HDFS_SESSIONS / "HDFS_templates.csv")
    voc = vocab.load(ws / "vocab.json")
    res = train.train_deeplog(ws / "sequences.parquet", voc, ws / "deeplog.pth", DeepLogConfig(voc.num_classes),
                              train.TrainConfig(epochs=6, seed=3))
    parse.parse([LOGHUB / "HDFS" / "HDFS_2k.log"], logformat.PRESETS["hdfs"], ws,
                template_file=HDFS_SESSIONS / "HDFS_templates.csv")
    return ws, voc, res


def copy_workspace(ws: Path, dest: Path) -> Path:
    """A writable copy of a session workspace (hdfs_deeplog) for a test file that adds to it."""
    import shutil
    shutil.copytree(ws, dest)
    return dest


# Session fixtures of the delivery tests: model directories, keys, runtime builds, bundles.
pytest_plugins = ["bundle_fixtures", "ssh_fixtures", "board_support"]  # delivery: bundles, SSH devices, the board
