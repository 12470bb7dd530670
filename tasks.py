"""alog-edge tasks. `invoke --list` shows them; `invoke --help TASK` shows a task's flags.

Each task calls one function of the package (alog_edge/cli/ for the pipeline's, the runtime's and the
devices' tasks). Defaults that are not a flag's own (the workspace, the folder of generated things, the
datasets) are in invoke.yaml beside this file.
"""
from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Any

from invoke import Exit, task as invoke_task

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "py"))
from alog_edge.cli import devices, errorpath, native, pipeline, taskspec  # noqa: E402  (light: steps load when run)
from alog_edge.cli.flags import Float, Int, IntList, choice  # noqa: E402
from alog_edge.cli.taskspec import FlagTask  # noqa: E402

errorpath.install_invoke_hooks()
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
logging.getLogger("drain3").setLevel(logging.WARNING)
logging.getLogger("torch").setLevel(logging.WARNING)  # its info lines (e.g. at exit) are not ours

W = "workspace: the pipeline's files (default: invoke.yaml's alog_edge.workspace, workspace/demo, the demo's)"
R = "folder of generated things (default: invoke.yaml's alog_edge.root, workspace/)"
# Ranges shared by several flags (the device's own bounds where it has one: runtime/src/model.c)
SEED = Int(0, 2**32 - 1)
WINDOW = Int(1, pipeline.WINDOW_MAX)
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


def settings(c: Any) -> Any:
    """invoke.yaml's alog_edge section (loaded here when a Program was handed the namespace without it)."""
    if "alog_edge" not in c.config:
        c.config.set_project_location(str(REPO))
        c.config.load_project()
    return c.config.alog_edge


def ws(c: Any, workspace: str | None) -> Path:
    return Path(workspace or settings(c).workspace)


def root(c: Any, workspace: str | None = None) -> Path:
    return Path(workspace or settings(c).root)


def data(c: Any) -> Path:
    return REPO / settings(c).datasets


def opt(path: str | None) -> Path | None:
    return Path(path) if path else None


def flags(task_locals: dict[str, Any], **resolved: Any) -> dict[str, Any]:
    """A task's flags as its function's keyword arguments (the context left out, resolved values in; a
    --workspace resolved as the folder of generated things is passed as `root` only)."""
    dropped = {"c"} | ({"workspace"} if "root" in resolved else set())
    return {**{k: v for k, v in task_locals.items() if k not in dropped}, **resolved}


def done(text: str | None, code: int) -> None:
    if text is not None:
        print(text)
    if code:
        raise Exit(code=code)


@task
def setup(c):
    """Install every dependency: Python packages (torch pinned to 2.13.0), Debian packages (cross compiler,
    clang, valgrind), the pinned onnxruntime/cJSON/PCRE2 artifacts as local Conan packages, and qemu-aarch64."""
    from alog_edge.setup import install
    install.setup(REPO)


@task(help={"out": "output folder (default: <workspace>/demo)", "seed": "random seed",
            "hosts": "number of devices", "train_minutes": "minutes of normal training log",
            "test_minutes": "minutes of labelled test log", "workspace": R},
      flags={"seed": SEED, "hosts": Int(2, 99), "train_minutes": Int(10, 10**6), "test_minutes": Int(30, 10**6)})
@user_errors
def demo_data(c, workspace=None, out=None, seed=7, hosts=6, train_minutes=240, test_minutes=90):
    """Generate the demo fleet log: train.log (normal), test.log with line/session labels and anomaly events."""
    print(pipeline.demo_data(root(c, workspace), out, seed, hosts, train_minutes, test_minutes))


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
def parse(c, logs, format=None, log_format=None, templates=None, year=None, workspace=None,
          parsed=None, parser=None, max_line_bytes=1 << 20, multiline=False):
    """Mine log templates with Drain3: parsed.parquet, templates.json, parser.json, drain_state.json."""
    print(pipeline.parse(ws(c, workspace), logs, format, log_format, templates, year, parsed, parser, max_line_bytes,
                         multiline))


@task(iterable=["formats"], help={"workspace": R, "datasets": "LogHub-style folder: <System>/<System>_2k.log and "
      "_structured*.csv (default ../shared/datasets/loghub-2k)", "formats": "System=FORMAT (repeatable) or a JSON "
      "file {System: format string}; the six shared systems have theirs", "json": "JSON out"})
@user_errors
def parse_accuracy(c, workspace=None, datasets=None, formats=None, json_=False):
    """GA and PA per system of a LogHub-style folder: the preset and the generic default side by side."""
    print(pipeline.parse_accuracy(root(c, workspace), Path(datasets) if datasets else data(c) / "loghub-2k",
                                  formats or [], json_))


