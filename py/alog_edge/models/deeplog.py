"""DeepLog (Du et al., CCS 2017): an LSTM that predicts the next log key from the previous h."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class DeepLogConfig:
    num_classes: int          # vocab size N plus the unknown key (plus start and end keys when set)
    window: int = 10          # h: keys of history
    top_k: int = 9            # g: a key is normal when among the top g predictions
    embedding_dim: int = 32
    hidden_size: int = 64
    num_layers: int = 2
    start_key: int | None = None  # pads a session's first window, so its first key is predicted too
    end_key: int | None = None    # the key predicted where a session ends


def session_classes(vocab_classes: int) -> tuple[int, int, int]:
    """Classes, start key and end key of a model with session keys: the two keys after the unknown one."""
    return vocab_classes + 2, vocab_classes, vocab_classes + 1


class DeepLog(nn.Module):
    def __init__(self, config: DeepLogConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.num_classes, config.embedding_dim)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_size, config.num_layers, batch_first=True)
        self.head = nn.Linear(config.hidden_size, config.num_classes)

    def forward(self, input_sequence: torch.Tensor) -> torch.Tensor:
        """[batch, seq_len] int64 keys -> [batch, num_classes] logits for the key after the last one."""
        out, _ = self.lstm(self.embedding(input_sequence))
        return self.head(out[:, -1, :])
