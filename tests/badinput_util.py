"""Helpers of the bad-input tests: a tiny real workspace and model directory, tasks run in-process
through invoke's own Program (the same parser, the same error path, no interpreter start per try),
and the checks every try must pass: one `error:` line, a non-zero exit, no traceback, nothing
half-written, no temp file left behind."""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import REPO

TRY_SECONDS = 60  # any single try; a hang fails the test instead of the suite


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [x for x in self.stderr.splitlines() if x.strip()]


def load_tasks() -> Any:
    spec = importlib.util.spec_from_file_location("alog_edge_tasks", REPO / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class TryTimeout(BaseException):
    pass


class InProcess:
    """`invoke ARGS` through invoke's Program in this process."""

    def __init__(self) -> None:
        from invoke import Collection, Program
        self.tasks = load_tasks()
        self.namespace = Collection.from_module(self.tasks)
        self._program = Program

    def task(self, name: str) -> Any:
        return self.namespace[name]

    def run(self, *args: str, timeout: int = TRY_SECONDS) -> Outcome:
        out, err = io.StringIO(), io.StringIO()
        program = self._program(namespace=self.namespace, name="alog-edge", binary="invoke")

        def expire(signum: int, frame: Any) -> None:
            raise TryTimeout(f"invoke {' '.join(args)} ran longer than {timeout}s")

        old = signal.signal(signal.SIGALRM, expire)
        signal.alarm(timeout)
        code = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                program.run(["invoke", *args], exit=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        return Outcome(code, out.getvalue(), err.getvalue())


def invoke_process(*args: str, timeout: int = TRY_SECONDS, **kwargs: Any) -> Outcome:
    """`invoke ARGS` in a fresh interpreter (signals, file descriptors, hangs in C code)."""
    proc = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, **kwargs)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under folder (hidden ones included) with its sha256."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir() and not any(path.iterdir()):
            out[str(path.relative_to(folder)) + "/"] = "empty dir"
    return out


TEMP_NAME = re.compile(r"(^|/)\.[^/]+\.(tmp|old)$|(^|/)\.[^/]*\.[A-Za-z0-9_]{6,}(/|$)")


def leftovers(folder: Path) -> list[str]:
    """Staged files or folders (".name.XXXX.tmp", ".name.XXXXXX/") left under folder."""
    return sorted(p for p in (str(x.relative_to(folder)) for x in folder.rglob(".*")) if TEMP_NAME.search(p)
                  or p.endswith(".tmp"))


def one_error_line(outcome: Outcome, starts: str = "error: ") -> str:
    """The try failed with exactly one line on stderr, in the `error:` form, and no traceback."""
    assert outcome.code != 0, f"exit 0 for bad input: {outcome.stderr[-400:]!r} {outcome.stdout[-200:]!r}"
    assert "Traceback" not in outcome.stderr, outcome.stderr[-2000:]
    assert len(outcome.lines) == 1, outcome.stderr[-2000:]
    assert outcome.lines[0].startswith(starts), outcome.lines[0]
    assert "internal error" not in outcome.lines[0], outcome.lines[0]
    return outcome.lines[0]


def ends_in_one_error_line(outcome: Outcome, starts: str = "error: ") -> str:
    """A try that did some work first: progress lines, then exactly one `error:` line, the last."""
    assert outcome.code != 0, f"exit 0 for bad input: {outcome.stderr[-400:]!r}"
    assert "Traceback" not in outcome.stderr, outcome.stderr[-2000:]
    errors = [x for x in outcome.lines if x.startswith("error:")]
    assert len(errors) == 1 and outcome.lines[-1] == errors[0], outcome.stderr[-2000:]
    assert errors[0].startswith(starts) and "internal error" not in errors[0], errors[0]
    return errors[0]


def build_tiny(ws: Path, datasets: Path) -> Path:
    """Parse Zookeeper_2k, train both models for an epoch with tiny settings, convert: a real model directory."""
    import pandas as pd

    from alog_edge.data import counts, dataset, parse
    from alog_edge.export import convert as export
    from alog_edge.formats import logformat, vocab
    from alog_edge.training import train
    from alog_edge.models.deeplog import DeepLogConfig
    from alog_edge.models.mscred import MSCREDConfig

    log = datasets / "loghub-2k" / "Zookeeper" / "Zookeeper_2k.log"  # one long stream: DeepLog windows
    parse.parse([log], logformat.PRESETS["zookeeper"], ws)
    dataset.build_deeplog_inputs(ws)
    voc = vocab.load(ws / "vocab.json")
    train.train_deeplog(ws / "sequences.parquet", voc, ws / "deeplog.pth",
                        DeepLogConfig(voc.num_classes, 4, 3, 4, 8, 1),
                        train.TrainConfig(epochs=1, seed=1, threads=1))
    spec = counts.CountSpec(bucket_seconds=None, bucket_lines=20, per_host=False)
    counts.save(counts.count_series(pd.read_parquet(ws / "parsed.parquet"), voc, spec), spec, voc,
                ws / "counts.parquet")
    train.train_mscred(ws / "counts.parquet", voc, ws / "mscred.pth",
                       MSCREDConfig(voc.num_classes, scales=(2, 4), steps=2, gap=2, channels=(2, 2, 2, 2)),
                       train.TrainConfig(epochs=1, seed=1, threads=1))
    model_dir = ws / "models"
    export.convert(export.ConvertRequest(vocab=ws / "vocab.json", parser=ws / "parser.json", output_dir=model_dir,
                                         deeplog_model=ws / "deeplog.pth", mscred_model=ws / "mscred.pth",
                                         sequences=ws / "sequences.parquet", counts=ws / "counts.parquet"))
    return model_dir


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj), encoding="utf-8")


def env_with_trace_dir(folder: Path) -> dict[str, str]:
    return {**os.environ, "ALOG_EDGE_TRACE_DIR": str(folder)}
