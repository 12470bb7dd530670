"""Training loops: seeded, with a validation split, early stopping and progress bars."""
from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from alog_edge.formats import checkpoint
from alog_edge.data import dataset
from alog_edge.errors import AlogError
from alog_edge.models.deeplog import DeepLog, DeepLogConfig
from alog_edge.formats.vocab import Vocab

if TYPE_CHECKING:
    from alog_edge.models.mscred import MSCRED, MSCREDConfig

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 42
    val_split: float = 0.1
    patience: int = 3
    threads: int = 0  # 0: all cores


@dataclass
class TrainResult:
    epochs_run: int
    best_val_loss: float
    val_top_k_accuracy: float
    train_windows: int
    val_windows: int
    seconds: float
    parameters: int
    probability_threshold: float = 0.0
    calibration_fpr: float = float("nan")
    calibration_sessions: int = 0


def seed_everything(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.use_deterministic_algorithms(True, warn_only=True)


def split_sessions(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole sessions, so validation windows never overlap training ones."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_split)) if n > 1 else 0
    return order[n_val:], order[:n_val]


Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # inputs, targets, weights


def unique_weighted(x: np.ndarray, y: np.ndarray) -> Data:
    """Collapse repeated (window, next key) pairs into one weighted sample: same loss, far fewer steps."""
    if len(x) == 0:
        return torch.from_numpy(x), torch.from_numpy(y), torch.zeros(0)
    rows, counts = np.unique(np.concatenate([x, y[:, None]], axis=1), axis=0, return_counts=True)
    return (torch.from_numpy(np.ascontiguousarray(rows[:, :-1])), torch.from_numpy(np.ascontiguousarray(rows[:, -1])),
            torch.from_numpy(counts.astype(np.float32)))


def _batches(data: Data, size: int, shuffle: torch.Generator | None):
    x = data[0]
    idx = torch.randperm(len(x), generator=shuffle) if shuffle is not None else torch.arange(len(x))
    for start in range(0, len(x), size):
        part = idx[start:start + size]
        yield tuple(t[part] for t in data)


def _evaluate(model: nn.Module, data: Data, top_k: int, batch: int) -> tuple[float, float]:
    """Weighted mean loss and share of samples whose target is in the top k."""
    model.eval()
    loss_sum, hits = 0.0, 0.0
    with torch.no_grad():
        for bx, by, bw in _batches(data, batch * 4, None):
            logits = model(bx)
            loss_sum += (nn.functional.cross_entropy(logits, by, reduction="none") * bw).sum().item()
            top = logits.topk(min(top_k, logits.shape[1]), dim=1).indices
            hits += ((top == by[:, None]).any(dim=1).float() * bw).sum().item()
    total = max(float(data[2].sum()), 1.0)
    return loss_sum / total, hits / total


def fit(model: nn.Module, train: Data, val: Data,
        cfg: TrainConfig, top_k: int, desc: str) -> tuple[list[dict[str, float]], float, float]:
    """Adam on cross-entropy; keeps the weights of the best validation epoch."""
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, float]] = []
    best_loss, best_acc, best_state, stale = float("inf"), 0.0, None, 0
    has_val = len(val[0]) > 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        steps = (len(train[0]) + cfg.batch_size - 1) // cfg.batch_size
        with tqdm(_batches(train, cfg.batch_size, shuffle), total=steps, desc=f"{desc} epoch {epoch}",
                  unit="batch", disable=None, leave=False) as bar:
            for bx, by, bw in bar:
                optimiser.zero_grad()
                loss = (nn.functional.cross_entropy(model(bx), by, reduction="none") * bw).sum() / bw.sum()
                loss.backward()
                optimiser.step()
                total += loss.item() * float(bw.sum())
                seen += float(bw.sum())
                bar.set_postfix(loss=f"{total / seen:.4f}")
        val_loss, val_acc = _evaluate(model, val if has_val else train, top_k, cfg.batch_size)
        history.append({"epoch": epoch, "train_loss": total / max(seen, 1), "val_loss": val_loss,
                        "val_top_k_accuracy": val_acc})
        log.info("%s epoch %d: train loss %.4f, val loss %.4f, val top-%d acc %.4f",
                 desc, epoch, total / max(seen, 1), val_loss, top_k, val_acc)
        if val_loss < best_loss - 1e-4:
            best_loss, best_acc, best_state, stale = val_loss, val_acc, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history, best_loss, best_acc


