"""The device's rules for a model directory's JSON files, in Python: what convert checks before it commits.

Each rule mirrors runtime/src/model.c (meta.json), runtime/cli/selftest.c (golden.json) and
runtime/src/jsonfile.c (strict JSON: no NaN or Infinity, UTF-8, no NUL escape), so that a model
directory convert writes is one `alog-edge selftest` accepts. tests/test_bad_input.py feeds the same
mutated files to both sides and requires the same verdict.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from alog_edge.errors import AlogError

MAX_WINDOW = 1 << 16     # AE_MAX_WINDOW
MAX_COUNT = 1 << 40      # the loader's bound for sizes, indices and top_k
META_MAX_BYTES = 64 << 20


def _kind(value: Any) -> str:
    """cJSON's kind names (ae_json_kind)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class _NonFinite:
    def __init__(self, name: str) -> None:
        self.name = name


def _find_non_finite(value: Any, where: str = "") -> tuple[str, str] | None:
    stack = [(value, where)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, _NonFinite):
            return at or "the value", v.name
        if isinstance(v, dict):
            stack.extend((x, f"{at}.{k}" if at else k) for k, x in reversed(list(v.items())))
        elif isinstance(v, list):
            stack.extend((x, f"{at}[{i}]") for i, x in reversed(list(enumerate(v))))
    return None