@task(help={"parsed": "parsed.parquet (default <workspace>/parsed.parquet)", "sessions": "DeepLog HDFS "
            "session file instead (<block>,<event ids>)", "templates": "templates file for --sessions",
            "vocab": "output vocab.json", "sequences": "output sequences.parquet", "workspace": W})
@user_errors
def build_deeplog(c, workspace=None, parsed=None, sessions=None, templates=None, vocab=None, sequences=None):
    """Build vocab.json (template -> index) and sequences.parquet (key sequences per session)."""
    print(pipeline.build_deeplog(ws(c, workspace), parsed, sessions, templates, vocab, sequences))


@task(help={"vocab": "template_id-keyed vocab.json", "parsed": "parsed.parquet that maps ids to templates",
            "out": "output (default: overwrite --vocab)"})
@user_errors
def fix_vocab(c, vocab, parsed, out=None):
    """Convert a vocab keyed by template ids ({"1": 0}) to the template-string form."""
    print(pipeline.fix_vocab(vocab, parsed, out))


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
def train_deeplog(c, workspace=None, sequences=None, vocab=None, out=None, seq_len=10, top_k=9, epochs=40,
                  batch_size=128, lr=2e-3, seed=42, val_split=0.1, patience=3, hidden=64, layers=2, embedding=32,
                  rule="probability", target_fpr=0.0, calibration_split=0.15, no_session_keys=False,
                  threshold_margin=0.3, key_set_support=1, no_key_sets=False):
    """Train DeepLog (2x64 LSTM, h=10, g=9 by default) and write its checkpoint."""
    print(pipeline.train_deeplog(**flags(locals(), workspace=ws(c, workspace))))


@task(help={"parsed": "parsed.parquet", "vocab": "vocab.json (template order = column order)",
            "bucket_seconds": "bucket length in seconds (default 10)", "bucket_lines": "or count per N lines "
            "(logs without timestamps)", "whole_stream": "one series for all hosts instead of one per host",
            "out": "output (default <workspace>/counts.parquet)", "workspace": W},
      flags={"bucket_seconds": Float(1e-6, 1e9), "bucket_lines": Int(1, 1 << 40)})
@user_errors
def build_mscred(c, workspace=None, parsed=None, vocab=None, bucket_seconds=10.0, bucket_lines=None,
                 whole_stream=False, out=None):
    """Count every template per time bucket (per host): MSCRED's input series, counts.parquet."""
    print(pipeline.build_mscred(ws(c, workspace), parsed, vocab, bucket_seconds, bucket_lines, whole_stream, out))


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
def train_mscred(c, workspace=None, counts=None, vocab=None, out=None, scales="10,30,60", steps=5, gap=10,
                 channels="8,16,32,64", epochs=20, batch_size=16, lr=2e-3, seed=42, val_split=0.2, patience=3,
                 stride=None, val_stride=None, level_margin=1.05, level_floor_quantile=0.999, threshold_factor=2.0,
                 threshold_quantile=0.95, broken_cell_level=None, threshold=None, score_scales=None):
    """Train MSCRED on normal count windows; store normalisation, broken-cell levels and threshold."""
    print(pipeline.train_mscred(**flags(locals(), workspace=ws(c, workspace))))


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
def evaluate(c, workspace=None, logs=None, parsed=None, normal=None, abnormal=None, templates=None,
             labels=None, events=None, model=None, mscred_model=None, vocab=None, parser=None, json_=False, out=None,
             plot=None, scores=None, threshold=None, broken_cell_level=None, year=None, rule=None, top_k=None,
             probability_threshold=None, ratio=None, no_key_sets=False):
    """Score held-out data: DeepLog per session and line, MSCRED per time window, and both combined."""
    print(pipeline.evaluate(**flags(locals(), workspace=ws(c, workspace))))


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
            "repeatable", "quantize": "int8: DeepLog's weights in int8, kept only when its verdicts agree with "
            "float32 on every window of --sequences (default none)"}, iterable=["closing_template"],
      flags={"seq_len": WINDOW, "feature_dim": Int(2, 1 << 24), "window_size": WINDOW, "opset": Int(9, 25),
             "session_idle": Float(gt=0, high=1e9), "quantize": choice("none", "int8")})
@user_errors
def convert(c, workspace=None, deeplog_model=None, mscred_model=None, vocab=None, parser=None,
            sequences=None, counts=None, output_dir="models/onnx", seq_len=None, feature_dim=None,
            window_size=None, opset=11, portable=False, validate=False, json_=False, session_idle=None,
            closing_template=None, quantize="none"):
    """Export the models to ONNX: the model directory with meta.json, C-form vocab, parser.json, golden.json."""
    print(pipeline.convert(**flags(locals(), workspace=ws(c, workspace))))


