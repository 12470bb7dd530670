"""alog-edge tasks. `invoke --list` shows them; `invoke --help TASK` shows a task's flags."""
from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path

from invoke import Exit, task as invoke_task

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "py"))
from alog_edge import errorpath, taskspec  # noqa: E402  (light: the standard library only)
from alog_edge.fileio import check_outputs  # noqa: E402
from alog_edge.flags import Float, Int, IntList, choice  # noqa: E402
from alog_edge.taskspec import FlagTask  # noqa: E402

errorpath.install_invoke_hooks()
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
logging.getLogger("drain3").setLevel(logging.WARNING)
logging.getLogger("torch").setLevel(logging.WARNING)  # its info lines (e.g. at exit) are not ours

W = "workspace directory (default: workspace/)"
# Ranges shared by several flags (the device's own bounds where it has one: runtime/src/model.c)
SEED = Int(0, 2**32 - 1)
WINDOW = Int(1, 1 << 16)
EPOCHS = Int(1, 10**6)
BATCH = Int(1, 1 << 20)
LR = Float(gt=0, high=10)
SHARE = Float(gt=0, lt=1)
LEVEL = Float(0, 1e30)
YEAR = Int(1900, 2200)
TARGET = choice("x86_64", "aarch64", "all")
RULE = choice("probability", "top_k")
BAUD = Int(50, 20_000_000)
CHUNK = Int(64, 1 << 24)


task = functools.partial(invoke_task, klass=FlagTask)
# a task body reached through FlagTask is already on the one error path; kept for other callers
user_errors = taskspec.user_errors


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
            "test_minutes": "minutes of labelled test log", "workspace": W},
      flags={"seed": SEED, "hosts": Int(2, 99), "train_minutes": Int(10, 10**6), "test_minutes": Int(30, 10**6)})
@user_errors
def demo_data(c, workspace="workspace", out=None, seed=7, hosts=6, train_minutes=240, test_minutes=90):
    """Generate the demo fleet log: train.log (normal), test.log with line/session labels and anomaly events."""
    from alog_edge import demo_data as gen
    files = gen.generate(opt(out) or ws(workspace) / "demo", seed=seed, hosts=hosts,
                         train_minutes=train_minutes, test_minutes=test_minutes)
    print(f"wrote {files.train_log}, {files.test_log} and labels beside them")


@task(iterable=["logs"], help={
    "logs": "log file (repeat for several; .gz is read too)", "format": "preset: hdfs bgl hadoop zookeeper "
    "openstack linux syslog iso8601 dmesg demo (default syslog)", "log_format": "logparser-style format string, "
    "e.g. '<Date> <Time> <Level> <Component>: <Content>'", "templates": "match a given template list (one per "
    "line, <*> = any text) instead of mining", "year": "year for timestamps without one (default: file mtime)",
    "parsed": "output parquet (default <workspace>/parsed.parquet)", "parser": "output parser.json",
    "max_line_bytes": "longest line accepted", "workspace": W, "multiline": "a line that does not fit the "
    "format continues the record before it (stack traces); kept in parser.json for match and the device"},
    flags={"year": YEAR, "max_line_bytes": Int(16, 1 << 30)})
@user_errors
def parse(c, logs, format=None, log_format=None, templates=None, year=None, workspace="workspace",
          parsed=None, parser=None, max_line_bytes=1 << 20, multiline=False):
    """Mine log templates with Drain3: parsed.parquet, templates.json, parser.json, drain_state.json."""
    from dataclasses import replace
    from alog_edge import logformat, parse as p
    fmt = replace(logformat.resolve(format, log_format), multiline=bool(multiline))
    res = p.parse([Path(x) for x in logs], fmt, ws(workspace), parsed_out=opt(parsed), parser_out=opt(parser),
                  template_file=opt(templates), year=year, max_line_bytes=max_line_bytes)
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
            "hidden": "LSTM units", "layers": "LSTM layers", "embedding": "embedding size", "workspace": W,
            "rule": "decision rule kept in the checkpoint: probability (default) or top_k (the paper's)",
            "target_fpr": "share of held-out normal sessions the probability threshold may flag (default 0: none)",
            "threshold_margin": "the probability threshold is this x the calibrated one (default 0.3)",
            "key_set_support": "training sessions a key set needs to count as normal (default 1)",
            "no_key_sets": "no key-set check (a session whose set of keys no training session had)",
            "calibration_split": "share of sessions held out to calibrate on (default 0.15)",
            "no_session_keys": "no start/end keys: the first h keys and the end are not predicted (the paper)"},
      flags={"seq_len": WINDOW, "top_k": Int(1, 1 << 24), "epochs": EPOCHS, "batch_size": BATCH, "lr": LR,
             "seed": SEED, "val_split": SHARE, "patience": EPOCHS, "hidden": Int(1, 4096), "layers": Int(1, 16),
             "embedding": Int(1, 4096), "rule": RULE, "target_fpr": Float(0, lt=1), "calibration_split": SHARE,
             "threshold_margin": Float(gt=0, high=1e6), "key_set_support": Int(1, 1 << 40)})