@dataclass
class DeepLogRuleConfig:
    rule: str = "probability"      # the rule in the checkpoint: "probability" or the paper's "top_k"
    target_fpr: float = 0.0        # share of normal validation sessions the probability threshold may flag
    calibration_split: float = 0.15  # share of sessions held out (from training and early stopping) to calibrate on
    session_keys: bool = True      # start and end keys: every key is predicted, and so is the session's end
    key_sets: bool = True          # the key-set check (deeplog_keysets); needs session keys
    key_set_support: int = 1       # training sessions a key set needs to count as normal
    threshold_margin: float = 0.3  # threshold = margin x the calibrated one: room for normal sessions unseen there


def train_deeplog(sequences_path: Path, vocab: Vocab, out_path: Path, model_cfg: DeepLogConfig,
                  cfg: TrainConfig, rule_cfg: DeepLogRuleConfig | None = None) -> TrainResult:
    """Train on normal sessions, then calibrate the probability threshold on normal sessions the model never
    saw (neither trained nor early-stopped on): the rule flags at most `target_fpr` of them."""
    from alog_edge.models import deeplog_keysets, deeplog_rule
    from alog_edge.evaluation import evaluate
    from alog_edge.models.deeplog import session_classes

    rule_cfg = rule_cfg or DeepLogRuleConfig()
    started = time.perf_counter()
    seqs = dataset.read_sequences(sequences_path)
    key_lists = [list(k) for k in seqs["keys"]]
    top = max((max(k) for k in key_lists if len(k)), default=-1)
    if top >= vocab.num_classes:
        raise AlogError(sequences_path, f"holds key {top} but the vocab has only {vocab.size} templates (+unk)")
    if model_cfg.num_classes != vocab.num_classes:
        raise AlogError(None, f"model has {model_cfg.num_classes} classes but the vocab needs {vocab.num_classes}")
    if rule_cfg.rule not in deeplog_rule.RULES:
        raise AlogError("--rule", f"must be one of {', '.join(deeplog_rule.RULES)}, not {rule_cfg.rule!r}")
    if rule_cfg.session_keys:
        classes, start_key, end_key = session_classes(vocab.num_classes)
        model_cfg = DeepLogConfig(**{**asdict(model_cfg), "num_classes": classes, "start_key": start_key,
                                     "end_key": end_key})
    seed_everything(cfg.seed, cfg.threads)
    if rule_cfg.calibration_split > 0:
        rest_idx, calib_idx = split_sessions(len(key_lists), rule_cfg.calibration_split, cfg.seed + 1)
    else:  # no calibration: the sessions in their order, as before calibration existed
        rest_idx, calib_idx = np.arange(len(key_lists)), np.zeros(0, np.int64)
    rest = [key_lists[i] for i in rest_idx]
    train_idx, val_idx = split_sessions(len(rest), cfg.val_split, cfg.seed)
    h, sk, ek = model_cfg.window, model_cfg.start_key, model_cfg.end_key
    tr = dataset.windows([rest[i] for i in train_idx], h, sk, ek)
    va = dataset.windows([rest[i] for i in val_idx], h, sk, ek)
    if len(tr.x) == 0:
        raise AlogError(sequences_path, f"no training session is longer than the window ({model_cfg.window}) "
                                        f"after holding out {cfg.val_split:g} of {len(key_lists)} sessions; "
                                        "lower --seq-len or --val-split, or give more data")
    model = DeepLog(model_cfg)
    history, best_loss, best_acc = fit(model, unique_weighted(tr.x, tr.y), unique_weighted(va.x, va.y),
                                       cfg, model_cfg.top_k, "deeplog")
    model.eval()
    seen_keys = sorted({int(k) for keys in key_lists for k in keys} - {vocab.unk_index})
    key_sets = deeplog_keysets.mine(key_lists, rule_cfg.key_set_support, {vocab.unk_index}) \
        if rule_cfg.key_sets and rule_cfg.session_keys else None
    rule = deeplog_rule.DeepLogRule(h, frozenset(seen_keys), vocab.unk_index, model_cfg.top_k, start_key=sk,
                                    end_key=ek, key_sets=key_sets)
    calib = [key_lists[i] for i in calib_idx]
    threshold, calib_fpr = 0.0, float("nan")
    if calib:
        verdicts = evaluate.deeplog_verdicts(model, calib, rule)
        threshold = rule_cfg.threshold_margin * \
            deeplog_rule.calibrate_threshold([v.min_probability for v in verdicts], rule_cfg.target_fpr)
        rule = rule.overridden(kind=rule_cfg.rule, threshold=threshold)
        calib_fpr = float(np.mean([v.session_anomalous for v in evaluate.deeplog_verdicts(model, calib, rule)]))
    elif rule_cfg.rule == deeplog_rule.RULE_PROBABILITY:
        raise AlogError(sequences_path, "too few sessions to hold some out for calibrating the probability rule; "
                                        "give more data or use --rule top_k")
    log.info("deeplog: probability threshold %.3g flags %.4f of %d calibration sessions (target %.4f)",
             threshold, calib_fpr, len(calib), rule_cfg.target_fpr)
    payload: dict[str, Any] = {
        "model_type": "deeplog",
        "model_args": asdict(model_cfg),
        "state_dict": model.state_dict(),
        "train_config": asdict(cfg),
        "rule_config": asdict(rule_cfg),
        "vocab_sha256": vocab.sha256,
        "vocab_size": vocab.size,
        "unk_index": vocab.unk_index,
        "seen_keys": seen_keys,
        **rule.meta(),
        # no calibration sessions: no measured rate (null; NaN is not JSON and the device refuses it)
        "calibration": {"sessions": len(calib), "target_fpr": rule_cfg.target_fpr, "fpr": calib_fpr if calib else None,
                        "threshold": threshold},
        "history": history,
    }
    checkpoint.save(payload, out_path)
    return TrainResult(len(history), best_loss, best_acc, len(tr.x), len(va.x),
                       time.perf_counter() - started, sum(p.numel() for p in model.parameters()),
                       threshold, calib_fpr, len(calib))


