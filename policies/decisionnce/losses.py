"""DecisionNCE's objective (spec §1.3): a Bradley-Terry preference over in-batch instructions that
telescopes to the segment's start and end frames, i.e. a symmetric InfoNCE over a reward matrix."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reward_matrix(v: torch.Tensor, u: torch.Tensor, variant: str = "T", scale: float = 100.0) -> torch.Tensor:
    """R[i, j] = reward of trajectory i (frames sorted in time) under instruction j.

    v: (B, F, D) raw frame features; u: (B, D) raw text features.
    P: κ·Σ_k [cos(v_late_k, u_j) − cos(v_early_k, u_j)] (first half vs second half of the frames).
    T: κ·Σ_k cos(v_{k+1} − v_k, u_j), the difference divided by (‖·‖ + 1e-6) as in the release.
    """
    if v.dim() != 3 or u.dim() != 2 or v.shape[-1] != u.shape[-1]:
        raise ValueError(f"expected v (B, F, D) and u (B', D), got {tuple(v.shape)} and {tuple(u.shape)}")
    un = F.normalize(u, dim=-1)
    if variant == "P":
        nf = v.shape[1]
        if nf % 2:
            raise ValueError("variant P needs an even number of frames")
        sims = torch.einsum("bfd,jd->bfj", F.normalize(v, dim=-1), un)
        r = (sims[:, nf // 2:] - sims[:, :nf // 2]).sum(1)
    elif variant == "T":
        d = v[:, 1:] - v[:, :-1]
        d = d / (d.norm(dim=-1, keepdim=True) + 1e-6)
        r = torch.einsum("bkd,jd->bj", d, un)
    else:
        raise ValueError(f"variant must be 'P' or 'T', got {variant!r}")
    return scale * r


def symmetric_ce(R: torch.Tensor) -> torch.Tensor:
    """½[CE(R, diag) + CE(Rᵀ, diag)]: row = softmax over instructions, column = over trajectories."""
    labels = torch.arange(R.shape[0], device=R.device)
    return 0.5 * (F.cross_entropy(R, labels) + F.cross_entropy(R.t(), labels))


def decisionnce_loss(v: torch.Tensor, u: torch.Tensor, variant: str = "T", scale: float = 100.0
                     ) -> tuple[torch.Tensor, dict[str, float]]:
    R = reward_matrix(v, u, variant, scale)
    loss = symmetric_ce(R)
    with torch.no_grad():
        labels = torch.arange(R.shape[0], device=R.device)
        acc = 0.5 * ((R.argmax(1) == labels).float().mean() + (R.argmax(0) == labels).float().mean())
    return loss, {"loss": loss.item(), "acc": acc.item()}
