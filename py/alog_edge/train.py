"""Training loops: seeded, with a validation split, early stopping and progress bars."""
from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from . import checkpoint, dataset
from .errors import AlogError
from .models.deeplog import DeepLog, DeepLogConfig
from .vocab import Vocab

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


def train_deeplog(sequences_path: Path, vocab: Vocab, out_path: Path, model_cfg: DeepLogConfig,
                  cfg: TrainConfig) -> TrainResult:
    started = time.perf_counter()
    seqs = dataset.read_sequences(sequences_path)
    key_lists = [list(k) for k in seqs["keys"]]
    top = max((max(k) for k in key_lists if len(k)), default=-1)
    if top >= vocab.num_classes:
        raise AlogError(sequences_path, f"holds key {top} but the vocab has only {vocab.size} templates (+unk)")
    if model_cfg.num_classes != vocab.num_classes:
        raise AlogError(None, f"model has {model_cfg.num_classes} classes but the vocab needs {vocab.num_classes}")
    seed_everything(cfg.seed, cfg.threads)
    train_idx, val_idx = split_sessions(len(key_lists), cfg.val_split, cfg.seed)
    tr = dataset.windows([key_lists[i] for i in train_idx], model_cfg.window)
    va = dataset.windows([key_lists[i] for i in val_idx], model_cfg.window)
    if len(tr.x) == 0:
        raise AlogError(sequences_path, f"no session is longer than the window ({model_cfg.window}); "
                                        "lower --window or give more data")
    model = DeepLog(model_cfg)
    history, best_loss, best_acc = fit(model, unique_weighted(tr.x, tr.y), unique_weighted(va.x, va.y),
                                       cfg, model_cfg.top_k, "deeplog")
    seen_keys = sorted({int(k) for keys in key_lists for k in keys} - {vocab.unk_index})
    payload: dict[str, Any] = {
        "model_type": "deeplog",
        "model_args": asdict(model_cfg),
        "state_dict": model.state_dict(),
        "train_config": asdict(cfg),
        "vocab_sha256": vocab.sha256,
        "vocab_size": vocab.size,
        "unk_index": vocab.unk_index,
        "top_k": model_cfg.top_k,
        "seen_keys": seen_keys,
        "history": history,
    }
    checkpoint.save(payload, out_path)
    return TrainResult(len(history), best_loss, best_acc, len(tr.x), len(va.x),
                       time.perf_counter() - started, sum(p.numel() for p in model.parameters()))


def load_deeplog(path: Path, vocab: Vocab | None = None) -> tuple[DeepLog, dict[str, Any]]:
    payload = checkpoint.load(path, "deeplog", vocab.sha256 if vocab is not None else None)
    try:
        model = DeepLog(DeepLogConfig(**payload["model_args"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError) as exc:
        raise AlogError(path, f"model_args do not rebuild the model ({str(exc).splitlines()[0][:120]})") from None
    model.eval()
    return model, payload
