"""`invoke demo`: the whole pipeline on generated fleet logs, ending in an evaluation table."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from . import dataset, demo_data, evaluate, logformat, parse, train, vocab
from .models.deeplog import DeepLogConfig

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class DemoResult:
    report: str
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def _timed(timings: dict[str, float], name: str, step: Callable[[], T]) -> T:
    log.info("demo: %s", name)
    started = time.perf_counter()
    out = step()
    timings[name] = round(time.perf_counter() - started, 2)
    return out


def run(workdir: Path, seed: int = 7) -> DemoResult:
    timings: dict[str, float] = {}
    files = _timed(timings, "generate", lambda: demo_data.generate(workdir / "data", seed=seed))
    parsed = _timed(timings, "parse", lambda: parse.parse([files.train_log], logformat.PRESETS["demo"], workdir))
    built = _timed(timings, "build-deeplog", lambda: dataset.build_deeplog_inputs(workdir))
    voc = vocab.load(workdir / "vocab.json")
    trained = _timed(timings, "train-deeplog", lambda: train.train_deeplog(
        workdir / "sequences.parquet", voc, workdir / "deeplog.pth", DeepLogConfig(voc.num_classes),
        train.TrainConfig(seed=seed)))
    ev = _timed(timings, "evaluate", lambda: evaluate.evaluate_deeplog(
        workdir, logs=[files.test_log], label_files=[files.session_labels, files.line_labels]))
    summary = {"parse": {"lines": parsed.lines, "templates": parsed.clusters,
                         "lines_per_s": round(parsed.lines_per_second)},
               "vocab_size": built.vocab_size, "train_sessions": built.sessions,
               "deeplog_train": {"epochs": trained.epochs_run, "seconds": round(trained.seconds, 1),
                                 "val_top_k_accuracy": round(trained.val_top_k_accuracy, 4)},
               "evaluation": [ev.summary()], "timings_s": timings}
    header = (f"demo: {parsed.lines} training lines, {parsed.clusters} templates, {built.sessions} sessions; "
              f"DeepLog trained in {trained.seconds:.0f}s ({trained.epochs_run} epochs)\n"
              f"held-out part: {files.test_log}\n")
    return DemoResult(header + evaluate.report([ev]), summary, timings)
