"""Closing the text/image goal gap without training (Robo-MUTUAL, spec §2.4-2.5).

Collapse: subtract each modality's mean goal embedding (fitted on data other than the policy's), and
optionally Delete the k coordinates where the two means differ most. Corrupt (training only): replace
the goal by a unit vector at an exact random cosine s ~ U[lo, lo + decay] to it, so the policy
tolerates the residual cross-modal mismatch. At evaluation the goal is just normalised.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policystack.errors import ConfigError

MODALITIES = ("text", "image")


def corrupt(c: torch.Tensor, s: torch.Tensor | None = None, lo: float = 0.2, decay: float = 0.8,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """c̃ = s·ĉ + √(1−s²)·r⊥ with r⊥ a random unit vector orthogonal to ĉ: ‖c̃‖ = 1, cos(c̃, c) = s exactly."""
    u = F.normalize(c, dim=-1)
    if s is None:
        s = lo + decay * torch.rand(c.shape[:-1], device=c.device, generator=generator)
    s = s.to(c.dtype).unsqueeze(-1)
    r = torch.randn(c.shape, device=c.device, generator=generator, dtype=c.dtype)
    r = r - (r * u).sum(-1, keepdim=True) * u
    r = F.normalize(r, dim=-1)
    return s * u + (1 - s * s).clamp(min=0).sqrt() * r


class ModalityGap(nn.Module):
    """Buffers μ_text, μ_image (D) and the kept-dimension mask; part of the policy's state dict."""

    def __init__(self, dim: int, delete_k: int = 0):
        super().__init__()
        if not 0 <= delete_k < dim:
            raise ConfigError(f"delete_k={delete_k} must be in [0, {dim})")
        self.dim, self.delete_k = dim, delete_k
        self.register_buffer("mu_text", torch.zeros(dim))
        self.register_buffer("mu_image", torch.zeros(dim))
        self.register_buffer("keep", torch.ones(dim, dtype=torch.bool))

    @property
    def out_dim(self) -> int:
        return self.dim - self.delete_k

    @torch.no_grad()
    def fit(self, text_goals: torch.Tensor, image_goals: torch.Tensor) -> "ModalityGap":
        """Means of each modality's goals; Delete drops the top-k |μ_image − μ_text| coordinates."""
        self.mu_text.copy_(text_goals.float().mean(0))
        self.mu_image.copy_(image_goals.float().mean(0))
        self.keep.fill_(True)
        if self.delete_k:
            top = (self.mu_image - self.mu_text).abs().topk(self.delete_k).indices
            self.keep[top] = False
        return self

    def mean(self, modality: str) -> torch.Tensor:
        if modality not in MODALITIES:
            raise ConfigError(f"goal modality must be one of {MODALITIES}, got {modality!r}")
        return self.mu_text if modality == "text" else self.mu_image

    def collapse(self, c: torch.Tensor, modality: str, subtract_mean: bool = True) -> torch.Tensor:
        if subtract_mean:
            c = c - self.mean(modality)
        return c[..., self.keep]


# ----- diagnostics used by tests and the experiment ----------------------------------------------
def paired_cosine(text: torch.Tensor, image: torch.Tensor) -> float:
    return float(F.cosine_similarity(text, image, dim=-1).mean())


def modality_probe_accuracy(text: torch.Tensor, image: torch.Tensor, steps: int = 300, seed: int = 0) -> float:
    """Held-out accuracy of a logistic-regression probe telling text from image goals (0.5 = no gap)."""
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.cat([text, image]).float(), dim=-1)
    y = torch.cat([torch.zeros(len(text)), torch.ones(len(image))])
    perm = torch.randperm(len(x), generator=g)
    n_tr = len(x) // 2
    tr, te = perm[:n_tr], perm[n_tr:]
    lin = nn.Linear(x.shape[1], 1)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(lin(x[tr]).squeeze(-1), y[tr])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(((lin(x[te]).squeeze(-1) > 0).float() == y[te]).float().mean())


def cross_modal_retrieval(text: torch.Tensor, text_labels: np.ndarray, image: torch.Tensor,
                          image_labels: np.ndarray) -> float:
    """Fraction of image goals whose nearest text goal (cosine) has the same task."""
    sim = F.normalize(image.float(), dim=-1) @ F.normalize(text.float(), dim=-1).t()
    return float((np.asarray(text_labels)[sim.argmax(1).numpy()] == np.asarray(image_labels)).mean())
