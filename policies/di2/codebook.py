"""Depth-Aware Codebook (specs/koi_di2.md §2.4): cosine-lookup VQ with CVQ-VAE dead-code restarts.

Forward returns the straight-through value ``z + sg(z_q - z)`` (equal to the chosen code, gradient
identity w.r.t. ``z``), the VQ loss ``beta * |sg(z_q) - z|² + |z_q - sg(z)|²`` and usage statistics.
When ``update`` is on (stage 2 only) the EMA usage ``p`` is refreshed and every code is pulled towards
an anchor drawn from the batch with weight ``alpha = exp(-(p K 10)/(1-decay) - 1e-3)``: ~1 for unused
codes (re-initialised onto data), ~0 for used ones. Stage 3 and inference never update the codebook.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def reinit_alpha(usage: torch.Tensor, n_codes: int, decay: float) -> torch.Tensor:
    """CVQ-VAE restart weight per code from its EMA usage (1 for dead codes, 0 for busy ones)."""
    return torch.exp(-(usage * n_codes * 10.0) / (1.0 - decay) - 1e-3)


def straight_through(z: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Forward value exactly ``z_q``, backward identity to ``z``, no gradient to ``z_q``.

    Same estimator as the reference ``z + sg(z_q - z)``, written so that the forward value is
    bit-exact (``z - sg(z)`` is exactly zero, whereas ``z + (z_q - z)`` rounds).
    """
    return z_q.detach() + (z - z.detach())


class DepthAwareCodebook(nn.Module):
    def __init__(self, n_codes: int, dim: int, beta: float = 0.25, decay: float = 0.99):
        super().__init__()
        self.n_codes, self.dim, self.beta, self.decay = n_codes, dim, beta, decay
        self.embedding = nn.Parameter(torch.empty(n_codes, dim).uniform_(-1.0 / n_codes, 1.0 / n_codes))
        self.register_buffer("usage", torch.zeros(n_codes))  # EMA of each code's share of lookups

    def lookup(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest code by cosine similarity; returns (indices (N,), similarities (N, K))."""
        sim = F.normalize(flat, dim=-1) @ F.normalize(self.embedding, dim=-1).t()
        return sim.argmax(dim=-1), sim

    def forward(self, z: torch.Tensor, update: bool = False) -> tuple[torch.Tensor, torch.Tensor, dict]:
        shape = z.shape
        flat = z.reshape(-1, self.dim)
        idx, sim = self.lookup(flat.detach())
        z_q = self.embedding[idx]  # the raw (unnormalised) code, as in the reference
        loss = self.beta * F.mse_loss(flat, z_q.detach()) + F.mse_loss(z_q, flat.detach())
        z_st = straight_through(flat, z_q)
        onehot = F.one_hot(idx, self.n_codes).float()
        pbar = onehot.mean(0)
        perplexity = torch.exp(-(pbar * torch.log(pbar + 1e-10)).sum())
        n_reinit = 0
        if update:
            n_reinit = self._restart_dead_codes(flat.detach(), sim, pbar)
        info = {"indices": idx.view(shape[:-1]), "perplexity": float(perplexity),
                "active": int((pbar > 0).sum()), "reinit": n_reinit}
        return z_st.view(shape), loss, info

    @torch.no_grad()
    def _restart_dead_codes(self, flat: torch.Tensor, sim: torch.Tensor, pbar: torch.Tensor) -> int:
        self.usage.mul_(self.decay).add_((1.0 - self.decay) * pbar)
        # 'probrandom' anchors: for code k, sample a batch vector with probability softmax_n cos(z_n, e_k)
        probs = torch.softmax(sim.t(), dim=-1)              # (K, N)
        pick = torch.multinomial(probs, 1).squeeze(1)        # (K,)
        anchors = flat[pick]
        alpha = reinit_alpha(self.usage, self.n_codes, self.decay).unsqueeze(1)
        self.embedding.data.mul_(1.0 - alpha).add_(alpha * anchors)
        return int((alpha.squeeze(1) > 0.5).sum())

    @torch.no_grad()
    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Inference: the nearest code of each vector, no statistics, no update."""
        idx, _ = self.lookup(z.reshape(-1, self.dim))
        return self.embedding[idx].view(z.shape)

    @staticmethod
    def perplexity_of(indices: torch.Tensor, n_codes: int) -> float:
        p = torch.bincount(indices.flatten(), minlength=n_codes).float()
        p = p / p.sum()
        return math.exp(float(-(p * torch.log(p + 1e-10)).sum()))
