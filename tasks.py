"""alog-edge tasks. `invoke --list` shows them; `invoke --help TASK` shows a task's flags."""
from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path

from invoke import Exit, Task, task as invoke_task

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "py"))
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
logging.getLogger("drain3").setLevel(logging.WARNING)

W = "workspace directory (default: workspace/)"


class NumbersAsText(Task):
    """Numeric flags reach the task as text: invoke's own int()/float() would end a typo in a traceback, while
    the task body's conversion ends in one line (see user_errors)."""

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        if opts.get("kind") in (int, float):
            opts["kind"] = str
        return opts


task = functools.partial(invoke_task, klass=NumbersAsText)


def user_errors(body):
    """Bad input ends as one line `error: <file>: <problem>` and exit status 1, never a traceback."""
    @functools.wraps(body)
    def wrapper(*args, **kwargs):
        from alog_edge.errors import AlogError
        try:
            return body(*args, **kwargs)
        except AlogError as exc:
            raise Exit(f"error: {exc}", code=1) from None
        except ValueError as exc:
            if not _raised_here(exc):
                raise
            # int()/float() on a flag's value in a task body
            raise Exit(f"error: a flag's value is not a number ({exc})", code=1) from None
        except BrokenPipeError:  # output piped into `head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise Exit(code=1) from None
    return wrapper


