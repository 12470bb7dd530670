"""Session fixtures and helpers of the board tests (loaded by conftest.py): ONE emulated board for the
session, a small real model directory with both models, and copying files over SSH exec channels."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from alog_edge.data import counts, dataset, demo_data, parse
from alog_edge import demo
from alog_edge.export import convert as export
from alog_edge.formats import logformat, vocab
from alog_edge.training import train
from alog_edge.models.deeplog import DeepLogConfig
from alog_edge.models.mscred import MSCREDConfig


def small_model_dir(ws: Path) -> tuple[Path, Path]:
    """(model directory, held-out demo log) under ws (which keeps the checkpoints and vocab too)."""
    files = demo_data.generate(ws / "data", seed=11, hosts=2, train_minutes=20, test_minutes=30)
    parse.parse([files.train_log], logformat.PRESETS["demo"], ws)
    dataset.build_deeplog_inputs(ws)
    voc = vocab.load(ws / "vocab.json")
    train.train_deeplog(ws / "sequences.parquet", voc, ws / "deeplog.pth", DeepLogConfig(voc.num_classes),
                        train.TrainConfig(epochs=2, seed=3, threads=1), demo.DEMO_DEEPLOG_RULE)  # the demo's rule
    counts.build(ws, counts.CountSpec(bucket_seconds=10.0))
    train.train_mscred(ws / "counts.parquet", voc, ws / "mscred.pth",
                       MSCREDConfig(voc.num_classes, scales=(2, 5, 10), steps=3, gap=2, channels=(4, 8, 16, 32),
                                    score_scales=(5, 10)),  # 14-bucket windows: a few hundred lines have some
                       train.TrainConfig(epochs=1, batch_size=16, seed=2, threads=1), **demo.DEMO_MSCRED_DECISION)
    model_dir = ws / "models" / "onnx"
    export.convert(export.ConvertRequest(vocab=ws / "vocab.json", parser=ws / "parser.json", output_dir=model_dir,
                                         deeplog_model=ws / "deeplog.pth", mscred_model=ws / "mscred.pth",
                                         sequences=ws / "sequences.parquet", counts=ws / "counts.parquet"))
    return model_dir, files.test_log


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def board(tmp_path_factory):
    """ONE emulated aarch64 board for the whole session (`invoke board start` on free loopback ports),
    powered off at the end: (workspace, status object)."""
    from alog_edge.delivery import board as emulated
    from conftest import invoke

    ws = tmp_path_factory.mktemp("board")
    proc = invoke("board", "start", "-w", str(ws), "--ssh-port", str(free_port()),
                  "--serial-port", str(free_port()), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    try:
        yield ws, json.loads(proc.stdout)
    finally:
        if emulated.read_state(ws)[0] != "stopped":
            emulated.stop(ws)  # powers off, or stops qemu when the board does not answer