@task(help={"workspace": R, "seed": "random seed", "json": "print the results as one JSON object"}, flags={"seed": SEED})
@user_errors
def demo(c, workspace=None, seed=7, json_=False):
    """End to end on generated fleet logs: generate, parse, build, train, evaluate, print the table."""
    from alog_edge import demo as d  # the demo sits beside cli in the top layer, so the task calls it itself
    result = d.run(root(c, workspace) / "demo", seed=seed)
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
def match(c, logs, model_dir=None, workspace=None, out=None):
    """Key every line with the parser: one JSON line each with line_no, index, template (the runtime's `match`)."""
    for line in pipeline.match(ws(c, workspace), logs, model_dir, out):
        print(line)


@task(help={"target": "x86_64, aarch64 or all", "sanitize": "ASan+UBSan build (x86_64 only)"}, flags={"target": TARGET})
@user_errors
def build_runtime(c, target="x86_64", sanitize=False):
    """Build the C runtime with Conan + CMake into build/<target>/ (bin/alog-edge, lib/)."""
    for line in native.build_runtime(REPO, target, sanitize):
        print(line)


@task(help={"target": "x86_64, aarch64 (under qemu) or all", "sanitize": "run the ASan+UBSan build",
            "memcheck": "run the tests under valgrind (x86_64)"}, flags={"target": TARGET})
@user_errors
def test_runtime(c, target="x86_64", sanitize=False, memcheck=False):
    """Build the runtime and run its C tests (ctest)."""
    native.test_runtime(REPO, target, sanitize, memcheck)


@task(help={"seconds": "time per fuzzer (default 60)"}, flags={"seconds": Int(1, 7 * 86400)})
@user_errors
def fuzz(c, seconds=60):
    """Build the libFuzzer targets (line matcher, JSON loaders, meta.json/golden.json) with clang; run each for a bounded time."""
    for line in native.fuzz(REPO, seconds):
        print(line)


@task(help={"workspace": R, "batch": "DeepLog windows per onnxruntime call", "seconds": "time per figure",
            "json": "JSON lines out", "aarch64": "the C bench under qemu-aarch64, as ratios to x86_64"},
      flags={"batch": Int(1, 1 << 16), "seconds": Float(gt=0, high=3600)})
@user_errors
def bench(c, workspace=None, batch=256, seconds=2.0, json_=False, aarch64=False):
    """C runtime vs Python pipeline on HDFS_2k and the demo log: throughput, latency, RSS, load time (--aarch64: the C bench under qemu as ratios to x86_64)."""
    print(native.bench(REPO, root(c, workspace), data(c), batch, seconds, json_, aarch64))


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
    done(*devices.flash(**flags(locals())))


@task(help={"action": "start, stop or status", "dir": "device folder (default workspace/devices/ssh)",
            "kind": "sshd (with SFTP) or dropbear (without)", "count": "devices to start (dir/0, dir/1, ...)"},
      flags={"count": Int(1, 100), "kind": choice("sshd", "dropbear")})
@user_errors
def device_ssh(c, action, dir=None, kind="sshd", count=1):
    """Local SSH test devices on 127.0.0.1 (real sshd or dropbear, busybox-only PATH, prefix in the folder)."""
    from alog_edge.delivery import sshdevice
    print(sshdevice.manage(action, Path(dir) if dir else root(c) / "devices" / "ssh", kind, int(count)))


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
            "json": "print the summary as one JSON object", "workspace": R})
@user_errors
def bundle(c, target="x86_64", models=None, version=None, key=None, out=None, compress="gz", runtime=None,
           workspace=None, json_=False):
    """Build a signed, reproducible bundle: stripped runtime, its libraries, models, install.sh, MANIFEST."""
    from alog_edge.delivery import bundle as b
    res = b.build(b.BundleRequest(target, key=opt(key), models=opt(models), runtime=opt(runtime), version=version,
                                  out=opt(out), compress=compress, workspace=root(c, workspace), repo=REPO))
    print(json.dumps(res.summary()) if json_ else res.text())


@task(help={"action": "start, stop, status or console", "workspace": R + "; the board lives in <workspace>/board",
            "ssh_port": "loopback port forwarded to the board's SSH server (default 2222)",
            "serial_port": "loopback port of the serial console (default: SSH port + 1)",
            "memory": "board memory in MB (default 1024)", "kernel": "arm64 kernel image (default: the one "
            "`invoke setup` fetched)", "json": "status: one JSON object"},
      flags={"ssh_port": Int(1, 65535), "serial_port": Int(1, 65535), "memory": Int(256, 65536)})