# --- MSCRED ---------------------------------------------------------------------------------

@dataclass
class MSCREDTrainResult:
    epochs_run: int
    best_val_loss: float
    train_windows: int
    val_windows: int
    broken_cell_level: float      # the one level of every cell, or the floor of the per-cell levels
    per_cell: bool
    threshold: float
    seconds: float
    parameters: int


def _fit_reconstruction(model: "MSCRED", train_m: torch.Tensor, val_m: torch.Tensor, cfg: TrainConfig
                        ) -> tuple[list[dict[str, float]], float]:
    """Adam on the last step's squared reconstruction error; keeps the best validation epoch."""
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, float]] = []
    best, best_state, stale = float("inf"), None, 0

    def loss_of(mats: torch.Tensor) -> torch.Tensor:
        return ((model.reconstruct(mats) - mats[:, -1]) ** 2).mean()

    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(train_m), generator=shuffle)
        total = 0.0
        steps = range(0, len(order), cfg.batch_size)
        with tqdm(steps, desc=f"mscred epoch {epoch}", unit="batch", disable=None, leave=False) as bar:
            for start in bar:
                batch = train_m[order[start:start + cfg.batch_size]]
                optimiser.zero_grad()
                loss = loss_of(batch)
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
                bar.set_postfix(loss=f"{total / min(start + len(batch), len(order)):.5f}")
        model.eval()
        with torch.no_grad():
            check = val_m if len(val_m) else train_m
            val_loss = sum(loss_of(check[i:i + 64]).item() * len(check[i:i + 64])
                           for i in range(0, len(check), 64)) / len(check)
        history.append({"epoch": epoch, "train_loss": total / len(order), "val_loss": val_loss})
        log.info("mscred epoch %d: train loss %.5f, val loss %.5f", epoch, total / len(order), val_loss)
        if val_loss < best * (1 - 1e-3):
            best, best_state, stale = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history, best