@user_errors
def train_deeplog(c, workspace="workspace", sequences=None, vocab=None, out=None, seq_len=10, top_k=9, epochs=40,
                  batch_size=128, lr=2e-3, seed=42, val_split=0.1, patience=3, hidden=64, layers=2, embedding=32,
                  rule="probability", target_fpr=0.0, calibration_split=0.15, no_session_keys=False,
                  threshold_margin=0.3, key_set_support=1, no_key_sets=False):
    """Train DeepLog (2x64 LSTM, h=10, g=9 by default) and write its checkpoint."""
    from alog_edge import train, vocab as v
    from alog_edge.models.deeplog import DeepLogConfig
    w = ws(workspace)
    check_outputs(opt(out) or w / "deeplog.pth")
    voc = v.load(opt(vocab) or w / "vocab.json")
    if top_k > voc.num_classes:
        raise taskspec.refuse("top_k", f"must be at most the number of keys, {voc.num_classes} (got '{top_k}')")
    res = train.train_deeplog(opt(sequences) or w / "sequences.parquet", voc, opt(out) or w / "deeplog.pth",
                              DeepLogConfig(voc.num_classes, int(seq_len), int(top_k), int(embedding), int(hidden),
                                            int(layers)),
                              train.TrainConfig(int(epochs), int(batch_size), float(lr), int(seed), float(val_split),
                                                int(patience)),
                              train.DeepLogRuleConfig(rule, float(target_fpr), float(calibration_split),
                                                      not no_session_keys, not no_key_sets, int(key_set_support),
                                                      float(threshold_margin)))
    print(f"deeplog: {res.epochs_run} epochs in {res.seconds:.0f}s on {res.train_windows} windows, "
          f"val loss {res.best_val_loss:.4f}, val top-{top_k} accuracy {res.val_top_k_accuracy:.4f}, "
          f"{res.parameters} parameters; rule {rule}, probability threshold {res.probability_threshold:.3g} "
          f"flags {res.calibration_fpr:.4f} of {res.calibration_sessions} held-out normal sessions")


@task(help={"parsed": "parsed.parquet", "vocab": "vocab.json (template order = column order)",
            "bucket_seconds": "bucket length in seconds (default 10)", "bucket_lines": "or count per N lines "
            "(logs without timestamps)", "whole_stream": "one series for all hosts instead of one per host",
            "out": "output (default <workspace>/counts.parquet)", "workspace": W},
      flags={"bucket_seconds": Float(1e-6, 1e9), "bucket_lines": Int(1, 1 << 40)})
@user_errors
def build_mscred(c, workspace="workspace", parsed=None, vocab=None, bucket_seconds=10.0, bucket_lines=None,
                 whole_stream=False, out=None):
    """Count every template per time bucket (per host): MSCRED's input series, counts.parquet."""
    from alog_edge import counts
    spec = counts.CountSpec(None if bucket_lines else bucket_seconds, bucket_lines, not whole_stream)
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
            "threshold": "set the alarm threshold instead", "workspace": W},
      flags={"scales": IntList(WINDOW), "steps": Int(1, 1000), "gap": WINDOW, "channels": IntList(Int(1, 1024), 4, False),
             "epochs": EPOCHS, "batch_size": BATCH, "lr": LR, "seed": SEED, "val_split": SHARE, "patience": EPOCHS,
             "stride": WINDOW, "val_stride": WINDOW, "level_margin": Float(gt=0, high=1e6),
             "level_floor_quantile": Float(0, 1), "threshold_factor": Float(gt=0, high=1e6),
             "threshold_quantile": Float(0, 1), "broken_cell_level": LEVEL, "threshold": LEVEL,
             "score_scales": IntList(WINDOW)})