@user_errors
def board(c, action, workspace=None, ssh_port=2222, serial_port=None, memory=1024, kernel=None,
          json_=False):
    """An emulated aarch64 device (qemu -M virt): start (boots, waits for SSH), stop, status, console."""
    from alog_edge.delivery import board_cli as b
    code = b.command(REPO, action, root(c, workspace), ssh_port, serial_port,
                     memory, opt(kernel), json_)
    if code:
        raise Exit(code=code)


@task(help={"devices": "devices in the fleet (default 20, sshd and dropbear alternating)",
            "parallel": "devices flashed at once (default 10)", "workspace": R},
      flags={"devices": Int(1, 200), "parallel": Int(1, 200)})
@user_errors
def fleet_bench(c, devices=20, parallel=10, workspace=None):
    """Time a first install on one local SSH device, then on a fleet of them flashed in parallel; the recap."""
    from alog_edge.delivery import flash_rig
    print(flash_rig.fleet_bench(root(c, workspace) / "soak", int(devices), int(parallel), REPO))


@task(help={"bundle": "bundle to install (.tar.gz or .tar.xz)", "prefix": "install prefix (default "
            "<workspace>/device)", "trust_key": "minisign public key to trust (first install)",
            "force": "reinstall the current version", "rollback": "switch back to the previous release",
            "status": "print the prefix's state", "json": "print one JSON object", "workspace": R})
@user_errors
def install(c, bundle=None, prefix=None, trust_key=None, force=False, rollback=False, status=False,
            workspace=None, json_=False):
    """Install a bundle on this machine with its install.sh (aarch64 through qemu); --rollback, --status."""
    done(*devices.install(**flags(locals(), root=root(c, workspace))))


@task(help={"transport": "local: a prefix on this machine run by busybox applets only; ssh: flashes to local "
            "sshd/dropbear devices with the line cut, the server killed, install.sh killed; serial: transfers "
            "through the paced relay with drops, flipped bits, lost or duplicated bytes and stalls", "runs": "random kill "
            "instants (default 100); ssh: runs per fault (default 200)", "seed": "random seed",
            "no_steps": "skip the kill at every step",
            "bundle_a": "bundle to install first", "bundle_b": "the other bundle (default: both built from the "
            "demo models, versions soak-a and soak-b)", "key": "signing key of the bundles", "json": "JSON out",
            "tamper": "instead: install bundle-b with one flipped byte in every region (needs both bundles)",
            "faults": "ssh: comma list of cut, kill-server, kill-install (default all)",
            "devices": "ssh: devices faulted in parallel (default 4, sshd and dropbear alternating)", "workspace": R,
            "baud": "serial: line rate of the paced relay (default 115200)",
            "flashes": "serial: whole flashes (model-only updates back and forth: uploads, install.sh, status) "
            "until --runs faults, instead of bare transfers", "install_only": "serial --flashes: faults only "
            "while install.sh runs (its command, answers, status), every 0.6 s on average"},
      flags={"transport": choice("local", "ssh", "serial"), "runs": Int(1, 10**6), "seed": SEED, "devices": Int(1, 64),
             "baud": BAUD})
@user_errors
def soak(c, transport="local", runs=None, seed=1, no_steps=False, bundle_a=None, bundle_b=None, key=None,
         workspace=None, json_=False, tamper=False, faults="cut,kill-server,kill-install", devices=4,
         baud=115200, flashes=False, install_only=False):
    """Kill install.sh (SIGKILL) at every step and at random instants (ssh: also cut the line, kill the server);
    after each, current is complete."""
    done(*devices.soak(**flags(locals(), repo=REPO, root=root(c, workspace))))


@task(help={"action": "start, stop, status, or fault (with --command)", "dir": "device folder (default "
            "workspace/devices/serial)", "baud": "line rate the relay paces to (default 115200)",
            "user": "console login user (password from $ALOG_EDGE_SERIAL_PASSWORD); none: a shell prompt",
            "port": "TCP port of the line (default: a free one)", "command": "fault: drop | flip N | lose N | "
            "dup N | stall SECONDS | clean off|on, then optionally down (host to device) or up"},
      flags={"baud": BAUD, "port": Int(0, 65535)})
@user_errors
def device_serial(c, action, dir=None, baud=115200, user=None, port=0, command=None):
    """A local serial test device: busybox ash on a pty (busybox-only PATH) behind a relay paced at the baud rate
    that drops, corrupts, loses, duplicates or stalls bytes on command."""
    from alog_edge.delivery import serial_device
    print(serial_device.manage(action, Path(dir) if dir else root(c) / "devices" / "serial", int(baud), user, int(port),
                               command))


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
