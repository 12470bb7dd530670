"""Write the fixtures of the runtime's C tests: tiny real ONNX models made with onnx.helper.

Run by CMake at build time (runtime/tests/CMakeLists.txt) with the Python that runs Conan:

    python make_onnx_fixtures.py OUTDIR

OUTDIR/add.onnx                  sum = a + b, float32 [n]
OUTDIR/model_dir/deeplog.onnx    DeepLog's interface: input_sequence int64 [batch_size,
                                 sequence_length] -> predictions float32 [batch_size, 3]
OUTDIR/model_dir/mscred.onnx     MSCRED's interface: input_features float32 [batch_size, 1, 5, 3]
                                 -> reconstruction (same shape), anomaly_score float32 [batch_size]
OUTDIR/model_dir/vocab.json      the C form, 3 templates
OUTDIR/training_form/vocab.json  the training form, which the runtime refuses
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

OPSET = 11
IR_VERSION = 7  # opset 11 models as the project's exporter writes them


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="alog-edge-tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(path)


def add_model() -> onnx.GraphProto:
    vec = ["n"]
    return helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"])], "add",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, vec),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, vec)],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, vec)])


def deeplog_model(vocab_size: int = 3) -> onnx.GraphProto:
    """Embedding lookup of each key, averaged over the window: logits for the next key."""
    embedding = helper.make_tensor(
        "embedding", TensorProto.FLOAT, [vocab_size, vocab_size],
        [float(10 * row + col) for row in range(vocab_size) for col in range(vocab_size)])
    return helper.make_graph(
        [helper.make_node("Gather", ["embedding", "input_sequence"], ["embedded"], axis=0),
         helper.make_node("ReduceMean", ["embedded"], ["predictions"], axes=[1], keepdims=0)],
        "deeplog",
        [helper.make_tensor_value_info("input_sequence", TensorProto.INT64,
                                       ["batch_size", "sequence_length"])],
        [helper.make_tensor_value_info("predictions", TensorProto.FLOAT,
                                       ["batch_size", vocab_size])],
        initializer=[embedding])


def mscred_model(window: int = 5, features: int = 3) -> onnx.GraphProto:
    shape = ["batch_size", 1, window, features]
    return helper.make_graph(
        [helper.make_node("Identity", ["input_features"], ["reconstruction"]),
         helper.make_node("ReduceSum", ["input_features"], ["anomaly_score"], axes=[1, 2, 3],
                          keepdims=0)],
        "mscred",
        [helper.make_tensor_value_info("input_features", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("reconstruction", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("anomaly_score", TensorProto.FLOAT, ["batch_size"])])


def main(out: Path) -> None:
    _save(add_model(), out / "add.onnx")
    _save(deeplog_model(), out / "model_dir" / "deeplog.onnx")
    _save(mscred_model(), out / "model_dir" / "mscred.onnx")
    templates = ["Receiving block <*> src: <*>", 'quoted "<*>" \\ caf\u00e9', "PacketResponder <*>"]
    (out / "model_dir" / "vocab.json").write_text(
        json.dumps({str(i): t for i, t in enumerate(templates)}, ensure_ascii=False), "utf-8")
    (out / "training_form").mkdir(parents=True, exist_ok=True)
    (out / "training_form" / "vocab.json").write_text(
        json.dumps({t: i for i, t in enumerate(templates)}), "utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_onnx_fixtures.py OUTDIR")
    main(Path(sys.argv[1]))