@user_errors
def train_mscred(c, workspace="workspace", counts=None, vocab=None, out=None, scales="10,30,60", steps=5, gap=10,
                 channels="8,16,32,64", epochs=20, batch_size=16, lr=2e-3, seed=42, val_split=0.2, patience=3,
                 stride=None, val_stride=None, level_margin=1.05, level_floor_quantile=0.999, threshold_factor=2.0,
                 threshold_quantile=0.95, broken_cell_level=None, threshold=None, score_scales=None):
    """Train MSCRED on normal count windows; store normalisation, broken-cell levels and threshold."""
    from alog_edge import train, vocab as v
    from alog_edge.models.mscred import MSCREDConfig
    w = ws(workspace)
    check_outputs(opt(out) or w / "mscred.pth")
    voc = v.load(opt(vocab) or w / "vocab.json")
    try:
        cfg = MSCREDConfig(voc.num_classes, scales, steps, gap, channels, score_scales=score_scales)
    except ValueError as exc:  # score_scales not a subset of scales
        raise taskspec.refuse("score_scales", str(exc)) from None
    if cfg.window_size > WINDOW.high:
        raise taskspec.refuse("gap", f"the window (largest scale + (steps - 1) x gap) is {cfg.window_size} buckets, "
                                     f"more than {WINDOW.high:g}")
    res = train.train_mscred(opt(counts) or w / "counts.parquet", voc, opt(out) or w / "mscred.pth", cfg,
                             train.TrainConfig(epochs, batch_size, lr, seed, val_split, patience),
                             stride=stride, val_stride=val_stride, level_margin=level_margin,
                             level_floor_quantile=level_floor_quantile, threshold_factor=threshold_factor,
                             threshold_quantile=threshold_quantile, broken_cell_level=broken_cell_level,
                             threshold=threshold)
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
    "year": "year for timestamps without one", "workspace": W,
    "rule": "DeepLog rule instead of the checkpoint's: probability or top_k",
    "top_k": "DeepLog g for the top_k rule", "probability_threshold": "DeepLog probability threshold (selects "
    "the probability rule)", "ratio": "N:M normal:abnormal: also print the precision/recall/F1 the measured "
    "session FPR and TPR give at that mix (the DeepLog paper's HDFS test: 553366:16838)",
    "no_key_sets": "DeepLog without the checkpoint's key-set check"},
    flags={"threshold": LEVEL, "broken_cell_level": LEVEL, "year": YEAR, "rule": RULE, "top_k": Int(1, 1 << 24),
           "probability_threshold": Float(0, 1)})
@user_errors
def evaluate(c, workspace="workspace", logs=None, parsed=None, normal=None, abnormal=None, templates=None,
             labels=None, events=None, model=None, mscred_model=None, vocab=None, parser=None, json_=False, out=None,
             plot=None, scores=None, threshold=None, broken_cell_level=None, year=None, rule=None, top_k=None,
             probability_threshold=None, ratio=None, no_key_sets=False):
    """Score held-out data: DeepLog per session and line, MSCRED per time window, and both combined."""
    from alog_edge import evaluate as e
    check_outputs(opt(out), opt(plot), opt(scores))
    label_files = [Path(x) for x in labels or []]
    if normal or abnormal:
        ev = e.evaluate_deeplog(ws(workspace), model_path=opt(model), vocab_path=opt(vocab), normal=opt(normal),
                                abnormal=opt(abnormal), templates=opt(templates), label_files=label_files,
                                **e.rule_options(rule, top_k, probability_threshold, ratio, no_key_sets))
        result = e.Report(ev, None)
    else:
        result = e.evaluate_all(ws(workspace), deeplog_path=opt(model), mscred_path=opt(mscred_model),
                                vocab_path=opt(vocab), logs=[Path(x) for x in logs or []], parsed=opt(parsed),
                                parser_path=opt(parser), label_files=label_files, events=opt(events),
                                year=year, plot_path=opt(plot), scores_path=opt(scores), threshold=threshold,
                                broken_cell_level=broken_cell_level,
                                **e.rule_options(rule, top_k, probability_threshold, ratio, no_key_sets))
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
            "(without it: one batch)", "json": "print the summary as one JSON object", "workspace": W,
            "session_idle": "seconds without a line after which the device ends a DeepLog session (default: never)",
            "closing_template": "a template (as in vocab.json) that ends its DeepLog session on the device; "
            "repeatable"}, iterable=["closing_template"],
      flags={"seq_len": WINDOW, "feature_dim": Int(2, 1 << 24), "window_size": WINDOW, "opset": Int(9, 25),
             "session_idle": Float(gt=0, high=1e9)})
