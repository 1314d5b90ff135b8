"""DecisionNCE's objective (spec §1.3): a Bradley-Terry preference over in-batch instructions that
telescopes to the segment's start and end frames, i.e. a symmetric InfoNCE over a reward matrix.

``reverse_negatives`` (off by default, not in the paper): the faithful loss only ranks instructions
and other tasks' segments, so it never compares a segment with its own reversal. Any component
that every segment shares (e.g. "the arm moves away from home") can therefore align with the shared
part of the text embeddings with either sign at no cost, and the sign of r(o_s -> o_e) on *unseen*
instructions is left to chance (see ``tests/decisionnce/test_dnce_losses.py``). The option adds the
reversed segment o_e -> o_s, scored under the segment's own instruction, as one more candidate in
that instruction's softmax over trajectories (the BT preference "forward beats backward under l").
"""

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


def symmetric_ce(R: torch.Tensor, reverse: torch.Tensor | None = None) -> torch.Tensor:
    """½[CE(R, diag) + CE(Rᵀ, diag)]: row = softmax over instructions, column = over trajectories.

    ``reverse`` (B,): reward of each reversed segment under its own instruction, appended as an
    extra trajectory candidate to that instruction's column softmax.
    """
    labels = torch.arange(R.shape[0], device=R.device)
    cols = R.t() if reverse is None else torch.cat([R.t(), reverse[:, None]], dim=1)
    return 0.5 * (F.cross_entropy(R, labels) + F.cross_entropy(cols, labels))


def decisionnce_loss(v: torch.Tensor, u: torch.Tensor, variant: str = "T", scale: float = 100.0,
                     reverse_negatives: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    R = reward_matrix(v, u, variant, scale)
    rev = reward_matrix(v.flip(1), u, variant, scale).diagonal()   # o_e -> o_s under its own instruction
    loss = symmetric_ce(R, rev if reverse_negatives else None)
    with torch.no_grad():
        labels = torch.arange(R.shape[0], device=R.device)
        acc = 0.5 * ((R.argmax(1) == labels).float().mean() + (R.argmax(0) == labels).float().mean())
        direction = (R.diagonal() > rev).float().mean()
    return loss, {"loss": loss.item(), "acc": acc.item(), "direction": direction.item()}
