"""Optimised graphs saved at convert time (alog_edge.export.optimize): kept only when they reproduce golden.json."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from alog_edge.export.optimize import fnv1a64, optimized_path, save_optimized


def _model(path: Path) -> None:
    """y = relu(x @ W + b): level "extended" fuses the MatMul and the Add."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["z"]),
         helper.make_node("Relu", ["z"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])], [w, b])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7), str(path))


def _golden(path: Path, x: np.ndarray, shift: float = 0.0) -> list[dict]:
    y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0] + shift
    tensor = lambda a: {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.reshape(-1).tolist()}
    return [{"model": path.name, "name": "case", "inputs": {"x": tensor(x)}, "outputs": {"y": tensor(y)}}]


def test_the_optimised_graph_is_saved_beside_the_model_and_gives_the_golden_outputs(tmp_path: Path) -> None:
    model = tmp_path / "tiny.onnx"
    _model(model)
    x = np.linspace(-2, 2, 24, dtype=np.float32).reshape(3, 8)
    saved = save_optimized(model, _golden(model, x), 1e-5)
    assert saved == optimized_path(model) == tmp_path / f"tiny.opt-{fnv1a64(model.read_bytes()):016x}.onnx"
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C  # FNV-1a 64's published value, as the runtime computes it
    ops = [n.op_type for n in onnx.load(str(saved)).graph.node]
    assert ops != ["MatMul", "Add", "Relu"]  # optimised, not a copy
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    got = ort.InferenceSession(str(saved), options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    want = np.asarray(_golden(model, x)[0]["outputs"]["y"]["data"], np.float32).reshape(3, 4)
    assert np.max(np.abs(got - want)) <= 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx", saved.name]


def test_an_optimised_graph_that_disagrees_with_golden_is_not_kept(tmp_path: Path) -> None:
    model = tmp_path / "tiny.onnx"
    _model(model)
    x = np.ones((2, 8), np.float32)
    assert save_optimized(model, _golden(model, x, shift=0.5), 1e-5) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]  # no partial file left
    json.dumps(_golden(model, x))  # the cases are plain JSON, as in golden.json