@user_errors
def convert(c, workspace="workspace", deeplog_model=None, mscred_model=None, vocab=None, parser=None,
            sequences=None, counts=None, output_dir="models/onnx", seq_len=None, feature_dim=None,
            window_size=None, opset=11, portable=False, validate=False, json_=False, session_idle=None,
            closing_template=None):
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
        seq_len=seq_len, feature_dim=feature_dim, window_size=window_size, opset=opset, portable=bool(portable),
        validate=bool(validate), session_idle=session_idle, closing_templates=tuple(closing_template or ())))
    print(json.dumps(export.summary(res)) if json_ else export.format_summary(res))


@task(help={"workspace": W, "seed": "random seed", "json": "print the results as one JSON object"}, flags={"seed": SEED})
@user_errors
def demo(c, workspace="workspace", seed=7, json_=False):
    """End to end on generated fleet logs: generate, parse, build, train, evaluate, print the table."""
    from alog_edge import demo as d
    result = d.run(ws(workspace) / "demo", seed=seed)
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
    from alog_edge.errors import AlogError
    from alog_edge.fileio import AtomicOutputs
    if not logs:
        raise AlogError("--logs", "give at least one log file to match")
    if out:
        check_outputs(Path(out))
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


@task(help={"target": "x86_64, aarch64 or all", "sanitize": "ASan+UBSan build (x86_64 only)"}, flags={"target": TARGET})
@user_errors
def build_runtime(c, target="x86_64", sanitize=False):
    """Build the C runtime with Conan + CMake into build/<target>/ (bin/alog-edge, lib/)."""
    from alog_edge import native
    for t in _targets(target):
        print(f"{t}: {native.build_runtime(REPO, t, sanitize=sanitize)}")


@task(help={"target": "x86_64, aarch64 (under qemu) or all", "sanitize": "run the ASan+UBSan build",
            "memcheck": "run the tests under valgrind (x86_64)"}, flags={"target": TARGET})
@user_errors
def test_runtime(c, target="x86_64", sanitize=False, memcheck=False):
    """Build the runtime and run its C tests (ctest)."""
    from alog_edge import native
    for t in _targets(target):
        native.build_runtime(REPO, t, sanitize=sanitize)
        native.run_ctest(REPO, t, sanitize=sanitize, memcheck=memcheck)


@task(help={"seconds": "time per fuzzer (default 60)"}, flags={"seconds": Int(1, 7 * 86400)})
@user_errors
def fuzz(c, seconds=60):
    """Build the libFuzzer targets (line matcher, JSON loaders, meta.json/golden.json) with clang; run each for a bounded time."""
    from alog_edge import native
    native.build_fuzzers(REPO)
    for name in native.FUZZERS:
        run = native.run_fuzzer(REPO, name, seconds)
        print(f"{name}: {run.runs} inputs in {run.seconds:.0f}s, {run.new_units} new corpus units, no crash")


@task(help={"workspace": W, "batch": "DeepLog windows per onnxruntime call", "seconds": "time per figure",
            "json": "JSON lines out", "aarch64": "the C bench under qemu-aarch64, as ratios to x86_64"},
      flags={"batch": Int(1, 1 << 16), "seconds": Float(gt=0, high=3600)})
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
    rows = b.bench_all(binary, cases, batch, seconds)
    rows += b.generic_match_rows(binary, ws(workspace) / "bench" / "hdfs-generic", REPO.parent / "shared" / "datasets")
    print("\n".join(json.dumps(r) for r in rows) if json_ else b.format_rows(rows))