def _raised_here(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename == __file__


def ws(workspace: str) -> Path:
    return Path(workspace or "workspace")


def opt(path: str | None) -> Path | None:
    return Path(path) if path else None


@task
def setup(c):
    """Install every dependency: Python packages (torch pinned to 2.13.0), Debian packages (cross compiler,
    clang, valgrind), the pinned onnxruntime/cJSON/PCRE2 artifacts as local Conan packages, and qemu-aarch64."""
    from alog_edge import install
    install.setup(REPO)
    from alog_edge import native  # needs the Python packages just installed
    native.setup_native(REPO)


@task(help={"out": "output folder (default: <workspace>/demo)", "seed": "random seed",
            "hosts": "number of devices", "train_minutes": "minutes of normal training log",
            "test_minutes": "minutes of labelled test log", "workspace": W})
@user_errors
def demo_data(c, workspace="workspace", out=None, seed=7, hosts=6, train_minutes=240, test_minutes=90):
    """Generate the demo fleet log: train.log (normal), test.log with line/session labels and anomaly events."""
    from alog_edge import demo_data as gen
    files = gen.generate(opt(out) or ws(workspace) / "demo", seed=int(seed), hosts=int(hosts),
                         train_minutes=int(train_minutes), test_minutes=int(test_minutes))
    print(f"wrote {files.train_log}, {files.test_log} and labels beside them")


@task(iterable=["logs"], help={
    "logs": "log file (repeat for several; .gz is read too)", "format": "preset: hdfs bgl hadoop zookeeper "
    "openstack linux syslog iso8601 dmesg demo (default syslog)", "log_format": "logparser-style format string, "
    "e.g. '<Date> <Time> <Level> <Component>: <Content>'", "templates": "match a given template list (one per "
    "line, <*> = any text) instead of mining", "year": "year for timestamps without one (default: file mtime)",
    "parsed": "output parquet (default <workspace>/parsed.parquet)", "parser": "output parser.json",
    "max_line_bytes": "longest line accepted", "workspace": W, "multiline": "a line that does not fit the "
    "format continues the record before it (stack traces); kept in parser.json for match and the device"})
@user_errors
def parse(c, logs, format=None, log_format=None, templates=None, year=None, workspace="workspace",
          parsed=None, parser=None, max_line_bytes=1 << 20, multiline=False):
    """Mine log templates with Drain3: parsed.parquet, templates.json, parser.json, drain_state.json."""
    from dataclasses import replace
    from alog_edge import logformat, parse as p
    fmt = replace(logformat.resolve(format, log_format), multiline=bool(multiline))
    res = p.parse([Path(x) for x in logs], fmt, ws(workspace), parsed_out=opt(parsed), parser_out=opt(parser),
                  template_file=opt(templates), year=int(year) if year else None, max_line_bytes=int(max_line_bytes))
    print(f"parsed {res.lines} lines into {res.clusters} templates in {res.seconds:.1f}s "
          f"({res.lines_per_second:,.0f} lines/s); {res.format_misses} lines did not fit the format"
          + (f", {res.continued} lines continued a record" if multiline else ""))


@task(iterable=["formats"], help={"workspace": W, "datasets": "LogHub-style folder: <System>/<System>_2k.log and "
      "_structured*.csv (default ../shared/datasets/loghub-2k)", "formats": "System=FORMAT (repeatable) or a JSON "
      "file {System: format string}; the six shared systems have theirs", "json": "JSON out"})
@user_errors
def parse_accuracy(c, workspace="workspace", datasets=None, formats=None, json_=False):
    """GA and PA per system of a LogHub-style folder: the preset and the generic default side by side."""
    from alog_edge import loghub
    rows = loghub.accuracy_table(opt(datasets) or REPO.parent / "shared" / "datasets" / "loghub-2k",
                                 ws(workspace) / "loghub", loghub.parse_formats(formats or []))
    print("\n".join(json.dumps(r) for r in rows) if json_ else loghub.format_rows(rows))


@task(help={"parsed": "parsed.parquet (default <workspace>/parsed.parquet)", "sessions": "DeepLog HDFS "
            "session file instead (<block>,<event ids>)", "templates": "templates file for --sessions",
            "vocab": "output vocab.json", "sequences": "output sequences.parquet", "workspace": W})
@user_errors
def build_deeplog(c, workspace="workspace", parsed=None, sessions=None, templates=None, vocab=None, sequences=None):
    """Build vocab.json (template -> index) and sequences.parquet (key sequences per session)."""
    from alog_edge import dataset
    res = dataset.build_deeplog_inputs(ws(workspace), parsed=opt(parsed), sessions_file=opt(sessions),
                                       templates_file=opt(templates), vocab_out=opt(vocab),
                                       sequences_out=opt(sequences))
    print(f"vocab: {res.vocab_size} templates (+1 unknown); {res.sessions} sessions, {res.keys} keys")


@task(help={"vocab": "template_id-keyed vocab.json", "parsed": "parsed.parquet that maps ids to templates",
            "out": "output (default: overwrite --vocab)"})
@user_errors
def fix_vocab(c, vocab, parsed, out=None):
    """Convert a vocab keyed by template ids ({"1": 0}) to the template-string form."""
    from alog_edge import vocab as v
    fixed = v.fix_vocab(Path(vocab), Path(parsed), opt(out) or Path(vocab))
    print(f"wrote {out or vocab}: {fixed.size} templates")


@task(help={"sequences": "sequences.parquet", "vocab": "vocab.json", "out": "checkpoint (default "
            "<workspace>/deeplog.pth)", "seq_len": "window h: keys of history (default 10)", "top_k": "g (default 9)",
            "epochs": "max epochs", "batch_size": "batch size", "lr": "learning rate", "seed": "random seed",
            "val_split": "share of sessions held out", "patience": "epochs without improvement before stopping",
            "hidden": "LSTM units", "layers": "LSTM layers", "embedding": "embedding size", "workspace": W})
@user_errors
def train_deeplog(c, workspace="workspace", sequences=None, vocab=None, out=None, seq_len=10, top_k=9, epochs=40,
                  batch_size=128, lr=2e-3, seed=42, val_split=0.1, patience=3, hidden=64, layers=2, embedding=32):
    """Train DeepLog (2x64 LSTM, h=10, g=9 by default) and write its checkpoint."""
    from alog_edge import train, vocab as v
    from alog_edge.models.deeplog import DeepLogConfig
    w = ws(workspace)
    voc = v.load(opt(vocab) or w / "vocab.json")
    res = train.train_deeplog(opt(sequences) or w / "sequences.parquet", voc, opt(out) or w / "deeplog.pth",
                              DeepLogConfig(voc.num_classes, int(seq_len), int(top_k), int(embedding), int(hidden),
                                            int(layers)),
                              train.TrainConfig(int(epochs), int(batch_size), float(lr), int(seed), float(val_split),
                                                int(patience)))
    print(f"deeplog: {res.epochs_run} epochs in {res.seconds:.0f}s on {res.train_windows} windows, "
          f"val loss {res.best_val_loss:.4f}, val top-{top_k} accuracy {res.val_top_k_accuracy:.4f}, "
          f"{res.parameters} parameters")


@task(help={"parsed": "parsed.parquet", "vocab": "vocab.json (template order = column order)",
            "bucket_seconds": "bucket length in seconds (default 10)", "bucket_lines": "or count per N lines "
            "(logs without timestamps)", "whole_stream": "one series for all hosts instead of one per host",
            "out": "output (default <workspace>/counts.parquet)", "workspace": W})
@user_errors
def build_mscred(c, workspace="workspace", parsed=None, vocab=None, bucket_seconds=10.0, bucket_lines=None,
                 whole_stream=False, out=None):
    """Count every template per time bucket (per host): MSCRED's input series, counts.parquet."""
    from alog_edge import counts
    spec = counts.CountSpec(None if bucket_lines else float(bucket_seconds),
                            int(bucket_lines) if bucket_lines else None, not whole_stream)
    groups, buckets, dim = counts.build(ws(workspace), spec, parsed=opt(parsed), vocab_path=opt(vocab), out=opt(out))
    print(f"counts: {groups} series, {buckets} buckets ({spec.describe()}), feature_dim {dim}")


@task(help={"counts": "counts.parquet", "vocab": "vocab.json", "out": "checkpoint (default <workspace>/mscred.pth)",
            "scales": "segment lengths of the signature matrices (default 10,30,60)", "steps": "step window (5)",
            "gap": "buckets between steps (10)", "channels": "encoder channels per level (default 8,16,32,64; "
            "the paper's 32,64,128,256 costs 16x more)", "epochs": "max epochs", "batch_size": "batch size",
            "lr": "learning rate", "seed": "random seed", "val_split": "share of each series (its end) held out",
            "patience": "epochs without improvement before stopping",
            "stride": "buckets between training windows (default: gap)",
            "val_stride": "buckets between validation windows (default: gap/2)",
            "level_margin": "a cell is broken above margin x its largest training residual ...",
            "level_floor_quantile": "... and above this quantile of all training residuals (the floor)",
            "threshold_factor": "alarm threshold = factor x a quantile of the validation scores (default 2; "
            "paper: 1.5)", "threshold_quantile": "... this quantile (default 0.95; paper: 1, the max)",
            "broken_cell_level": "one broken-cell level for every cell instead (the paper's)",
            "score_scales": "scales whose broken cells the score counts (default: all)",
            "threshold": "set the alarm threshold instead", "workspace": W})
@user_errors
def train_mscred(c, workspace="workspace", counts=None, vocab=None, out=None, scales="10,30,60", steps=5, gap=10,
                 channels="8,16,32,64", epochs=20, batch_size=16, lr=2e-3, seed=42, val_split=0.2, patience=3,
                 stride=None, val_stride=None, level_margin=1.05, level_floor_quantile=0.999, threshold_factor=2.0,
                 threshold_quantile=0.95, broken_cell_level=None, threshold=None, score_scales=None):
    """Train MSCRED on normal count windows; store normalisation, broken-cell levels and threshold."""
    from alog_edge import train, vocab as v
    from alog_edge.models.mscred import MSCREDConfig
    w = ws(workspace)
    voc = v.load(opt(vocab) or w / "vocab.json")
    try:
        cfg = MSCREDConfig(voc.num_classes, tuple(int(x) for x in str(scales).split(",")), int(steps), int(gap),
                           tuple(int(x) for x in str(channels).split(",")),
                           score_scales=tuple(int(x) for x in str(score_scales).split(",")) if score_scales else None)
    except ValueError as exc:
        if _raised_here(exc):  # a flag that is not a number: user_errors says so
            raise
        raise Exit(f"error: {exc}", code=1) from None
    res = train.train_mscred(opt(counts) or w / "counts.parquet", voc, opt(out) or w / "mscred.pth", cfg,
                             train.TrainConfig(int(epochs), int(batch_size), float(lr), int(seed), float(val_split),
                                               int(patience)),
                             stride=int(stride) if stride else None, val_stride=int(val_stride) if val_stride else None,
                             level_margin=float(level_margin), level_floor_quantile=float(level_floor_quantile),
                             threshold_factor=float(threshold_factor), threshold_quantile=float(threshold_quantile),
                             broken_cell_level=float(broken_cell_level) if broken_cell_level else None,
                             threshold=float(threshold) if threshold else None)
    level = (f"broken-cell levels per cell (floor {res.broken_cell_level:.4g})" if res.per_cell
             else f"broken-cell level {res.broken_cell_level:.4g}")
    print(f"mscred: {res.epochs_run} epochs in {res.seconds:.0f}s on {res.train_windows} windows, "
          f"{res.parameters} parameters; {level}, threshold {res.threshold:g}")


@task(iterable=["logs", "labels"], help={
    "logs": "raw log to score (matched with the workspace parser)", "parsed": "or a parsed.parquet",
    "normal": "or DeepLog HDFS session file of normal sessions", "abnormal": "... and of abnormal sessions",
    "templates": "templates file for --normal/--abnormal", "labels": "CSV of labels: session,label (or "
    "BlockId,Label) or line_no,label; repeatable", "events": "CSV of anomaly intervals kind,host,start,end: "
    "window labels for MSCRED", "model": "DeepLog checkpoint", "mscred_model": "MSCRED checkpoint (default "
    "<workspace>/mscred.pth if present)", "vocab": "vocab.json", "parser": "parser.json", "json": "print one JSON "
    "object", "out": "CSV with session,label,verdict (DeepLog)", "plot": "PNG of the MSCRED score over time",
    "scores": "parquet of window scores and verdicts", "threshold": "override MSCRED's alarm threshold",
    "broken_cell_level": "override MSCRED's broken-cell levels with one level for every cell",
    "year": "year for timestamps without one", "workspace": W})
@user_errors
def evaluate(c, workspace="workspace", logs=None, parsed=None, normal=None, abnormal=None, templates=None,
             labels=None, events=None, model=None, mscred_model=None, vocab=None, parser=None, json_=False, out=None,
             plot=None, scores=None, threshold=None, broken_cell_level=None, year=None):
    """Score held-out data: DeepLog per session and line, MSCRED per time window, and both combined."""
    from alog_edge import evaluate as e
    label_files = [Path(x) for x in labels or []]
    if normal or abnormal:
        ev = e.evaluate_deeplog(ws(workspace), model_path=opt(model), vocab_path=opt(vocab), normal=opt(normal),
                                abnormal=opt(abnormal), templates=opt(templates), label_files=label_files)
        result = e.Report(ev, None)
    else:
        result = e.evaluate_all(ws(workspace), deeplog_path=opt(model), mscred_path=opt(mscred_model),
                                vocab_path=opt(vocab), logs=[Path(x) for x in logs or []], parsed=opt(parsed),
                                parser_path=opt(parser), label_files=label_files, events=opt(events),
                                year=int(year) if year else None, plot_path=opt(plot), scores_path=opt(scores),
                                threshold=float(threshold) if threshold else None,
                                broken_cell_level=float(broken_cell_level) if broken_cell_level else None)
    if out and result.deeplog is not None:
        e.write_session_csv(result.deeplog, Path(out))
    print(json.dumps(result.summary()) if json_ else result.text())


@task(help={"deeplog_model": "DeepLog checkpoint (default <workspace>/deeplog.pth when no model is named and "
            "it exists)", "mscred_model": "MSCRED checkpoint (default <workspace>/mscred.pth, likewise)",
            "vocab": "training vocab.json (default <workspace>/vocab.json)",
            "parser": "parser.json to ship (default <workspace>/parser.json)",
            "sequences": "sequences.parquet: real DeepLog windows for the checks and golden.json "
            "(default <workspace>/sequences.parquet if present)",
            "counts": "counts.parquet: real MSCRED windows, likewise (default <workspace>/counts.parquet if present)",
            "output_dir": "model directory, replaced whole (default models/onnx)",
            "seq_len": "DeepLog window h written to meta and traced (default: the checkpoint's)",
            "feature_dim": "MSCRED features: must be vocab size + 1 (default: the checkpoint's)",
            "window_size": "MSCRED window in buckets: must match the checkpoint (default: the checkpoint's)",
            "opset": "ONNX opset (default 11)", "portable": "simplify with onnxsim (fallback onnxslim), "
            "keeping dynamic axes; replaces the plain model only if it passes the same checks",
            "validate": "torch vs onnxruntime on batch sizes 1, 3, 64, sequence lengths h, 1, 2h and real data "
            "(without it: one batch)", "json": "print the summary as one JSON object", "workspace": W})
@user_errors
def convert(c, workspace="workspace", deeplog_model=None, mscred_model=None, vocab=None, parser=None,
            sequences=None, counts=None, output_dir="models/onnx", seq_len=None, feature_dim=None,
            window_size=None, opset=11, portable=False, validate=False, json_=False):
    """Export the models to ONNX: the model directory with meta.json, C-form vocab, parser.json, golden.json."""
    from alog_edge import export
    w = ws(workspace)

    def present(path: Path) -> Path | None:
        return path if path.exists() else None

    named = bool(deeplog_model or mscred_model)  # naming one model converts only the named ones
    res = export.convert(export.ConvertRequest(
        vocab=opt(vocab) or w / "vocab.json", parser=opt(parser) or w / "parser.json",
        output_dir=Path(output_dir),
        deeplog_model=opt(deeplog_model) if named else present(w / "deeplog.pth"),
        mscred_model=opt(mscred_model) if named else present(w / "mscred.pth"),
        sequences=opt(sequences) or present(w / "sequences.parquet"),
        counts=opt(counts) or present(w / "counts.parquet"),
        seq_len=int(seq_len) if seq_len else None, feature_dim=int(feature_dim) if feature_dim else None,
        window_size=int(window_size) if window_size else None, opset=int(opset), portable=bool(portable),
        validate=bool(validate)))
    print(json.dumps(export.summary(res)) if json_ else export.format_summary(res))


@task(help={"workspace": W, "seed": "random seed", "json": "print the results as one JSON object"})
@user_errors
def demo(c, workspace="workspace", seed=7, json_=False):
    """End to end on generated fleet logs: generate, parse, build, train, evaluate, print the table."""
    from alog_edge import demo as d
    result = d.run(ws(workspace) / "demo", seed=int(seed))
    print(json.dumps(result.summary) if json_ else result.report)


@task(help={"k": "only tests matching this expression", "x": "stop at the first failure"})
def test(c, k=None, x=False):
    """Run every test (pytest: unit, integration, end to end)."""
    args = ["-q"] + (["-k", k] if k else []) + (["-x"] if x else [])
    c.run(f"{sys.executable} -m pytest " + " ".join(args), pty=False)


@task(iterable=["logs"], help={"logs": "log file (repeatable)", "model_dir": "model directory with parser.json "
      "and vocab.json in C form (from convert)", "workspace": "or a workspace (parser.json + training vocab.json)",
      "out": "write the JSON lines here instead of stdout"})
@user_errors
def match(c, logs, model_dir=None, workspace="workspace", out=None):
    """Key every line with the parser: one JSON line each with line_no, index, template (the runtime's `match`)."""
    from alog_edge import parse as p, vocab as v
    from alog_edge.fileio import AtomicOutputs
    if model_dir:
        parser, voc = Path(model_dir) / "parser.json", v.load_c_form(Path(model_dir) / "vocab.json")
    else:
        parser, voc = ws(workspace) / "parser.json", v.load(ws(workspace) / "vocab.json")
    lines = p.match_jsonl([Path(x) for x in logs], parser, voc)
    if out:
        with AtomicOutputs() as o:
            o.write_text(out, "".join(x + "\n" for x in lines))
    else:
        for x in lines:
            print(x)


TARGETS = {"x86_64": ("x86_64",), "aarch64": ("aarch64",), "all": ("x86_64", "aarch64")}


def _targets(target: str) -> tuple[str, ...]:
    from alog_edge.errors import AlogError
    if target not in TARGETS:
        raise AlogError(None, f"unknown target {target!r}: x86_64, aarch64 or all")
    return TARGETS[target]


@task(help={"target": "x86_64, aarch64 or all", "sanitize": "ASan+UBSan build (x86_64 only)"})
@user_errors
def build_runtime(c, target="x86_64", sanitize=False):
    """Build the C runtime with Conan + CMake into build/<target>/ (bin/alog-edge, lib/)."""
    from alog_edge import native
    for t in _targets(target):
        print(f"{t}: {native.build_runtime(REPO, t, sanitize=sanitize)}")


@task(help={"target": "x86_64, aarch64 (under qemu) or all", "sanitize": "run the ASan+UBSan build",
            "memcheck": "run the tests under valgrind (x86_64)"})
@user_errors
def test_runtime(c, target="x86_64", sanitize=False, memcheck=False):
    """Build the runtime and run its C tests (ctest)."""
    from alog_edge import native
    for t in _targets(target):
        native.build_runtime(REPO, t, sanitize=sanitize)
        native.run_ctest(REPO, t, sanitize=sanitize, memcheck=memcheck)


@task(help={"seconds": "time per fuzzer (default 60)"})
@user_errors
def fuzz(c, seconds=60):
    """Build the libFuzzer targets (line matcher, JSON loaders) with clang and run each for a bounded time."""
    from alog_edge import native
    native.build_fuzzers(REPO)
    for name in native.FUZZERS:
        run = native.run_fuzzer(REPO, name, int(seconds))
        print(f"{name}: {run.runs} inputs in {run.seconds:.0f}s, {run.new_units} new corpus units, no crash")


@task(help={"workspace": W, "batch": "DeepLog windows per onnxruntime call", "seconds": "time per figure",
            "json": "JSON lines out", "aarch64": "the C bench under qemu-aarch64, as ratios to x86_64"})
@user_errors
def bench(c, workspace="workspace", batch=256, seconds=2.0, json_=False, aarch64=False):
    """C runtime vs Python pipeline on HDFS_2k and the demo log: throughput, latency, RSS, load time (--aarch64: the C bench under qemu as ratios to x86_64)."""
    from alog_edge import bench as b, native
    binary = native.build_runtime(REPO, "x86_64") / "bin" / "alog-edge"
    if aarch64:
        arm = [*native.qemu_command(REPO), str(native.build_runtime(REPO, "aarch64") / "bin" / "alog-edge")]
        rows = b.emulated_rows(binary, arm, b.demo_case(ws(workspace) / "demo"))
        print("\n".join(json.dumps(r) for r in rows) if json_ else b.format_emulated(rows))
        return
    cases = [b.prepare_hdfs(ws(workspace) / "bench" / "hdfs", REPO.parent / "shared" / "datasets"),
             b.demo_case(ws(workspace) / "demo")]
    rows = b.bench_all(binary, cases, int(batch), float(seconds))
    rows += b.generic_match_rows(binary, ws(workspace) / "bench" / "hdfs-generic", REPO.parent / "shared" / "datasets")
    print("\n".join(json.dumps(r) for r in rows) if json_ else b.format_rows(rows))
