"""alog-edge tasks. `invoke --list` shows them; `invoke --help TASK` shows a task's flags."""
from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path

from invoke import Exit, task

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "py"))
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
logging.getLogger("drain3").setLevel(logging.WARNING)

W = "workspace directory (default: workspace/)"


def user_errors(body):
    """Bad input ends as one line `error: <file>: <problem>` and exit status 1, never a traceback."""
    @functools.wraps(body)
    def wrapper(*args, **kwargs):
        from alog_edge.errors import AlogError
        try:
            return body(*args, **kwargs)
        except AlogError as exc:
            raise Exit(f"error: {exc}", code=1) from None
    return wrapper


def ws(workspace: str) -> Path:
    return Path(workspace or "workspace")


def opt(path: str | None) -> Path | None:
    return Path(path) if path else None


@task
def setup(c):
    """Install every dependency: Python packages (torch pinned to 2.13.0) and Debian packages."""
    from alog_edge import install
    install.setup(REPO)


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
    "max_line_bytes": "longest line accepted", "workspace": W})
@user_errors
def parse(c, logs, format=None, log_format=None, templates=None, year=None, workspace="workspace",
          parsed=None, parser=None, max_line_bytes=1 << 20):
    """Mine log templates with Drain3: parsed.parquet, templates.json, parser.json, drain_state.json."""
    from alog_edge import logformat, parse as p
    fmt = logformat.resolve(format, log_format)
    res = p.parse([Path(x) for x in logs], fmt, ws(workspace), parsed_out=opt(parsed), parser_out=opt(parser),
                  template_file=opt(templates), year=int(year) if year else None, max_line_bytes=int(max_line_bytes))
    print(f"parsed {res.lines} lines into {res.clusters} templates in {res.seconds:.1f}s "
          f"({res.lines_per_second:,.0f} lines/s); {res.format_misses} lines did not fit the format")


@task(help={"workspace": W, "datasets": "LogHub folder (default ../shared/datasets/loghub-2k)", "json": "JSON out"})
@user_errors
def parse_accuracy(c, workspace="workspace", datasets=None, json_=False):
    """Grouping accuracy of the parser on the six LogHub 2k samples, next to the published Drain figures."""
    from alog_edge import loghub
    rows = loghub.accuracy_table(opt(datasets) or REPO.parent / "shared" / "datasets" / "loghub-2k",
                                 ws(workspace) / "loghub")
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


@task(iterable=["logs", "labels"], help={
    "logs": "raw log to score (matched with the workspace parser)", "parsed": "or a parsed.parquet",
    "normal": "or DeepLog HDFS session file of normal sessions", "abnormal": "... and of abnormal sessions",
    "templates": "templates file for --normal/--abnormal", "labels": "CSV of labels: session,label (or "
    "BlockId,Label) or line_no,label; repeatable", "model": "checkpoint", "vocab": "vocab.json",
    "parser": "parser.json", "json": "print one JSON object", "out": "CSV with session,label,verdict",
    "year": "year for timestamps without one", "workspace": W})
@user_errors
def evaluate(c, workspace="workspace", logs=None, parsed=None, normal=None, abnormal=None, templates=None,
             labels=None, model=None, vocab=None, parser=None, json_=False, out=None, year=None):
    """Score held-out data with DeepLog: precision, recall, F1 per session and per line."""
    from alog_edge import evaluate as e
    ev = e.evaluate_deeplog(ws(workspace), model_path=opt(model), vocab_path=opt(vocab),
                            logs=[Path(x) for x in logs or []], parsed=opt(parsed), parser_path=opt(parser),
                            normal=opt(normal), abnormal=opt(abnormal), templates=opt(templates),
                            label_files=[Path(x) for x in labels or []], year=int(year) if year else None)
    if out:
        e.write_session_csv(ev, Path(out))
    print(json.dumps(ev.summary()) if json_ else e.report([ev]))


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
