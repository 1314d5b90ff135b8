"""The trajectory-matching OT reward of ROT/KOI (spec §1.7).

For an agent episode o_0..o_Ta and an expert trajectory e_0..e_{Te-1} with features from the target
networks: C = 1 - cos, P = Sinkhorn(mu = uniform, nu, C, eps=0.01, 100 iterations), r_i = -s * (P C^T)_ii.
KOI's nu weights key states; ``nu = uniform`` is ROT. The scale s is fixed after the first episode so
that episode's total is -``auto_scale_factor``. With several demos the one with the highest total wins.

Note that OT ignores order: a time-permuted expert earns the same reward as the expert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from policies.common.ot import cosine_cost, euclidean_cost, sinkhorn_log


def ot_rewards(agent_feats: torch.Tensor, expert_feats: torch.Tensor, nu: np.ndarray | torch.Tensor | None = None,
               eps: float = 0.01, n_iters: int = 100, cost: str = "cosine") -> np.ndarray:
    """Unscaled per-frame rewards (length T_a + 1 for an episode with its reset frame) against one demo."""
    n, m = len(agent_feats), len(expert_feats)
    C = (cosine_cost if cost == "cosine" else euclidean_cost)(agent_feats.double(), expert_feats.double())
    mu = torch.full((n,), 1.0 / n, dtype=torch.float64)
    b = torch.full((m,), 1.0 / m, dtype=torch.float64) if nu is None else torch.as_tensor(nu, dtype=torch.float64)
    if b.numel() != m:
        raise ValueError(f"nu has {b.numel()} entries for an expert of {m} frames")
    P = sinkhorn_log(mu, b, C, eps=eps, n_iters=n_iters)
    return -(P * C).sum(dim=1).cpu().numpy()


@dataclass
class RewardResult:
    rewards: np.ndarray   # scaled, per agent frame
    demo_index: int       # which demo matched best
    raw_total: float      # unscaled total of the chosen demo


class OTRewarder:
    """Stateful OT reward: holds the scale (auto-set on the first episode) and per-demo nu."""

    def __init__(self, nus: Sequence[np.ndarray | None], eps: float = 0.01, n_iters: int = 100,
                 scale: float = 1.0, auto_scale: bool = True, auto_scale_factor: float = 10.0,
                 cost: str = "cosine"):
        if cost not in ("cosine", "euclidean"):
            raise ValueError(f"unknown OT cost {cost!r}")
        self.nus = list(nus)
        self.eps, self.n_iters, self.cost = eps, n_iters, cost
        self.scale = float(scale)
        self.auto_scale = auto_scale
        self.auto_scale_factor = auto_scale_factor
        self.scaled = not auto_scale   # becomes True once the first episode fixed the scale

    def __call__(self, agent_feats: torch.Tensor, demo_feats: Sequence[torch.Tensor]) -> RewardResult:
        if len(demo_feats) != len(self.nus):
            raise ValueError(f"{len(demo_feats)} demo feature sets for {len(self.nus)} demos")
        raws = [ot_rewards(agent_feats, ef, nu, self.eps, self.n_iters, self.cost)
                for ef, nu in zip(demo_feats, self.nus)]
        best = int(np.argmax([r.sum() for r in raws]))
        raw = raws[best]
        if not self.scaled:
            total = abs(float(raw.sum()))
            self.scale = self.auto_scale_factor / total if total > 0 else 1.0
            self.scaled = True
        return RewardResult(self.scale * raw, best, float(raw.sum()))

    def state_dict(self) -> dict:
        return {"scale": self.scale, "scaled": self.scaled}

    def load_state_dict(self, d: dict) -> None:
        self.scale, self.scaled = float(d["scale"]), bool(d["scaled"])