@task(iterable=["host"], help={
    "bundle": "the bundle (.tar.gz from `invoke bundle`)", "host": "device user@host[:port] (repeatable)",
    "hosts": "file of devices, one user@host[:port] per line (# comments)", "identity": "private key file "
    "(default: the agent and ~/.ssh keys)", "known_hosts": "known_hosts file (default ~/.ssh/known_hosts)",
    "accept_new_host_key": "record the key of a host not in known_hosts (a changed key is refused always)",
    "ask_password": "also try a password (asked once)", "prefix": "install prefix on the device "
    "(default /opt/alog-edge)", "trust_key": "public key the device should trust (first install)",
    "dry_run": "print per host what would be sent; change nothing", "force": "reinstall the current version",
    "parallel": "devices flashed at once (default 10)", "timeout": "seconds per device (default 600)",
    "json": "one JSON line per host", "serial": "flash over a serial console instead: a device path or a "
    "pyserial URL (socket://host:port, rfc2217://...)", "baud": "serial line rate (default 115200)",
    "user": "serial console login (password from $ALOG_EDGE_SERIAL_PASSWORD or asked)",
    "encoding": "serial framing: auto (8-bit when a probe shows the line is clean), 8bit or base64",
    "chunk_size": "serial chunk bytes (default: 0.75 s of line)", "compress": "serial: auto, xz, gz or none"},
      flags={"parallel": Int(1, 1000), "timeout": Float(gt=0, high=86400), "baud": BAUD, "chunk_size": CHUNK,
             "encoding": choice("auto", "8bit", "base64"), "compress": choice("auto", "xz", "gz", "none")})
@user_errors
def flash(c, bundle, host=None, hosts=None, identity=None, known_hosts=None, accept_new_host_key=False,
          ask_password=False, prefix="/opt/alog-edge", trust_key=None, dry_run=False, force=False, parallel=10,
          timeout=600, json_=False, serial=None, baud=115200, user=None, encoding="auto", chunk_size=None,
          compress="auto"):
    """Flash a bundle over SSH onto one device or a fleet (only the files that changed, resumable, recap table),
    or over a serial console with --serial."""
    if serial:
        from alog_edge.delivery import serial_flash
        res = serial_flash.flash_serial(bundle, serial, int(baud), user, prefix, opt(trust_key), dry_run, force,
                                        encoding, compress, int(chunk_size) if chunk_size else None)
        print(res.json() if json_ else res.summary())
        return
    from alog_edge.delivery import flash_cli
    req = flash_cli.request(bundle=bundle, host=host, hosts=hosts, identity=identity, known_hosts=known_hosts,
                            accept_new_host_key=accept_new_host_key, ask_password=ask_password, prefix=prefix,
                            trust_key=trust_key, dry_run=dry_run, force=force, parallel=int(parallel),
                            timeout=float(timeout))
    if flash_cli.run(req, json_=json_):
        raise Exit(code=1)


@task(help={"action": "start, stop or status", "dir": "device folder (default workspace/devices/ssh)",
            "kind": "sshd (with SFTP) or dropbear (without)", "count": "devices to start (dir/0, dir/1, ...)"},
      flags={"count": Int(1, 100), "kind": choice("sshd", "dropbear")})
@user_errors
def device_ssh(c, action, dir="workspace/devices/ssh", kind="sshd", count=1):
    """Local SSH test devices on 127.0.0.1 (real sshd or dropbear, busybox-only PATH, prefix in the folder)."""
    from alog_edge.delivery import sshdevice
    print(sshdevice.manage(action, Path(dir), kind, int(count)))


@task(help={"out": "secret key path (default ~/.config/alog-edge/minisign.key; the public key is PATH.pub)",
            "passphrase": "protect the secret key with a passphrase (typed twice, or $ALOG_EDGE_PASSPHRASE)",
            "force": "replace an existing key pair"})
@user_errors
def keygen(c, out=None, passphrase=False, force=False):
    """Write an Ed25519 signing key pair in minisign's format (secret key mode 0600, never in the repo)."""
    from alog_edge.delivery import keys
    pair = keys.generate(opt(out) or keys.default_key_path(), keys.ask_passphrase() if passphrase else None,
                         force=force)
    print(f"key {pair.key_id}: secret {pair.secret} (0600), public {pair.public}\n"
          f"sign with `invoke bundle --key {pair.secret}`; trust on devices with --trust-key {pair.public}")


@task(help={"target": "x86_64 or aarch64", "models": "model directory (default <workspace>/demo/models/onnx, "
            "converted from the demo's checkpoints when missing)", "version": "bundle version (default "
            "<runtime version>+<10 hex of the content>)", "key": "minisign secret key (default "
            "~/.config/alog-edge/minisign.key, created when missing)", "out": "output file (default "
            "dist/alog-edge-<version>-<target>.tar.gz)", "compress": "gz (default) or xz",
            "runtime": "install prefix of a runtime build (default build/<target>, built when missing)",
            "json": "print the summary as one JSON object", "workspace": W})
