"""FiLM-conditioned ResNet (BasicBlock) image encoder, goal-conditioned after every residual block.

Each FiLM is MLP(cond → 4C, ReLU → 2C) giving (γ, β); output h·(1+γ)+β. The output Linear is
zero-initialised (identity FiLM at init), the hidden Linear Kaiming-normal. ``layers=(3,4,6,3)``,
``width=64`` is ResNet34 (the paper's, there ImageNet-initialised); (2,2,2,2) ResNet18; the CPU
default is narrower. Global average pooling gives ``8·width`` features per image.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from policies.common.resnet import BasicBlock


class FiLM(nn.Module):
    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cond_dim, 4 * channels), nn.ReLU(), nn.Linear(4 * channels, 2 * channels))
        nn.init.kaiming_normal_(self.net[0].weight)
        nn.init.zeros_(self.net[0].bias)
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.net(cond).chunk(2, dim=-1)
        return h * (1 + gamma[..., None, None]) + beta[..., None, None]


class FiLMResNet(nn.Module):
    def __init__(self, cond_dim: int, layers: Sequence[int] = (3, 4, 6, 3), width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, films = [], []
        inplanes = width
        for i, n in enumerate(layers):
            planes = width * 2 ** i
            for j in range(n):
                blocks.append(BasicBlock(inplanes, planes, 2 if (j == 0 and i > 0) else 1))
                films.append(FiLM(cond_dim, planes))
                inplanes = planes
        self.blocks = nn.ModuleList(blocks)
        self.films = nn.ModuleList(films)
        self.out_dim = inplanes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) normalised pixels, cond (B, cond_dim) -> (B, out_dim)."""
        h = self.stem(x)
        for blk, film in zip(self.blocks, self.films):
            h = film(blk(h), cond)
        return h.mean(dim=(-2, -1))
