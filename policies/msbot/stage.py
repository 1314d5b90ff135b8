"""MS-Bot's stage comprehension: soft-boundary gate targets, the gate penalty and the stage module.

The gate sees the *detached* state token, so the gate penalty trains the gate only and never the
encoders; the stage tokens E get gradient only through the action loss (via z* = βz + (1−β)·g·E).
E starts at zero and is set to the per-stage mean state token after the warm-up epoch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn


def soft_boundary_weights(stages: Sequence[int], n_stages: int, before: int, after: int) -> np.ndarray:
    """Gate-penalty weights w (T, S): 1 except the sample's own stage, and both stages of a transition
    within [i − before, i + after) of it (transitions into stage 0, e.g. the episode start, are skipped)."""
    s = np.asarray(stages, np.int64)
    if s.size and (s.min() < 0 or s.max() >= n_stages):
        raise ValueError(f"stage labels must lie in [0, {n_stages}), got range [{s.min()}, {s.max()}]")
    T = len(s)
    w = np.ones((T, n_stages), np.float32)
    w[np.arange(T), s] = 0.0
    for i in range(1, T):
        if s[i] != s[i - 1] and s[i] != 0:
            lo, hi = max(0, i - before), min(T, i + after)
            w[lo:hi, s[i]] = 0.0
            w[lo:hi, s[i - 1]] = 0.0
    return w


def gate_penalty(gate: torch.Tensor, weights: torch.Tensor, lam: float) -> torch.Tensor:
    """λ · mean over batch and stages of g ⊙ w (the reference code's reduction)."""
    return lam * (gate * weights).mean()


class StageModule(nn.Module):
    """Gate g = softmax(Linear(z.detach())), stage-injected query z* = β z + (1 − β) g E."""

    def __init__(self, dim: int, n_stages: int, beta: float = 0.5):
        super().__init__()
        self.beta = beta
        self.gate = nn.Linear(dim, n_stages)
        self.tokens = nn.Parameter(torch.zeros(n_stages, dim))
        self.register_buffer("ready", torch.zeros((), dtype=torch.bool))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z (B, d) -> (z*, g) once the stage tokens are initialised; (z, None) during warm-up."""
        if not bool(self.ready):
            return z, None
        g = torch.softmax(self.gate(z.detach()), dim=-1)
        return self.beta * z + (1.0 - self.beta) * g @ self.tokens, g

    @torch.no_grad()
    def init_tokens(self, z: torch.Tensor, stages: torch.Tensor) -> None:
        """E[s] <- mean of z over samples of stage s (stages without samples keep zeros); then ready."""
        for s in range(self.tokens.shape[0]):
            m = stages == s
            if bool(m.any()):
                self.tokens[s].copy_(z[m].mean(0))
        self.ready.fill_(True)