def load_strict(path: Path, max_bytes: int = META_MAX_BYTES) -> Any:
    """JSON as the device's cJSON reads it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AlogError(path, exc.strerror or str(exc)) from None
    if len(raw) > max_bytes:
        raise AlogError(path, f"larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AlogError(path, f"invalid UTF-8 at byte {exc.start}") from None
    try:
        value = json.loads(text, parse_constant=_NonFinite)
    except RecursionError:
        raise AlogError(path, "JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise AlogError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    found = _find_non_finite(value)
    if found is not None:
        raise AlogError(path, f"{found[0]} is {found[1]}, which is not JSON: every number must be finite")
    if _has_nul(value):
        raise AlogError(path, "a NUL character (\\u0000) in a string")
    return value


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "\0" in v:
                return True
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_int(value: Any, low: int, high: int) -> int | None:
    """ae_json_int: a number, within [low, high] as a double, and whole."""
    if not _is_number(value):
        return None
    v = float(value) if not isinstance(value, int) or abs(value) < 1 << 62 else float("inf")
    if not (low <= v <= high) or not float(v).is_integer():
        return None
    return int(v)


class _Meta:
    def __init__(self, path: Path, meta: Any) -> None:
        self.path, self.meta = path, meta

    def fail(self, message: str) -> AlogError:
        return AlogError(self.path, message)

    def int(self, name: str, low: int, high: int) -> int:
        if name not in self.meta:
            raise self.fail(f"{name} is missing")
        item = self.meta[name]
        value = _json_int(item, low, high)
        if value is None:
            if _is_number(item):
                raise self.fail(f"{name} is {item:g}, not an integer in {low}..{high}")
            raise self.fail(f"{name} is {_kind(item)}, not an integer")
        return value

    def number(self, name: str) -> float:
        if name not in self.meta:
            raise self.fail(f"{name} is missing")
        item = self.meta[name]
        if not _is_number(item) or not math.isfinite(item):
            raise self.fail(f"{name} is {_kind(item)}, not a number")
        return float(item)

    def type(self, expected: str) -> None:
        if not isinstance(self.meta, dict):
            raise self.fail(f"expected a JSON object, found {_kind(self.meta)}")
        if "model_type" not in self.meta:
            raise self.fail("model_type is missing")
        item = self.meta["model_type"]
        if not isinstance(item, str):
            raise self.fail(f"model_type is {_kind(item)}, not a string")
        if item != expected:
            raise self.fail(f"model_type is \"{item[:60]}\", expected \"{expected}\"")

    def vocab(self, size_field: str, n: int) -> None:
        size = self.int(size_field, 1, MAX_COUNT)
        if size != n + 1:
            raise self.fail(f"{size_field} is {size}, but vocab.json has {n} templates (expected {n + 1}: "
                            "the templates and the unknown key)")
        unk = self.int("unk_index", 0, MAX_COUNT)
        if unk != n:
            raise self.fail(f"unk_index is {unk}, but vocab.json has {n} templates (expected {n})")


def check_deeplog_meta(path: Path, meta: Any, n: int) -> None:
    """deeplog_meta() of model.c."""
    m = _Meta(path, meta)
    m.type("deeplog")
    m.vocab("vocab_size", n)
    m.int("seq_len", 1, MAX_WINDOW)
    m.int("top_k", 1, MAX_COUNT)
    seen = meta.get("seen_keys")
    if not isinstance(seen, list):
        raise m.fail(f"seen_keys is {_kind(seen) if 'seen_keys' in meta else 'missing'}, not an array of keys")
    for i, key in enumerate(seen):
        if _json_int(key, 0, n) is None:
            raise m.fail(f"seen_keys[{i}] is not a key in 0..{n}")
    _check_key_sets(m, meta, n)


def _check_key_sets(m: _Meta, meta: Any, n: int) -> None:
    """ae_key_sets_load() of deeplog_keysets.c."""
    sets = meta.get("key_sets")
    if sets is None:
        return
    if not isinstance(sets, list):
        raise m.fail(f"key_sets is {_kind(sets)}, not an array of key arrays")
    if meta.get("start_key") is None:
        raise m.fail("key_sets need session keys (start_key and end_key are null)")
    for i, keys in enumerate(sets):
        if not isinstance(keys, list):
            raise m.fail(f"key_sets[{i}] is {_kind(keys)}, not an array of keys")
        for j, key in enumerate(keys):
            if _json_int(key, 0, n - 1) is None:
                raise m.fail(f"key_sets[{i}][{j}] is not a key in 0..{n - 1}")


def check_mscred_meta(path: Path, meta: Any, n: int, has_timestamps: bool) -> None:
    """mscred_meta() of model.c."""
    m = _Meta(path, meta)
    m.type("mscred")
    m.vocab("feature_dim", n)
    m.int("window_size", 1, MAX_WINDOW)
    m.int("gap", 1, MAX_WINDOW)
    m.number("threshold")
    counts = meta.get("counts")
    if not isinstance(counts, dict):
        raise m.fail(f"counts is {_kind(counts) if 'counts' in meta else 'missing'}, not an object "
                     "{bucket_seconds, bucket_lines, per_host}")
    per_host = counts.get("per_host")
    if not isinstance(per_host, bool):
        raise m.fail(f"counts.per_host is {_kind(per_host) if 'per_host' in counts else 'missing'}, not a boolean")
    seconds = counts.get("bucket_seconds")
    if seconds is not None:
        us = round(seconds * 1e6) if _is_number(seconds) and math.isfinite(seconds) else 0
        if not _is_number(seconds) or not 1 <= us <= 1e15:
            raise m.fail(f"counts.bucket_seconds is {_kind(seconds)}, not a number of seconds >= 1e-6")
        if not has_timestamps:
            raise m.fail("counts.bucket_seconds needs timestamps, but parser.json has no timestamp format and fields")
    elif _json_int(counts.get("bucket_lines"), 1, MAX_COUNT) is None:
        raise m.fail("counts has neither bucket_seconds nor a positive integer bucket_lines")


def check_golden(path: Path, golden: Any) -> None:
    """selftest.c: a non-empty cases list and a tolerance >= 0; each case names its model, inputs, outputs."""
    if not isinstance(golden, dict):
        raise AlogError(path, f"expected a JSON object, found {_kind(golden)}")
    cases, tol = golden.get("cases"), golden.get("tolerance")
    if not isinstance(cases, list) or not cases:
        raise AlogError(path, "\"cases\" is missing or empty: needs a non-empty list of cases")
    if not _is_number(tol) or not tol >= 0 or not math.isfinite(tol):
        raise AlogError(path, "\"tolerance\" must be a number >= 0")
    for case in cases:
        if not (isinstance(case, dict) and isinstance(case.get("model"), str) and isinstance(case.get("name"), str)
                and isinstance(case.get("inputs"), dict) and isinstance(case.get("outputs"), dict)):
            raise AlogError(path, "a case needs model (a file name), name, inputs and outputs")


def _has_timestamps(parser: Any) -> bool:
    ts = parser.get("timestamp") if isinstance(parser, dict) else None
    return isinstance(ts, dict) and bool(ts.get("format")) and bool(ts.get("fields"))


def check_model_dir(model_dir: Path) -> None:
    """Every JSON value the device checks, with the device's rules; AlogError names the first bad file."""
    model_dir = Path(model_dir)
    vocab = load_strict(model_dir / "vocab.json")
    if not isinstance(vocab, dict) or not vocab:
        raise AlogError(model_dir / "vocab.json", "expected a non-empty object {\"0\": template, ...}")
    if sorted(vocab) != sorted(str(i) for i in range(len(vocab))):
        raise AlogError(model_dir / "vocab.json", "keys must be the indices 0..N-1 (the C form)")
    n = len(vocab)
    parser = load_strict(model_dir / "parser.json")
    # without a model the directory still serves `alog-edge match` (vocab.json + parser.json)
    for name, check in (("deeplog.onnx", "deeplog"), ("mscred.onnx", "mscred")):
        meta_path = model_dir / f"{name}.meta.json"
        if not (model_dir / name).exists():
            continue
        meta = load_strict(meta_path)
        if check == "deeplog":
            check_deeplog_meta(meta_path, meta, n)
        else:
            check_mscred_meta(meta_path, meta, n, _has_timestamps(parser))
    golden = model_dir / "golden.json"
    if golden.exists():
        check_golden(golden, load_strict(golden))


def check_staged(staging: Path, final: Path) -> None:
    """check_model_dir on a directory about to replace `final`; the message names the final path."""
    try:
        check_model_dir(staging)
    except AlogError as exc:
        where = final if exc.path is None or Path(exc.path) == staging else final / Path(exc.path).name
        raise AlogError(where, f"{exc.message}; alog-edge would refuse this model directory, "
                               "so nothing was written") from None


def check_job_meta(checkpoint: Path, kind: str, meta: dict[str, Any], num_templates: int, parser: Any) -> None:
    """The values a checkpoint brings to its meta.json, checked before the export (a bad one fails fast)."""
    text = json.dumps({"model_type": kind, **meta})  # as it will be written: NaN stays NaN
    try:
        value = json.loads(text, parse_constant=_NonFinite)
        found = _find_non_finite(value)
        if found is not None:
            raise AlogError(None, f"{found[0]} is {found[1]}, which is not JSON: every number must be finite")
        if kind == "deeplog":
            check_deeplog_meta(Path(checkpoint), value, num_templates)
        else:
            check_mscred_meta(Path(checkpoint), value, num_templates, _has_timestamps(parser))
    except AlogError as exc:
        raise AlogError(checkpoint, f"{exc.message}; alog-edge would refuse its model directory, so it "
                                    "was not converted") from None
