"""`invoke bench`: the C runtime (`alog-edge bench --json`) beside the Python pipeline (Drain3 match +
Python onnxruntime) on the same model directory and log, one core each, with the ratios.

Each side runs in its own process so that its load time and peak RSS are its own. The Python side
measures the same things the C side does: load (parser + onnxruntime sessions), Drain3's masked
match per line, DeepLog windows/s at the same batch size, and per-line latency in follow mode
(match + one onnxruntime call per key).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alog_edge.errors import AlogError

LOG = __name__


def _ort_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _rss_kb(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def python_figures(model_dir: Path, log: Path, batch: int = 256, seconds: float = 2.0,
                   threads: int = 1) -> dict[str, Any]:
    """The Python pipeline's figures on one log (run in a process of its own)."""
    from alog_edge.data import drain, template_list
    from alog_edge.formats import logformat, parser_json
    from alog_edge.fileio import read_json
    from alog_edge.formats.vocab import load_c_form

    started = time.perf_counter()
    parser = parser_json.load_parser(model_dir / "parser.json")
    fmt = parser_json.format_from_parser(parser)
    if parser["mode"] == "templates":  # a user template list: event id N = template N
        listed = [t["template"] for t in parser["templates"]]
        by_event = template_list.TemplateListMatcher(listed)
        match_template = lambda content: listed[by_event.match(content) - 1] if by_event.match(content) else None
    else:
        miner = drain.matcher_from_parser(parser, model_dir / "parser.json")
        by_id = {int(t["cluster_id"]): t["template"] for t in parser["templates"]}

        def match_template(content: str) -> str | None:
            cluster = miner.match(content, full_search_strategy=parser_json.MATCH_STRATEGY)
            return by_id[cluster.cluster_id] if cluster is not None else None
    voc = load_c_form(model_dir / "vocab.json")
    sessions = {kind: _ort_session(model_dir / f"{kind}.onnx", threads)
                for kind in ("deeplog", "mscred") if (model_dir / f"{kind}.onnx").exists()}
    load_ms = (time.perf_counter() - started) * 1e3
    rss_load = _rss_kb("VmRSS")

    regex = __import__("re").compile(fmt.regex)
    lines = [text for _, text in logformat.read_lines(log) if text.strip()]

    def key_of(text: str) -> int:
        m = regex.match(text)
        content = m.group("Content") if m else text
        return voc.key(match_template(content) or content)

    # Drain3's masked match per line, no cache (the C matcher has none either)
    matched, t0 = 0, time.perf_counter()
    while True:
        keys = [key_of(text) for text in lines]
        matched += len(lines)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    out: dict[str, Any] = {"lines": len(lines), "load_ms": round(load_ms, 3),
                           "match_lines_per_s": round(matched / elapsed), "rss_after_load_kb": rss_load}
    if "deeplog" in sessions:
        sess = sessions["deeplog"]
        h = int(read_json(model_dir / "deeplog.onnx.meta.json")["seq_len"])
        arr = np.asarray(keys, np.int64)
        x = np.lib.stride_tricks.sliding_window_view(arr, h)[:-1] if len(arr) > h else arr[:0].reshape(0, h)
        x = np.ascontiguousarray(x)
        windows, t0 = 0, time.perf_counter()
        while len(x):
            for i in range(0, len(x), batch):
                sess.run(None, {"input_sequence": x[i:i + batch]})
            windows += len(x)
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
        out["deeplog_windows_per_s"] = round(windows / elapsed) if len(x) else 0
        # follow mode: each line matched, then one call for its window
        lat = []
        for i, text in enumerate(lines[:20000]):
            s = time.perf_counter()
            key_of(text)
            if i >= h:
                sess.run(None, {"input_sequence": arr[None, i - h:i]})
            lat.append((time.perf_counter() - s) * 1e6)
        lat_arr = np.sort(np.asarray(lat))
        out["follow_p50_us"] = round(float(lat_arr[len(lat_arr) // 2]), 2)
        out["follow_p99_us"] = round(float(lat_arr[int((len(lat_arr) - 1) * 0.99)]), 2)
    if "mscred" in sessions:
        meta = read_json(model_dir / "mscred.onnx.meta.json")
        cells = int(meta["window_size"]) * int(meta["feature_dim"])
        window = (np.arange(cells) % 7 == 0).astype(np.float32).reshape(1, 1, int(meta["window_size"]), -1)
        n, t0 = 0, time.perf_counter()
        while True:
            sessions["mscred"].run(None, {"input_features": window})
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds / 4:
                break
        out["mscred_window_ms"] = round(elapsed / n * 1e3, 3)
    out["peak_rss_kb"] = max(_rss_kb("VmHWM"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return out


@dataclass
class BenchCase:
    name: str
    model_dir: Path
    log: Path


def run_c(binary: Path, case: BenchCase, batch: int, seconds: float) -> dict[str, Any]:
    cmd = [str(binary), "bench", "--json", "--batch", str(batch), "--seconds", str(seconds),
           str(case.model_dir), str(case.log)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AlogError(case.model_dir, f"alog-edge bench failed: {proc.stderr.strip()[:300]}")
    return json.loads(proc.stdout)


def run_python(case: BenchCase, batch: int, seconds: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "alog_edge.parity.bench", str(case.model_dir), str(case.log),
           "--batch", str(batch), "--seconds", str(seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AlogError(case.model_dir, f"the Python benchmark failed: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


ROWS = [  # (label, C field, Python field, unit, higher is better)
    ("load", "load_ms", "load_ms", "ms", False),
    ("load to first verdict", "first_verdict_ms", None, "ms", False),
    ("load, CPU", "load_cpu_ms", "load_ms", "CPU ms", False),
    ("first verdict, CPU", "first_verdict_cpu_ms", None, "CPU ms", False),
    ("load: vocab + parser", "load_text_cpu_ms", None, "CPU ms", False),
    ("load: DeepLog", "load_deeplog_cpu_ms", None, "CPU ms", False),
    ("load: MSCRED", "load_mscred_cpu_ms", None, "CPU ms", False),
    ("load: onnxruntime 1st use", "load_first_use_cpu_ms", None, "CPU ms", False),
    ("match", "match_lines_per_s", "match_lines_per_s", "lines/s", True),
    ("match per CPU second", "match_cpu_lines_per_s", "match_lines_per_s", "lines/s", True),
    ("match + DeepLog", "deeplog_lines_per_s", None, "lines/s", True),
    ("match + both models", "both_lines_per_s", None, "lines/s", True),
    ("DeepLog windows", "deeplog_windows_per_s", "deeplog_windows_per_s", "windows/s", True),
    ("MSCRED one window", "mscred_window_ms", "mscred_window_ms", "ms", False),
    ("follow p50 per line", "follow_p50_us", "follow_p50_us", "us", False),
    ("follow p99 per line", "follow_p99_us", "follow_p99_us", "us", False),
    ("follow p50, CPU time", "follow_cpu_p50_us", None, "CPU us", False),
    ("follow p99, CPU time", "follow_cpu_p99_us", None, "CPU us", False),
    ("RSS after load", "rss_after_load_kb", "rss_after_load_kb", "kB", False),
    ("peak RSS", "peak_rss_kb", "peak_rss_kb", "kB", False),
    ("RSS after load: files", "rss_after_load_file_kb", None, "kB", False),
    ("RSS after load: heap", "rss_after_load_anon_kb", None, "kB", False),
    ("peak RSS: load", "peak_rss_load_kb", None, "kB", False),
    ("peak RSS: match", "peak_rss_match_kb", None, "kB", False),
    ("peak RSS: batched", "peak_rss_detect_kb", None, "kB", False),
    ("peak RSS: follow", "peak_rss_follow_kb", None, "kB", False),
]

# Issue 18's targets for the C side: (C field, bound, higher is better).
TARGETS = {"match_cpu_lines_per_s": 1_000_000, "first_verdict_ms": 50, "first_verdict_cpu_ms": 50, "follow_p99_us": 50,
           "follow_cpu_p99_us": 50,
           "peak_rss_kb": 32 * 1024}


def compare(name: str, c: dict[str, Any], py: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: C, Python, and how many times better C is."""
    rows = []
    for label, c_key, py_key, unit, higher in ROWS:
        cv = c.get(c_key)
        if cv is None or (isinstance(cv, (int, float)) and cv <= 0 and c_key != "first_verdict_ms"):
            continue
        pv = py.get(py_key) if py_key else None
        ratio = None
        if pv:
            ratio = round(cv / pv if higher else pv / cv, 2)
        target = TARGETS.get(c_key)
        met = None if target is None else bool(cv >= target if higher else cv <= target)
        rows.append({"case": name, "figure": label, "unit": unit, "c": cv, "python": pv, "c_advantage": ratio,
                     "target": target, "met": met})
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    def num(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"

    out = [f"{'case':8} {'figure':28} {'unit':10} {'C':>12} {'Python':>12} {'C better by':>12} {'target':>12}"]
    for r in rows:
        adv = f"{r['c_advantage']:.2f}x" if r["c_advantage"] is not None else "-"
        target = "-" if r.get("target") is None else f"{num(r['target'])} {'met' if r['met'] else 'NOT met'}"
        out.append(f"{r['case']:8} {r['figure']:28} {r['unit']:10} {num(r['c']):>12} {num(r['python']):>12} {adv:>12}"
                   f" {target:>12}")
    return "\n".join(out)


def prepare_hdfs(workdir: Path, datasets: Path) -> BenchCase:
    """A DeepLog model directory for LogHub's HDFS_2k, made once: DeepLog trained briefly on the HDFS
    sessions, the 2k log keyed by their templates (its own blocks are too short to train on)."""
    from alog_edge.data import dataset, parse
    from alog_edge.export import convert as export
    from alog_edge.formats import logformat, vocab
    from alog_edge.training import train
    from alog_edge.models.deeplog import DeepLogConfig

    log = datasets / "loghub-2k" / "HDFS" / "HDFS_2k.log"
    sessions = datasets / "hdfs-sessions"
    model_dir = workdir / "models"
    if not (model_dir / "deeplog.onnx").exists():
        dataset.build_deeplog_inputs(workdir, sessions_file=sessions / "hdfs_train",
                                     templates_file=sessions / "HDFS_templates.csv")
        voc = vocab.load(workdir / "vocab.json")
        train.train_deeplog(workdir / "sequences.parquet", voc, workdir / "deeplog.pth",
                            DeepLogConfig(voc.num_classes), train.TrainConfig(epochs=3, seed=7))
        parse.parse([log], logformat.PRESETS["hdfs"], workdir, template_file=sessions / "HDFS_templates.csv")
        export.convert(export.ConvertRequest(vocab=workdir / "vocab.json", parser=workdir / "parser.json",
                                             output_dir=model_dir, deeplog_model=workdir / "deeplog.pth",
                                             sequences=workdir / "sequences.parquet"))
    return BenchCase("HDFS_2k", model_dir, log)


def demo_case(demo_dir: Path) -> BenchCase:
    model_dir, log = demo_dir / "models" / "onnx", demo_dir / "data" / "test.log"
    if not (model_dir / "deeplog.onnx").exists() or not log.exists():
        raise AlogError(model_dir, "no demo models: run `invoke demo` first")
    return BenchCase("demo", model_dir, log)


def generic_match_rows(binary: Path, workdir: Path, datasets: Path, repeat: int = 50) -> list[dict[str, Any]]:
    """`alog-edge match` (one JSON line out per line, to /dev/null) on HDFS_2k repeated `repeat` times,
    with a parser mined by the generic default (its format string only), next to Python's parse.match."""
    import shutil

    from alog_edge.formats import logformat, vocab
    from alog_edge.evaluation import loghub
    from alog_edge.data import parse

    log = datasets / "loghub-2k" / "HDFS" / "HDFS_2k.log"
    model = workdir / "model"
    if not (model / "parser.json").exists():
        parse.parse([log], logformat.resolve(None, loghub.LOGHUB_FORMATS["HDFS"]), workdir)
        model.mkdir(parents=True, exist_ok=True)
        frame = pd.read_parquet(workdir / "parsed.parquet")
        (model / "vocab.json").write_text(json.dumps(vocab.build(frame["template"]).c_form()), encoding="utf-8")
        shutil.copy(workdir / "parser.json", model / "parser.json")
    big = workdir / "HDFS_2k_x.log"
    big.write_bytes(log.read_bytes() * repeat)
    # CPU time of the child (user + system): the machine may be shared.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([str(binary), "match", str(model), str(big)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    c_rate = 2000 * repeat / max(cpu, 1e-6)
    if proc.returncode != 0:
        raise AlogError(model, f"alog-edge match failed: {proc.stderr.strip()[:300]}")
    started = time.perf_counter()
    lines = len(parse.match([log], model / "parser.json"))
    py_rate = lines / (time.perf_counter() - started)
    target = TARGETS["match_cpu_lines_per_s"]
    rows = [{"case": "HDFS_2k", "figure": "match, generic masks", "unit": "lines/s", "c": round(c_rate),
             "python": round(py_rate), "c_advantage": round(c_rate / py_rate, 2), "target": target,
             "met": c_rate >= target}]
    return rows + matcher_only_rows(binary, model, log, py_rate)


def matcher_only_rows(binary: Path, model: Path, log: Path, py_rate: float) -> list[dict[str, Any]]:
    """The matcher alone on the generic model (`alog-edge bench --match-only`: no JSON out, per CPU second)."""
    proc = subprocess.run([str(binary), "bench", "--match-only", "--json", "--seconds", "2", str(model), str(log)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise AlogError(model, f"alog-edge bench --match-only failed: {proc.stderr.strip()[:300]}")
    rate = json.loads(proc.stdout)["match_cpu_lines_per_s"]
    target = TARGETS["match_cpu_lines_per_s"]
    return [{"case": "HDFS_2k", "figure": "match, generic, matcher", "unit": "lines/s", "c": rate,
             "python": round(py_rate), "c_advantage": round(rate / py_rate, 2), "target": target,
             "met": rate >= target}]


def bench_all(binary: Path, cases: list[BenchCase], batch: int = 256, seconds: float = 2.0) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    from . import flops

    for case in cases:
        c = run_c(binary, case, batch, seconds)
        rows += compare(case.name, c, run_python(case, batch, seconds))
        rows += flops.bound_rows(case.name, case.model_dir, c.get("deeplog_windows_per_s"), batch)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m alog_edge.parity.bench",
                                 description="The Python pipeline's figures as one JSON line.")
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("log", type=Path)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args(argv)
    try:
        print(json.dumps(python_figures(args.model_dir, args.log, args.batch, args.seconds)))
    except AlogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()


def emulated_rows(x86_binary: Path, aarch64_command: list[str], case: BenchCase, lines: int = 3000,
                  seconds: float = 0.2) -> list[dict[str, Any]]:
    """The C bench on aarch64 under qemu beside x86_64 on the first `lines` lines of the case's log: each
    figure as a ratio to x86_64's (emulated time is not a device's: only the ratios say something, such
    as which phase emulation slows most; memory ratios show the aarch64 build's own footprint)."""
    small = case.log.with_name(case.log.stem + f"_first{lines}.log")
    if not small.exists():
        with case.log.open("rb") as src:
            head = b"".join(line for _, line in zip(range(lines), src))
        tmp = small.with_name(small.name + ".tmp")
        tmp.write_bytes(head)
        tmp.replace(small)
    short = BenchCase(case.name, case.model_dir, small)
    native = run_c(x86_binary, short, 256, seconds)
    cmd = aarch64_command + ["bench", "--json", "--batch", "256", "--seconds", str(seconds),
                             str(short.model_dir), str(short.log)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AlogError(case.model_dir, f"alog-edge bench under qemu failed: {proc.stderr.strip()[-300:]}")
    emulated = json.loads(proc.stdout)
    rows = []
    for label, c_key, _, unit, higher in ROWS:
        x, a = native.get(c_key), emulated.get(c_key)
        if not isinstance(x, (int, float)) or not isinstance(a, (int, float)) or x <= 0 or a <= 0:
            continue
        rows.append({"case": case.name, "figure": label, "unit": unit, "x86_64": x, "aarch64_qemu": a,
                     "aarch64_over_x86_64": round(a / x, 3), "slower_by": round(x / a if higher else a / x, 2)})
    return rows


def format_emulated(rows: list[dict[str, Any]]) -> str:
    out = [f"{'case':8} {'figure':28} {'unit':8} {'x86_64':>12} {'aarch64/qemu':>13} {'ratio':>8}"]
    for r in rows:
        out.append(f"{r['case']:8} {r['figure']:28} {r['unit']:8} {r['x86_64']:>12,.1f} {r['aarch64_qemu']:>13,.1f}"
                   f" {r['aarch64_over_x86_64']:>8.3f}")
    return "\n".join(out)