def _residuals(model: "MSCRED", mats: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([(model.reconstruct(mats[i:i + 64]) - mats[i:i + 64, -1]).abs()
                          for i in range(0, len(mats), 64)])


def cell_levels(residuals: torch.Tensor, margin: float, floor_quantile: float) -> tuple[torch.Tensor, float]:
    """Per-cell broken-cell levels from the residuals of normal windows [n, scales, F, F]: margin x the largest
    residual each cell had, but at least the floor_quantile quantile of all residuals (cells that were all but
    always zero in training would otherwise break on the smallest wobble). A margin above 1 also keeps every
    training window clear of its levels, where torch and onnxruntime, which differ in the last bits, could
    disagree about a cell."""
    flat = residuals.flatten().numpy()
    floor = float(np.quantile(flat, floor_quantile))
    return torch.clamp(residuals.amax(0) * margin, min=floor), floor


def train_mscred(counts_path: Path, vocab: Vocab, out_path: Path, model_cfg: "MSCREDConfig", cfg: TrainConfig, *,
                 stride: int | None = None, val_stride: int | None = None, level_margin: float = 1.05,
                 level_floor_quantile: float = 0.999, threshold_factor: float = 2.0, threshold_quantile: float = 0.95,
                 broken_cell_level: float | None = None, threshold: float | None = None) -> MSCREDTrainResult:
    """Train on normal count windows, then derive the broken-cell levels and the alarm threshold.

    Training windows start every `stride` buckets (default: the step gap, as in the authors' code); the last
    `cfg.val_split` of each series is held out and cut into windows every `val_stride` buckets (default gap/2).
    Broken-cell levels: one per cell (see `cell_levels`) from the training windows' residuals, or
    `broken_cell_level` for every cell (the paper's single level). Alarm threshold: `threshold_factor` x the
    `threshold_quantile` quantile of the validation windows' scores, or `threshold`. The paper's rule, 1.5 x the
    max, puts the threshold at the one rarest stretch of normal traffic in the validation part (on the demo, a
    dense minute of API requests on the busiest device), above most anomalies; 2 x the 95th percentile stays
    above the normal bulk without depending on that stretch.
    """
    from alog_edge.data import counts as counts_mod
    from alog_edge.models.mscred import MSCRED

    started = time.perf_counter()
    series, spec, meta = counts_mod.load(counts_path)
    if meta["feature_dim"] != vocab.num_classes or meta["vocab_sha256"] != vocab.sha256:
        raise AlogError(counts_path, f"was counted with another vocab (feature_dim {meta['feature_dim']}, "
                                     f"vocab gives {vocab.num_classes}); rebuild it with `invoke build-mscred`")
    if model_cfg.feature_dim != vocab.num_classes:
        raise AlogError(None, f"feature_dim {model_cfg.feature_dim} disagrees with the vocab ({vocab.num_classes})")
    longest = max(len(s.counts) for s in series)
    if longest < model_cfg.window_size:
        raise AlogError(counts_path, f"the longest count series has {longest} buckets, shorter than the window "
                                     f"({model_cfg.window_size} = largest scale {max(model_cfg.scales)} + "
                                     f"{model_cfg.steps - 1} steps x gap {model_cfg.gap}); use smaller buckets or scales")
    stride = stride or model_cfg.gap
    val_stride = val_stride or max(1, model_cfg.gap // 2)
    seed_everything(cfg.seed, cfg.threads)
    model = MSCRED(model_cfg)
    stacked = np.concatenate([s.counts for s in series])
    low, high = stacked.min(0), stacked.max(0)
    model.count_min.copy_(torch.from_numpy(low))
    model.count_scale.copy_(torch.from_numpy(np.where(high > low, high - low, 1.0).astype(np.float32)))
    # Temporal split: the last share of each series validates, so no validation window overlaps training.
    train_s, val_s = [], []
    for s in series:
        cut = int(len(s.counts) * (1 - cfg.val_split))
        if cfg.val_split > 0 and len(s.counts) - cut >= model_cfg.window_size and cut >= model_cfg.window_size:
            train_s.append(counts_mod.Series(s.group, s.start[:cut], s.counts[:cut]))
            val_s.append(counts_mod.Series(s.group, s.start[cut:], s.counts[cut:]))
        else:
            train_s.append(s)
    x_train, _ = counts_mod.windows(train_s, model_cfg.window_size, stride)
    x_val, _ = counts_mod.windows(val_s, model_cfg.window_size, val_stride)
    with torch.no_grad():
        train_m = model.matrices(torch.from_numpy(x_train))
        val_m = model.matrices(torch.from_numpy(x_val)) if len(x_val) else train_m[:0]
    history, best = _fit_reconstruction(model, train_m, val_m, cfg)
    model.eval()
    if broken_cell_level is not None:
        level, floor, per_cell = torch.full_like(model.broken_cell_level, broken_cell_level), broken_cell_level, False
    else:
        (level, floor), per_cell = cell_levels(_residuals(model, train_m), level_margin, level_floor_quantile), True
    model.broken_cell_level.copy_(level)
    check = val_m if len(val_m) else train_m
    val_scores = model.score(_residuals(model, check))
    alarm = threshold if threshold is not None else \
        threshold_factor * float(torch.quantile(val_scores, threshold_quantile))
    levels_info = {"per_cell": per_cell, "floor": floor, "min": float(level.min()), "median": float(level.median()),
                   "max": float(level.max())}
    if per_cell:
        levels_info.update(rule="max(margin x largest training residual of the cell, floor)", margin=level_margin,
                           floor_quantile=level_floor_quantile)
    payload: dict[str, Any] = {
        "model_type": "mscred",
        "model_args": {**asdict(model_cfg), "scales": list(model_cfg.scales), "channels": list(model_cfg.channels),
                       "score_scales": list(model_cfg.score_scales) if model_cfg.score_scales else None},
        "state_dict": model.state_dict(),
        "train_config": {**asdict(cfg), "stride": stride, "val_stride": val_stride, "level_margin": level_margin,
                         "level_floor_quantile": level_floor_quantile, "threshold_factor": threshold_factor,
                         "threshold_quantile": threshold_quantile},
        "vocab_sha256": vocab.sha256,
        "vocab_size": vocab.size,
        "feature_dim": model_cfg.feature_dim,
        "window_size": model_cfg.window_size,
        "counts": asdict(spec),
        "normalisation": {"min": low.tolist(), "scale": model.count_scale.tolist()},
        "broken_cell_level": floor,
        "broken_cell_levels": levels_info,
        "threshold": alarm,
        "val_score_max": float(val_scores.max()),
        "val_score_quantile": float(torch.quantile(val_scores, threshold_quantile)),
        "history": history,
    }
    checkpoint.save(payload, out_path)
    return MSCREDTrainResult(len(history), best, len(x_train), len(x_val), floor, per_cell, alarm,
                             time.perf_counter() - started, sum(p.numel() for p in model.parameters()))
