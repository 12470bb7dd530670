"""The pipeline's tasks behind tasks.py: each takes the task's flags and returns what the task prints.

Paths are already resolved (workspace from invoke.yaml or -w); numbers are already checked by their flag
specs (cli/flags.py); what only a step can check (a file, a cross-flag rule) raises AlogError.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

from alog_edge.cli.taskspec import refuse
from alog_edge.errors import AlogError
from alog_edge.fileio import AtomicOutputs, check_outputs

WINDOW_MAX = 1 << 16  # the device's AE_MAX_WINDOW (runtime/src/model.c)


def opt(path: str | Path | None) -> Path | None:
    return Path(path) if path else None


def present(path: Path) -> Path | None:
    return path if path.exists() else None


def demo_data(root: Path, out: str | None, seed: int, hosts: int, train_minutes: int, test_minutes: int) -> str:
    from alog_edge.data import demo_data as gen
    files = gen.generate(opt(out) or root / "demo", seed=seed, hosts=hosts, train_minutes=train_minutes,
                         test_minutes=test_minutes)
    return f"wrote {files.train_log}, {files.test_log} and labels beside them"


def parse(workspace: Path, logs: Sequence[str], format: str | None, log_format: str | None, templates: str | None,
          year: int | None, parsed: str | None, parser: str | None, max_line_bytes: int, multiline: bool) -> str:
    from alog_edge.data import parse as p
    from alog_edge.formats import logformat
    fmt = replace(logformat.resolve(format, log_format), multiline=bool(multiline))
    res = p.parse([Path(x) for x in logs], fmt, workspace, parsed_out=opt(parsed), parser_out=opt(parser),
                  template_file=opt(templates), year=year, max_line_bytes=max_line_bytes)
    return (f"parsed {res.lines} lines into {res.clusters} templates in {res.seconds:.1f}s "
            f"({res.lines_per_second:,.0f} lines/s); {res.format_misses} lines did not fit the format"
            + (f", {res.continued} lines continued a record" if multiline else ""))


def parse_accuracy(root: Path, datasets: Path, formats: Sequence[str], json_: bool) -> str:
    from alog_edge.evaluation import loghub
    rows = loghub.accuracy_table(datasets / "loghub-2k", root / "loghub", loghub.parse_formats(formats))
    return "\n".join(json.dumps(r) for r in rows) if json_ else loghub.format_rows(rows)


def build_deeplog(workspace: Path, parsed: str | None, sessions: str | None, templates: str | None,
                  vocab: str | None, sequences: str | None) -> str:
    from alog_edge.data import dataset
    res = dataset.build_deeplog_inputs(workspace, parsed=opt(parsed), sessions_file=opt(sessions),
                                       templates_file=opt(templates), vocab_out=opt(vocab),
                                       sequences_out=opt(sequences))
    return f"vocab: {res.vocab_size} templates (+1 unknown); {res.sessions} sessions, {res.keys} keys"


def fix_vocab(vocab: str, parsed: str, out: str | None) -> str:
    from alog_edge.formats import vocab as v
    fixed = v.fix_vocab(Path(vocab), Path(parsed), opt(out) or Path(vocab))
    return f"wrote {out or vocab}: {fixed.size} templates"


def train_deeplog(workspace: Path, sequences: str | None, vocab: str | None, out: str | None, seq_len: int,
                  top_k: int, epochs: int, batch_size: int, lr: float, seed: int, val_split: float, patience: int,
                  hidden: int, layers: int, embedding: int, rule: str, target_fpr: float, calibration_split: float,
                  no_session_keys: bool, threshold_margin: float, key_set_support: int, no_key_sets: bool) -> str:
    from alog_edge.formats import vocab as v
    from alog_edge.models.deeplog import DeepLogConfig
    from alog_edge.training import train
    check_outputs(opt(out) or workspace / "deeplog.pth")
    voc = v.load(opt(vocab) or workspace / "vocab.json")
    if top_k > voc.num_classes:
        raise refuse("top_k", f"must be at most the number of keys, {voc.num_classes} (got '{top_k}')")
    res = train.train_deeplog(opt(sequences) or workspace / "sequences.parquet", voc, opt(out) or workspace / "deeplog.pth",
                              DeepLogConfig(voc.num_classes, int(seq_len), int(top_k), int(embedding), int(hidden),
                                            int(layers)),
                              train.TrainConfig(int(epochs), int(batch_size), float(lr), int(seed), float(val_split),
                                                int(patience)),
                              train.DeepLogRuleConfig(rule, float(target_fpr), float(calibration_split),
                                                      not no_session_keys, not no_key_sets, int(key_set_support),
                                                      float(threshold_margin)))
    return (f"deeplog: {res.epochs_run} epochs in {res.seconds:.0f}s on {res.train_windows} windows, "
            f"val loss {res.best_val_loss:.4f}, val top-{top_k} accuracy {res.val_top_k_accuracy:.4f}, "
            f"{res.parameters} parameters; rule {rule}, probability threshold {res.probability_threshold:.3g} "
            f"flags {res.calibration_fpr:.4f} of {res.calibration_sessions} held-out normal sessions")


def build_mscred(workspace: Path, parsed: str | None, vocab: str | None, bucket_seconds: float,
                 bucket_lines: int | None, whole_stream: bool, out: str | None) -> str:
    from alog_edge.data import counts
    spec = counts.CountSpec(None if bucket_lines else bucket_seconds, bucket_lines, not whole_stream)
    groups, buckets, dim = counts.build(workspace, spec, parsed=opt(parsed), vocab_path=opt(vocab), out=opt(out))
    return f"counts: {groups} series, {buckets} buckets ({spec.describe()}), feature_dim {dim}"


def train_mscred(workspace: Path, counts: str | None, vocab: str | None, out: str | None, scales: Sequence[int],
                 steps: int, gap: int, channels: Sequence[int], epochs: int, batch_size: int, lr: float, seed: int,
                 val_split: float, patience: int, stride: int | None, val_stride: int | None, level_margin: float,
                 level_floor_quantile: float, threshold_factor: float, threshold_quantile: float,
                 broken_cell_level: float | None, threshold: float | None, score_scales: Sequence[int] | None) -> str:
    from alog_edge.formats import vocab as v
    from alog_edge.models.mscred import MSCREDConfig
    from alog_edge.training import train
    check_outputs(opt(out) or workspace / "mscred.pth")
    voc = v.load(opt(vocab) or workspace / "vocab.json")
    try:
        cfg = MSCREDConfig(voc.num_classes, scales, steps, gap, channels, score_scales=score_scales)
    except ValueError as exc:  # score_scales not a subset of scales
        raise refuse("score_scales", str(exc)) from None
    if cfg.window_size > WINDOW_MAX:
        raise refuse("gap", f"the window (largest scale + (steps - 1) x gap) is {cfg.window_size} buckets, "
                            f"more than {WINDOW_MAX:g}")
    res = train.train_mscred(opt(counts) or workspace / "counts.parquet", voc, opt(out) or workspace / "mscred.pth", cfg,
                             train.TrainConfig(epochs, batch_size, lr, seed, val_split, patience),
                             stride=stride, val_stride=val_stride, level_margin=level_margin,
                             level_floor_quantile=level_floor_quantile, threshold_factor=threshold_factor,
                             threshold_quantile=threshold_quantile, broken_cell_level=broken_cell_level,
                             threshold=threshold)
    level = (f"broken-cell levels per cell (floor {res.broken_cell_level:.4g})" if res.per_cell
             else f"broken-cell level {res.broken_cell_level:.4g}")
    return (f"mscred: {res.epochs_run} epochs in {res.seconds:.0f}s on {res.train_windows} windows, "
            f"{res.parameters} parameters; {level}, threshold {res.threshold:g}")


def evaluate(workspace: Path, logs: Sequence[str] | None, parsed: str | None, normal: str | None,
             abnormal: str | None, templates: str | None, labels: Sequence[str] | None, events: str | None,
             model: str | None, mscred_model: str | None, vocab: str | None, parser: str | None, json_: bool,
             out: str | None, plot: str | None, scores: str | None, threshold: float | None,
             broken_cell_level: float | None, year: int | None, rule: str | None, top_k: int | None,
             probability_threshold: float | None, ratio: str | None, no_key_sets: bool) -> str:
    from alog_edge.evaluation import evaluate as e
    check_outputs(opt(out), opt(plot), opt(scores))
    label_files = [Path(x) for x in labels or []]
    options = e.rule_options(rule, top_k, probability_threshold, ratio, no_key_sets)
    if normal or abnormal:
        ev = e.evaluate_deeplog(workspace, model_path=opt(model), vocab_path=opt(vocab), normal=opt(normal),
                                abnormal=opt(abnormal), templates=opt(templates), label_files=label_files, **options)
        result = e.Report(ev, None)
    else:
        result = e.evaluate_all(workspace, deeplog_path=opt(model), mscred_path=opt(mscred_model),
                                vocab_path=opt(vocab), logs=[Path(x) for x in logs or []], parsed=opt(parsed),
                                parser_path=opt(parser), label_files=label_files, events=opt(events),
                                year=year, plot_path=opt(plot), scores_path=opt(scores), threshold=threshold,
                                broken_cell_level=broken_cell_level, **options)
    if out and result.deeplog is not None:
        e.write_session_csv(result.deeplog, Path(out))
    return json.dumps(result.summary()) if json_ else result.text()


def convert(workspace: Path, deeplog_model: str | None, mscred_model: str | None, vocab: str | None,
            parser: str | None, sequences: str | None, counts: str | None, output_dir: str, seq_len: int | None,
            feature_dim: int | None, window_size: int | None, opset: int, portable: bool, validate: bool,
            json_: bool, session_idle: float | None, closing_template: Sequence[str] | None, quantize: str) -> str:
    from alog_edge.export import convert as export
    named = bool(deeplog_model or mscred_model)  # naming one model converts only the named ones
    res = export.convert(export.ConvertRequest(
        vocab=opt(vocab) or workspace / "vocab.json", parser=opt(parser) or workspace / "parser.json",
        output_dir=Path(output_dir),
        deeplog_model=opt(deeplog_model) if named else present(workspace / "deeplog.pth"),
        mscred_model=opt(mscred_model) if named else present(workspace / "mscred.pth"),
        sequences=opt(sequences) or present(workspace / "sequences.parquet"),
        counts=opt(counts) or present(workspace / "counts.parquet"),
        seq_len=seq_len, feature_dim=feature_dim, window_size=window_size, opset=opset, portable=bool(portable),
        validate=bool(validate), session_idle=session_idle, closing_templates=tuple(closing_template or ()),
        quantize=quantize))
    return json.dumps(export.summary(res)) if json_ else export.format_summary(res)


def match(workspace: Path, logs: Sequence[str], model_dir: str | None, out: str | None) -> Iterator[str]:
    """The JSON lines as they come (none when they go to `out`)."""
    from alog_edge.data import parse as p
    from alog_edge.formats import vocab as v
    if not logs:
        raise AlogError("--logs", "give at least one log file to match")
    if out:
        check_outputs(Path(out))
    if model_dir:
        parser, voc = Path(model_dir) / "parser.json", v.load_c_form(Path(model_dir) / "vocab.json")
    else:
        parser, voc = workspace / "parser.json", v.load(workspace / "vocab.json")
    lines = p.match_jsonl([Path(x) for x in logs], parser, voc)
    if not out:
        return lines
    with AtomicOutputs() as o:
        o.write_text(out, "".join(x + "\n" for x in lines))
    return iter(())