@user_errors
def bundle(c, target="x86_64", models=None, version=None, key=None, out=None, compress="gz", runtime=None,
           workspace="workspace", json_=False):
    """Build a signed, reproducible bundle: stripped runtime, its libraries, models, install.sh, MANIFEST."""
    from alog_edge.delivery import bundle as b
    res = b.build(b.BundleRequest(target, key=opt(key), models=opt(models), runtime=opt(runtime), version=version,
                                  out=opt(out), compress=compress, workspace=ws(workspace), repo=REPO))
    print(json.dumps(res.summary()) if json_ else res.text())


@task(help={"action": "start, stop, status or console", "workspace": W + "; the board lives in <workspace>/board",
            "ssh_port": "loopback port forwarded to the board's SSH server (default 2222)",
            "serial_port": "loopback port of the serial console (default: SSH port + 1)",
            "memory": "board memory in MB (default 1024)", "kernel": "arm64 kernel image (default: the one "
            "`invoke setup` fetched)", "json": "status: one JSON object"},
      flags={"ssh_port": Int(1, 65535), "serial_port": Int(1, 65535), "memory": Int(256, 65536)})
@user_errors
def board(c, action, workspace="workspace", ssh_port=2222, serial_port=None, memory=1024, kernel=None,
          json_=False):
    """An emulated aarch64 device (qemu -M virt): start (boots, waits for SSH), stop, status, console."""
    from alog_edge.delivery import board_cli as b
    code = b.command(REPO, action, ws(workspace), ssh_port, serial_port,
                     memory, opt(kernel), json_)
    if code:
        raise Exit(code=code)


@task(help={"devices": "devices in the fleet (default 20, sshd and dropbear alternating)",
            "parallel": "devices flashed at once (default 10)", "workspace": W},
      flags={"devices": Int(1, 200), "parallel": Int(1, 200)})
@user_errors
def fleet_bench(c, devices=20, parallel=10, workspace="workspace"):
    """Time a first install on one local SSH device, then on a fleet of them flashed in parallel; the recap."""
    from alog_edge.delivery import flash_rig
    print(flash_rig.fleet_bench(ws(workspace) / "soak", int(devices), int(parallel), REPO))


@task(help={"bundle": "bundle to install (.tar.gz or .tar.xz)", "prefix": "install prefix (default "
            "<workspace>/device)", "trust_key": "minisign public key to trust (first install)",
            "force": "reinstall the current version", "rollback": "switch back to the previous release",
            "status": "print the prefix's state", "json": "print one JSON object", "workspace": W})
@user_errors
def install(c, bundle=None, prefix=None, trust_key=None, force=False, rollback=False, status=False,
            workspace="workspace", json_=False):
    """Install a bundle on this machine with its install.sh (aarch64 through qemu); --rollback, --status."""
    from alog_edge.delivery import local
    where = opt(prefix) or ws(workspace) / "device"
    try:
        if status:
            print(json.dumps(local.status(where)))
            return
        res = local.rollback(where) if rollback else local.install(
            Path(bundle) if bundle else _missing("--bundle"), where, opt(trust_key), force=force)
    except local.InstallError as exc:
        raise Exit(f"error: {exc}", code=exc.code) from None
    print(json.dumps(res.summary()) if json_ else res.text())


def _missing(flag: str):
    from alog_edge.errors import AlogError
    raise AlogError(flag, "needed (or --rollback / --status)")


@task(help={"transport": "local: a prefix on this machine run by busybox applets only; ssh: flashes to local "
            "sshd/dropbear devices with the line cut, the server killed, install.sh killed; serial: transfers "
            "through the paced relay with drops, flipped bits, lost or duplicated bytes and stalls", "runs": "random kill "
            "instants (default 100); ssh: runs per fault (default 200)", "seed": "random seed",
            "no_steps": "skip the kill at every step",
            "bundle_a": "bundle to install first", "bundle_b": "the other bundle (default: both built from the "
            "demo models, versions soak-a and soak-b)", "key": "signing key of the bundles", "json": "JSON out",
            "tamper": "instead: install bundle-b with one flipped byte in every region (needs both bundles)",
            "faults": "ssh: comma list of cut, kill-server, kill-install (default all)",
            "devices": "ssh: devices faulted in parallel (default 4, sshd and dropbear alternating)", "workspace": W,
            "baud": "serial: line rate of the paced relay (default 115200)"},
      flags={"transport": choice("local", "ssh", "serial"), "runs": Int(1, 10**6), "seed": SEED, "devices": Int(1, 64),
             "baud": BAUD})
