"""convert --quantize int8: a real DeepLog quantised by onnxruntime, checked against float32, run by the C runtime."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import onnx
import pytest

from alog_edge.data import dataset, parse
from alog_edge.export import convert as export
from alog_edge.export import quantize
from alog_edge.formats import logformat, vocab
from alog_edge.models import deeplog_rule
from alog_edge.toolchain import build as native
from alog_edge.training import train
from alog_edge.models.deeplog import DeepLogConfig

from conftest import REPO, invoke


@pytest.fixture(scope="module")
def converted(tmp_path_factory, datasets):
    """DeepLog trained for one epoch on the real HDFS sessions, converted in float32 and with int8."""
    ws = tmp_path_factory.mktemp("quantize")
    sessions = datasets / "hdfs-sessions"
    dataset.build_deeplog_inputs(ws, sessions_file=sessions / "hdfs_train",
                                 templates_file=sessions / "HDFS_templates.csv")
    voc = vocab.load(ws / "vocab.json")
    train.train_deeplog(ws / "sequences.parquet", voc, ws / "deeplog.pth", DeepLogConfig(voc.num_classes),
                        train.TrainConfig(epochs=1, seed=5, threads=1))
    parse.parse([datasets / "loghub-2k/HDFS/HDFS_2k.log"], logformat.PRESETS["hdfs"], ws,
                template_file=sessions / "HDFS_templates.csv")
    dirs = {}
    for mode in ("none", "int8"):
        dirs[mode] = ws / f"onnx-{mode}"
        export.convert(export.ConvertRequest(vocab=ws / "vocab.json", parser=ws / "parser.json",
                                             output_dir=dirs[mode], deeplog_model=ws / "deeplog.pth",
                                             sequences=ws / "sequences.parquet", quantize=mode))
    return ws, dirs


def test_int8_is_kept_only_with_verdicts_equal_to_float32_and_says_so_in_meta(converted):
    ws, dirs = converted
    meta = json.loads((dirs["int8"] / "deeplog.onnx.meta.json").read_text())
    report = meta["quantization"]
    assert report["windows"] > 1000
    assert report["kept"] == (report["disagreements"] == 0)
    ops = {n.op_type for n in onnx.load(dirs["int8"] / "deeplog.onnx").graph.node}
    assert ("DynamicQuantizeLSTM" in ops) == report["kept"]
    assert "quantization" not in json.loads((dirs["none"] / "deeplog.onnx.meta.json").read_text())
    if report["kept"]:  # the verdicts of the file that landed, recomputed here, on the same windows
        x, y = quantize.validation_windows(ws / "sequences.parquet", meta)
        rule = deeplog_rule.from_meta(meta)
        verdicts = [quantize.flagged(quantize._logits(quantize._session(d / "deeplog.onnx"), x), y, rule)
                    for d in (dirs["none"], dirs["int8"])]
        assert np.array_equal(*verdicts)
        assert report["speedup"] > 0


def test_the_c_runtime_passes_selftest_on_the_int8_model_directory(converted):
    _, dirs = converted
    binary = native.build_runtime(REPO, "x86_64") / "bin" / "alog-edge"
    proc = subprocess.run([str(binary), "selftest", str(dirs["int8"])], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cases passed" in proc.stderr


def test_an_unknown_quantize_value_is_one_error_line():
    proc = invoke("convert", "--quantize", "int4")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --quantize:")
