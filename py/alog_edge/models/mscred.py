"""MSCRED (Zhang et al., AAAI 2019) on template-count series.

The module takes the raw per-bucket counts of a window and computes everything
inside: min-max normalisation with training statistics, signature matrices at
several scales for a short step window, a 4-level convolutional encoder, one
attention-based ConvLSTM (with learned peepholes) per level, a deconvolutional
decoder with skip connections, and the anomaly score: the number of cells of
the last step's matrices whose absolute residual exceeds their broken-cell level
(on every scale, or on the scales `score_scales` names).

The broken-cell level is a buffer of one value per cell ([scales, F, F]), learned
from normal data after training (see `train.train_mscred`); a single value for
every cell, as in the paper, is the special case of a constant buffer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class MSCREDConfig:
    feature_dim: int                              # vocab size N plus the unknown column
    scales: tuple[int, ...] = (10, 30, 60)        # segment lengths w of the signature matrices
    steps: int = 5                                # step window: matrices fed to the ConvLSTMs
    gap: int = 10                                 # buckets between two steps
    channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    attention_rescale: float = 5.0                # chi in the paper's attention
    score_scales: tuple[int, ...] | None = None   # segment lengths whose broken cells count (None: every scale)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.score_scales or ()) - set(self.scales))
        if unknown or (self.score_scales is not None and not self.score_scales):
            raise ValueError(f"score_scales {self.score_scales} must be a non-empty subset of scales {self.scales}")

    @property
    def score_index(self) -> list[int]:
        """Positions (in `scales`) of the scales the anomaly score counts."""
        return [i for i, w in enumerate(self.scales) if self.score_scales is None or w in self.score_scales]

    @property
    def window_size(self) -> int:
        return max(self.scales) + (self.steps - 1) * self.gap

    def sizes(self) -> tuple[int, int, int, int]:
        """Spatial size of each encoder level (the paper's 30 -> 15 -> 8 -> 4)."""
        s1 = self.feature_dim
        s2 = math.ceil(s1 / 2)
        s3 = math.ceil(s2 / 2)
        return s1, s2, s3, math.ceil(s3 / 2)


def signature_matrices(z: torch.Tensor, scales: tuple[int, ...], steps: int, gap: int) -> torch.Tensor:
    """[B, W, F] normalised series -> [B, steps, len(scales), F, F]: M_ij = sum_d z_i(t-d) z_j(t-d) / w."""
    length = z.shape[1]
    out = []
    for s in range(steps):
        end = length - (steps - 1 - s) * gap
        per_scale = []
        for w in scales:
            seg = z[:, end - w:end, :]
            per_scale.append(torch.matmul(seg.transpose(1, 2), seg) / w)
        out.append(torch.stack(per_scale, 1))
    return torch.stack(out, 1)


class ConvLSTMCell(nn.Module):
    """ConvLSTM (Shi et al. 2015) with learned Hadamard peepholes on the cell state."""

    def __init__(self, channels: int, size: int, kernel: int = 3) -> None:
        super().__init__()
        self.channels = channels
        self.gates = nn.Conv2d(2 * channels, 4 * channels, kernel, padding=kernel // 2)
        self.peep_i = nn.Parameter(torch.zeros(channels, size, size))
        self.peep_f = nn.Parameter(torch.zeros(channels, size, size))
        self.peep_o = nn.Parameter(torch.zeros(channels, size, size))
        nn.init.normal_(self.peep_i, std=0.01)
        nn.init.normal_(self.peep_f, std=0.01)
        nn.init.normal_(self.peep_o, std=0.01)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gi, gf, gc, go = torch.chunk(self.gates(torch.cat([x, h], 1)), 4, dim=1)
        i = torch.sigmoid(gi + self.peep_i * c)
        f = torch.sigmoid(gf + self.peep_f * c)
        c = f * c + i * torch.tanh(gc)
        o = torch.sigmoid(go + self.peep_o * c)
        return o * torch.tanh(c), c


class AttentionConvLSTM(nn.Module):
    """Runs the cell over the step window; the output is the attention-weighted sum of the hidden states."""

    def __init__(self, channels: int, size: int, rescale: float) -> None:
        super().__init__()
        self.cell = ConvLSTMCell(channels, size)
        self.rescale = rescale

    def forward(self, seq: torch.Tensor) -> torch.Tensor:  # [B, S, C, H, W] -> [B, C, H, W]
        h = torch.zeros_like(seq[:, 0])
        c = torch.zeros_like(seq[:, 0])
        states = []
        for t in range(seq.shape[1]):
            h, c = self.cell(seq[:, t], h, c)
            states.append(h)
        stacked = torch.stack(states, 1)                                   # [B, S, C, H, W]
        scores = (stacked * h.unsqueeze(1)).flatten(2).sum(-1) / self.rescale  # [B, S]
        alpha = torch.softmax(scores, dim=1)
        return (stacked * alpha[:, :, None, None, None]).sum(1)


class MSCRED(nn.Module):
    def __init__(self, config: MSCREDConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3, c4 = config.channels
        s1, s2, s3, s4 = config.sizes()
        n = len(config.scales)
        self.conv1 = nn.Conv2d(n, c1, 3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(c2, c3, 2, stride=2)
        self.conv4 = nn.Conv2d(c3, c4, 2, stride=2)
        self.lstm1 = AttentionConvLSTM(c1, s1, config.attention_rescale)
        self.lstm2 = AttentionConvLSTM(c2, s2, config.attention_rescale)
        self.lstm3 = AttentionConvLSTM(c3, s3, config.attention_rescale)
        self.lstm4 = AttentionConvLSTM(c4, s4, config.attention_rescale)
        self.deconv4 = nn.ConvTranspose2d(c4, c3, 2, stride=2)
        self.deconv3 = nn.ConvTranspose2d(2 * c3, c2, 2, stride=2)
        self.deconv2 = nn.ConvTranspose2d(2 * c2, c1, 3, stride=2, padding=1, output_padding=1)
        self.deconv1 = nn.ConvTranspose2d(2 * c1, n, 3, stride=1, padding=1)
        # Decision parameters, learned from normal data after training (buffers: exported with the graph).
        self.register_buffer("count_min", torch.zeros(config.feature_dim))
        self.register_buffer("count_scale", torch.ones(config.feature_dim))
        self.register_buffer("broken_cell_level", torch.full((n, config.feature_dim, config.feature_dim), 0.1))

    @staticmethod
    def _pad_even(x: torch.Tensor) -> torch.Tensor:
        """Pad odd sizes by one on the right/bottom so a 2x2 stride-2 conv gives ceil(size / 2)."""
        return F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))

    def matrices(self, input_features: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        z = (input_features[:, 0, -cfg.window_size:, :] - self.count_min) / self.count_scale
        return signature_matrices(z, cfg.scales, cfg.steps, cfg.gap)

    def reconstruct(self, mats: torch.Tensor) -> torch.Tensor:
        """[B, S, n, F, F] signature matrices -> [B, n, F, F] reconstruction of the last step."""
        b, s = mats.shape[:2]
        s1, s2, s3, _ = self.config.sizes()
        flat = mats.flatten(0, 1)
        e1 = F.selu(self.conv1(flat))
        e2 = F.selu(self.conv2(e1))
        e3 = F.selu(self.conv3(self._pad_even(e2)))
        e4 = F.selu(self.conv4(self._pad_even(e3)))
        h1, h2, h3, h4 = (lstm(e.reshape(b, s, *e.shape[1:]))
                          for lstm, e in ((self.lstm1, e1), (self.lstm2, e2), (self.lstm3, e3), (self.lstm4, e4)))
        d4 = F.selu(self.deconv4(h4))[:, :, :s3, :s3]
        d3 = F.selu(self.deconv3(torch.cat([d4, h3], 1)))[:, :, :s2, :s2]
        d2 = F.selu(self.deconv2(torch.cat([d3, h2], 1)))[:, :, :s1, :s1]
        return self.deconv1(torch.cat([d2, h1], 1))

    def forward(self, input_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, 1, window_size, feature_dim] raw counts -> (reconstruction [B, n, F, F], anomaly_score [B])."""
        mats = self.matrices(input_features)
        recon = self.reconstruct(mats)
        return recon, self.score((mats[:, -1] - recon).abs())

    def score(self, residual: torch.Tensor, level: float | None = None) -> torch.Tensor:
        """[B, n, F, F] absolute residuals -> [B] number of broken cells on the scored scales
        (`level`: one broken-cell level for every cell instead of the trained ones)."""
        broken = (residual > (self.broken_cell_level if level is None else level)).to(torch.float32)
        index = self.config.score_index
        if len(index) < len(self.config.scales):
            broken = broken[:, index[0]:index[-1] + 1] if index == list(range(index[0], index[-1] + 1)) \
                else broken[:, index]
        return broken.flatten(1).sum(1)