@user_errors
def soak(c, transport="local", runs=None, seed=1, no_steps=False, bundle_a=None, bundle_b=None, key=None,
         workspace="workspace", json_=False, tamper=False, faults="cut,kill-server,kill-install", devices=4,
         baud=115200):
    """Kill install.sh (SIGKILL) at every step and at random instants (ssh: also cut the line, kill the server);
    after each, current is complete."""
    from alog_edge.delivery import soak as s
    from alog_edge.errors import AlogError
    if transport == "serial":
        from alog_edge.delivery import serial_bench
        result = serial_bench.soak(int(runs or 200), int(baud), int(seed))
        print(json.dumps(result.as_dict()) if json_ else result.report())
        if not result.ok:
            raise Exit(code=1)
        return
    if transport == "ssh":
        from alog_edge.delivery import flash_rig
        report = flash_rig.run_soak(ws(workspace) / "soak-ssh", faults.split(","), int(runs or 200), int(seed), REPO,
                                    int(devices))
        print(json.dumps(report.summary()) if json_ else report.text())
        if report.failures:
            raise Exit(code=1)
        return
    if transport != "local":
        raise AlogError("--transport", f"{transport!r}: local, ssh or serial")
    if tamper:
        from alog_edge.delivery import keys
        if not (bundle_a and bundle_b):
            raise AlogError("--tamper", "needs --bundle-a (installed) and --bundle-b (tampered with)")
        res = s.run_local_tamper(ws(workspace), (Path(bundle_a), Path(bundle_b)),
                                 keys.public_path(opt(key) or keys.default_key_path()))
    else:
        res = s.run_local_soak(ws(workspace), int(runs or 100), int(seed), (Path(bundle_a), Path(bundle_b))
                               if bundle_a and bundle_b else None, opt(key), every_step=not no_steps)
    print(json.dumps(res.summary()) if json_ else res.text())


@task(help={"action": "start, stop, status, or fault (with --command)", "dir": "device folder (default "
            "workspace/devices/serial)", "baud": "line rate the relay paces to (default 115200)",
            "user": "console login user (password from $ALOG_EDGE_SERIAL_PASSWORD); none: a shell prompt",
            "port": "TCP port of the line (default: a free one)", "command": "fault: drop | flip N | lose N | "
            "dup N | stall SECONDS | clean off|on, then optionally down (host to device) or up"},
      flags={"baud": BAUD, "port": Int(0, 65535)})
@user_errors
def device_serial(c, action, dir="workspace/devices/serial", baud=115200, user=None, port=0, command=None):
    """A local serial test device: busybox ash on a pty (busybox-only PATH) behind a relay paced at the baud rate
    that drops, corrupts, loses, duplicates or stalls bytes on command."""
    from alog_edge.delivery import serial_device
    print(serial_device.manage(action, Path(dir), int(baud), user, int(port), command))


@task(help={"baud": "comma list of line rates (default 115200,921600)", "sample": "a real file to send too "
            "(default: the aarch64 libonnxruntime.so of the Conan cache, when there)", "random_seconds": "size "
            "of the incompressible file, in seconds of line (default 80: 921,600 bytes at 115200)", "chunk_size": "chunk bytes (default: per baud)",
            "json": "JSON lines out"},
      flags={"baud": IntList(BAUD), "random_seconds": Float(gt=0, high=3600), "chunk_size": CHUNK})
@user_errors
def serial_bench(c, baud="115200,921600", sample=None, random_seconds=80, chunk_size=None, json_=False):
    """Serial flashing throughput through the paced relay: file bytes delivered and verified per second, login and
    every overhead included, as a share of the line rate (baud/10 B/s), for 8-bit, base64 and a real file."""
    from alog_edge.delivery import serial_bench as b
    figures = b.bench(list(baud), opt(sample) or b.default_sample(REPO), float(random_seconds),
                      int(chunk_size) if chunk_size else None)
    print("\n".join(json.dumps(f.as_dict()) for f in figures) if json_ else
          "\n".join([b.HEADER] + [f.row() for f in figures]))
