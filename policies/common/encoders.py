"""Small encoders sized for CPU training."""

from __future__ import annotations

import torch
from torch import nn


class ConvEncoder(nn.Module):
    """DrQ-style conv trunk: 4 conv layers (first stride 2) -> flatten -> linear -> LayerNorm -> out_dim."""

    def __init__(self, in_channels: int, height: int, width: int, out_dim: int = 64, channels: int = 32):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride=2), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2 if min(height, width) > 64 else 1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=1), nn.ReLU(),
        )
        with torch.no_grad():
            n = self.trunk(torch.zeros(1, in_channels, height, width)).numel()
        self.head = nn.Sequential(nn.Linear(n, out_dim), nn.LayerNorm(out_dim))
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x).flatten(1))


class MLP(nn.Sequential):
    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int = 2, act=nn.ReLU,
                 layer_norm: bool = False):
        mods: list[nn.Module] = []
        d = in_dim
        for _ in range(layers - 1):
            mods += [nn.Linear(d, hidden)] + ([nn.LayerNorm(hidden)] if layer_norm else []) + [act()]
            d = hidden
        mods.append(nn.Linear(d, out_dim))
        super().__init__(*mods)


class Conv1dEncoder(nn.Module):
    """Raw-waveform / taxel-sequence encoder: (B, C, N) -> (B, out_dim)."""

    def __init__(self, in_channels: int, out_dim: int = 64, channels: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(in_channels, channels, 9, stride=4, padding=4), nn.ReLU(),
            nn.Conv1d(channels, channels, 9, stride=4, padding=4), nn.ReLU(),
            nn.Conv1d(channels, channels, 9, stride=4, padding=4), nn.ReLU(),
            nn.AdaptiveAvgPool1d(4), nn.Flatten(), nn.Linear(4 * channels, out_dim), nn.LayerNorm(out_dim))
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
