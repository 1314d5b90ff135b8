"""DDPM action-chunk head pieces (BearRobot / Robo-MUTUAL, spec §2.6-2.7).

Discrete VP schedule β_t = 1 − exp(−β_min/T − ½(β_max−β_min)(2t−1)/T²), t = 1..T; ε-prediction with
loss Σ_dims (ε̂ − ε)² averaged over the batch; ancestral sampling clipped to [−1, 1] at every step.
``MLPResNet`` is the decoder (Linear → 3 × [Dropout, LayerNorm, Linear 4×, Mish, Linear] + skip →
Mish → Linear) and ``TimeEmbedding`` the learned-Fourier time features (W ~ N(0, 0.2²), 16 freqs).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn


def vp_betas(n_steps: int = 25, beta_min: float = 0.1, beta_max: float = 10.0) -> torch.Tensor:
    t = torch.arange(1, n_steps + 1, dtype=torch.float64)
    return (1 - torch.exp(-beta_min / n_steps - 0.5 * (beta_max - beta_min) * (2 * t - 1) / n_steps ** 2)).float()


def ensemble_weights(n: int, coeff: float = 0.25) -> np.ndarray:
    """ACT temporal-ensemble weights over n predictions of one step, i = 0 the oldest."""
    w = np.exp(-coeff * np.arange(n))
    return w / w.sum()


class FourierFeatures(nn.Module):
    """Learned Fourier features of a scalar: [cos 2πtWᵀ, sin 2πtWᵀ], W (out/2, 1) ~ N(0, std²)."""

    def __init__(self, out_dim: int = 32, std: float = 0.2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim // 2, 1) * std)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * t.float().view(-1, 1) @ self.weight.t()
        return torch.cat([torch.cos(f), torch.sin(f)], dim=-1)


class TimeEmbedding(nn.Module):
    def __init__(self, fourier_dim: int = 32, out_dim: int = 256):
        super().__init__()
        self.fourier = FourierFeatures(fourier_dim)
        self.mlp = nn.Sequential(nn.Linear(fourier_dim, out_dim), nn.Mish(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.fourier(t))


class MLPResBlock(nn.Module):
    def __init__(self, dim: int, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout), nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.Mish(),
                                 nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class MLPResNet(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, n_blocks: int = 3, dropout: float = 0.1):
        super().__init__()
        self.inp = nn.Linear(in_dim, hidden)
        self.blocks = nn.Sequential(*[MLPResBlock(hidden, dropout) for _ in range(n_blocks)])
        self.out = nn.Sequential(nn.Mish(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.inp(x)))


class DDPM(nn.Module):
    """Schedule buffers + training loss + ancestral sampler for x in [−1, 1]^d.

    ``eps_model(x_t, t)`` predicts the noise; t holds integer steps 0..T−1 (0 = least noise).
    """

    def __init__(self, n_steps: int = 25, beta_min: float = 0.1, beta_max: float = 10.0, clip: float = 1.0):
        super().__init__()
        betas = vp_betas(n_steps, beta_min, beta_max)
        alphas = 1 - betas
        self.n_steps, self.clip = n_steps, clip
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas", alphas, persistent=False)
        self.register_buffer("alpha_bars", torch.cumprod(alphas, 0), persistent=False)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bars[t].view(-1, *([1] * (x0.dim() - 1)))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def loss(self, eps_model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        t = torch.randint(0, self.n_steps, (x0.shape[0],), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        eps = eps_model(self.q_sample(x0, t, noise), t)
        return (eps - noise).pow(2).flatten(1).sum(1).mean()

    @torch.no_grad()
    def p_sample(self, eps_model, x: torch.Tensor, t: int, generator: torch.Generator | None = None) -> torch.Tensor:
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = eps_model(x, tt)
        b, a, ab = self.betas[t], self.alphas[t], self.alpha_bars[t]
        x = (x - b / (1 - ab).sqrt() * eps) / a.sqrt()
        if t > 0:
            x = x + b.sqrt() * torch.randn(x.shape, device=x.device, generator=generator)
        return x.clamp(-self.clip, self.clip)

    @torch.no_grad()
    def sample(self, eps_model, shape: tuple[int, ...], device: torch.device | str = "cpu",
               generator: torch.Generator | None = None) -> torch.Tensor:
        x = torch.randn(shape, device=device, generator=generator)
        for t in reversed(range(self.n_steps)):
            x = self.p_sample(eps_model, x, t, generator)
        return x
