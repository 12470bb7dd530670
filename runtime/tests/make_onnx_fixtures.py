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
OUTDIR/full_model/               a whole model directory as `invoke convert` writes it, tiny:
    vocab.json                   5 templates (keys 0..4, 5 = unknown)
    parser.json                  "<Timestamp> <Host> <Component>: <Content>", ISO 8601 timestamps,
                                 host field Host, session ids sid=xxxx, mode "drain"
    deeplog.onnx (+ .meta.json)  logits = mean over the window of embedding rows: row r puts 1 on
                                 the key after r in the cycle 0 1 2 3 (4 and 5 -> 0); seq_len 3,
                                 top_k 2, seen_keys 0..3
    mscred.onnx (+ .meta.json)   anomaly_score = the sum of the window's counts; window 4,
                                 6 features, gap 2, threshold 10, 10 s buckets per host
OUTDIR/session_model/            full_model's vocab and parser, DeepLog only, with session keys:
    deeplog.onnx (+ .meta.json)  8 classes (6 = start, 7 = end); row r puts 1 on the key after r
                                 in the cycle start 0 1 2 3 end; probability rule, threshold 0.12;
                                 closing_keys [3] ("finish job"), session_idle_seconds 60
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


def deeplog_model(rows: list[list[float]]) -> onnx.GraphProto:
    """Embedding lookup of each key (row k of `rows`), averaged over the window: logits for the next key."""
    classes = len(rows)
    embedding = helper.make_tensor("embedding", TensorProto.FLOAT, [classes, classes],
                                   [v for row in rows for v in row])
    return helper.make_graph(
        [helper.make_node("Gather", ["embedding", "input_sequence"], ["embedded"], axis=0),
         helper.make_node("ReduceMean", ["embedded"], ["predictions"], axes=[1], keepdims=0)],
        "deeplog",
        [helper.make_tensor_value_info("input_sequence", TensorProto.INT64,
                                       ["batch_size", "sequence_length"])],
        [helper.make_tensor_value_info("predictions", TensorProto.FLOAT, ["batch_size", classes])],
        initializer=[embedding])


def small_deeplog_model(vocab_size: int = 3) -> onnx.GraphProto:
    return deeplog_model([[float(10 * row + col) for col in range(vocab_size)] for row in range(vocab_size)])


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


FULL_TEMPLATES = ["start job <*>", "step <*> done", "copy <*> to <*>", "finish job <*>",
                  "rare event <*>"]
NEXT_KEY = {0: 1, 1: 2, 2: 3, 3: 0, 4: 0, 5: 0}


def full_deeplog_model() -> onnx.GraphProto:
    classes = len(FULL_TEMPLATES) + 1
    return deeplog_model([[1.0 if col == NEXT_KEY[row] else 0.0 for col in range(classes)]
                          for row in range(classes)])


def full_model(out: Path) -> None:
    n = len(FULL_TEMPLATES)
    _save(full_deeplog_model(), out / "deeplog.onnx")
    _save(mscred_model(window=4, features=n + 1), out / "mscred.onnx")
    (out / "vocab.json").write_text(json.dumps({str(i): t for i, t in enumerate(FULL_TEMPLATES)}))
    parser = {
        "format_version": 1, "preset": "test",
        "log_format": "<Timestamp> <Host> <Component>: <Content>",
        "line_regex": r"^(?P<Timestamp>.*?)\s+(?P<Host>.*?)\s+(?P<Component>.*?):\s+(?P<Content>.*?)$",
        "headers": ["Timestamp", "Host", "Component", "Content"], "content_group": "Content",
        "host_field": "Host", "level_field": None, "session_regex": r"\bsid=([0-9a-f]{4})\b",
        "timestamp": {"fields": ["Timestamp"], "format": "ISO8601", "yearless": False},
        "masking": [], "mask_prefix": "<", "mask_suffix": ">", "param_str": "<*>",
        "extra_delimiters": [], "drain": {"sim_th": 0.4, "depth": 4}, "mode": "drain",
        "match_strategy": "always",
        "templates": [{"cluster_id": i + 1, "template": t, "tokens": t.split()}
                      for i, t in enumerate(FULL_TEMPLATES)],
    }
    (out / "parser.json").write_text(json.dumps(parser, indent=2))
    deeplog_meta = {
        "format_version": 1, "model_type": "deeplog", "file": "deeplog.onnx",
        "vocab_size": n + 1, "num_templates": n, "unk_index": n, "seq_len": 3, "window": 3,
        "top_k": 2, "seen_keys": [0, 1, 2, 3], "threshold": None,
        "input_names": ["input_sequence"], "output_names": ["predictions"],
        "dynamic_axes": {"input_sequence": {"0": "batch_size", "1": "sequence_length"},
                         "predictions": {"0": "batch_size"}},
        "opset_version": OPSET, "notes": "test fixture",
    }
    (out / "deeplog.onnx.meta.json").write_text(json.dumps(deeplog_meta, indent=2))
    mscred_meta = {
        "format_version": 1, "model_type": "mscred", "file": "mscred.onnx",
        "feature_dim": n + 1, "num_templates": n, "unk_index": n, "window_size": 4,
        "threshold": 10.0, "broken_cell_level": 0.5, "scales": [2], "steps": 2, "gap": 2,
        "counts": {"bucket_seconds": 10.0, "bucket_lines": None, "per_host": True},
        "top_k": None, "input_names": ["input_features"],
        "output_names": ["reconstruction", "anomaly_score"],
        "dynamic_axes": {"input_features": {"0": "batch_size"}}, "opset_version": OPSET,
        "notes": "test fixture",
    }
    (out / "mscred.onnx.meta.json").write_text(json.dumps(mscred_meta, indent=2))


SESSION_NEXT_KEY = {0: 1, 1: 2, 2: 3, 3: 7, 4: 0, 5: 0, 6: 0, 7: 0}


def session_model(out: Path, full: Path) -> None:
    n = len(FULL_TEMPLATES)
    _save(deeplog_model([[1.0 if col == SESSION_NEXT_KEY[row] else 0.0 for col in range(n + 3)]
                         for row in range(n + 3)]), out / "deeplog.onnx")
    for name in ("vocab.json", "parser.json"):
        (out / name).write_bytes((full / name).read_bytes())
    meta = json.loads((full / "deeplog.onnx.meta.json").read_text())
    meta.update({"num_classes": n + 3, "start_key": n + 1, "end_key": n + 2, "rule": "probability",
                 "probability_threshold": 0.12, "closing_keys": [3], "session_idle_seconds": 60})
    (out / "deeplog.onnx.meta.json").write_text(json.dumps(meta, indent=2))


def main(out: Path) -> None:
    _save(add_model(), out / "add.onnx")
    _save(small_deeplog_model(), out / "model_dir" / "deeplog.onnx")
    _save(mscred_model(), out / "model_dir" / "mscred.onnx")
    templates = ["Receiving block <*> src: <*>", 'quoted "<*>" \\ caf\u00e9', "PacketResponder <*>"]
    (out / "model_dir" / "vocab.json").write_text(
        json.dumps({str(i): t for i, t in enumerate(templates)}, ensure_ascii=False), "utf-8")
    full_model(out / "full_model")
    session_model(out / "session_model", out / "full_model")
    (out / "training_form").mkdir(parents=True, exist_ok=True)
    (out / "training_form" / "vocab.json").write_text(
        json.dumps({t: i for i, t in enumerate(templates)}), "utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_onnx_fixtures.py OUTDIR")
    main(Path(sys.argv[1]))
