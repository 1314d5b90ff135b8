"""Language-conditioned rewards from a DecisionNCE encoder (spec §1.6).

``potential``: per-frame cos(φ(o_t), ψ(l)) (the released ``get_reward``). Transition rewards consistent
with training: P r_t = cos(φ(o_{t+1}), ψ) − cos(φ(o_t), ψ) (potential-based shaping, telescopes);
T r_t = cos(φ(o_{t+1}) − φ(o_t), ψ).

``centred_text`` (not in the paper): ψ/‖ψ‖ minus the mean ψ̄ of a set of (training) instructions. The
loss leaves the part every instruction shares free, and on LIBERO it ends up scoring forward motion as
backward, which an unseen instruction inherits (docs/results/decisionnce.md, session 11).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from policies.decisionnce.encoder import DualEncoder


def segment_reward(v_start: torch.Tensor, v_end: torch.Tensor, u: torch.Tensor, variant: str) -> torch.Tensor:
    """Reward of going from ``v_start`` to ``v_end`` (…, D) under text features ``u`` (…, D)."""
    un = F.normalize(u, dim=-1)
    if variant == "P":
        return (F.normalize(v_end, dim=-1) * un).sum(-1) - (F.normalize(v_start, dim=-1) * un).sum(-1)
    if variant == "T":
        d = v_end - v_start
        return ((d / (d.norm(dim=-1, keepdim=True) + 1e-6)) * un).sum(-1)
    raise ValueError(f"variant must be 'P' or 'T', got {variant!r}")


def transition_rewards(feats: torch.Tensor, u: torch.Tensor, variant: str) -> torch.Tensor:
    """(T, D) frame features along a trajectory -> (T-1,) rewards r_t for o_t -> o_{t+1}."""
    return segment_reward(feats[:-1], feats[1:], u.expand(len(feats) - 1, -1), variant)


def potential(feats: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """(T, D) -> (T,) cos(φ(o_t), ψ(l))."""
    return F.cosine_similarity(feats, u.expand_as(feats), dim=-1)


def progress(feats: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """(T, D) -> (T,) the -T reward of the segment o_0 -> o_t (0 at t = 0)."""
    out = segment_reward(feats[:1].expand_as(feats), feats, u.expand_as(feats), "T")
    out[0] = 0.0
    return out


def text_baseline(u: torch.Tensor) -> torch.Tensor:
    """(N, D) text features of N instructions (e.g. the pretraining ones) -> (D,) mean of the normalised ones."""
    if u.dim() != 2 or len(u) == 0:
        raise ValueError(f"text_baseline needs (N >= 1, D) text features of at least one instruction, got {tuple(u.shape)}")
    return F.normalize(u, dim=-1).mean(0)


def centred_text(u: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """ψ/‖ψ‖ − ψ̄: the instruction without the part the baseline instructions share."""
    return F.normalize(u, dim=-1) - baseline


def ema(x: np.ndarray, span: int = 5) -> np.ndarray:
    """pandas ``ewm(span).mean()`` (adjust=True), as the authors' visualisation smooths rewards."""
    a = 2.0 / (span + 1)
    out, num, den = np.empty(len(x)), 0.0, 0.0
    for i, v in enumerate(np.asarray(x, np.float64)):
        num = v + (1 - a) * num
        den = 1 + (1 - a) * den
        out[i] = num / den
    return out


@torch.no_grad()
def embed_frames(encoder: DualEncoder, frames: np.ndarray | torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """uint8 (T, H, W, 3) frames -> (T, D) features in eval mode."""
    was = encoder.training
    encoder.eval()
    x = torch.as_tensor(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    out = torch.cat([encoder.encode_image(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    encoder.train(was)
    return out


class RewardModel:
    """callable(frames uint8 (T,H,W,3), instruction) -> per-step rewards (T-1,) for RL or analysis.

    ``baseline_instructions`` (not in the paper): score under ``centred_text`` relative to these.
    """

    def __init__(self, encoder: DualEncoder, variant: str = "T", baseline_instructions: Sequence[str] = ()):
        self.encoder, self.variant = encoder.eval(), variant
        self.baseline = None
        if baseline_instructions:
            with torch.no_grad():
                self.baseline = text_baseline(encoder.encode_text(list(baseline_instructions)))

    @torch.no_grad()
    def __call__(self, frames: np.ndarray, instruction: str) -> np.ndarray:
        feats = embed_frames(self.encoder, frames)
        u = self.encoder.encode_text([instruction])[0]
        if self.baseline is not None:
            u = centred_text(u, self.baseline)
        return transition_rewards(feats, u, self.variant).cpu().numpy()

    @torch.no_grad()
    def potentials(self, frames: np.ndarray, instructions: Sequence[str]) -> np.ndarray:
        feats = embed_frames(self.encoder, frames)
        u = self.encoder.encode_text(list(instructions))
        return (F.normalize(feats, dim=-1) @ F.normalize(u, dim=-1).t()).cpu().numpy()
