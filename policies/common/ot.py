"""Entropic optimal transport (log-domain Sinkhorn) and the trajectory-matching costs used by OT rewards.

Log-domain iterations are used because the rewards run at a small regulariser (eps = 0.01 on a cosine
cost in [0, 2]), where the plain kernel ``exp(-C / eps)`` spans 1e-87..1 and the scaling vectors of the
standard algorithm under/overflow on long trajectories. Like POT's ``ot.sinkhorn`` (which ROT and KOI
call), each iteration updates the column potential first and the row potential last, so after a fixed
number of iterations the row marginals are exact and the column marginals approximate.
"""

from __future__ import annotations

import torch


def cosine_cost(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """C_ij = 1 - cos(x_i, y_j) for x (N, D), y (M, D)."""
    xn = x / x.norm(dim=-1, keepdim=True).clamp_min(eps)
    yn = y / y.norm(dim=-1, keepdim=True).clamp_min(eps)
    return 1.0 - xn @ yn.T


def euclidean_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x, y)


def sinkhorn_log(a: torch.Tensor, b: torch.Tensor, cost: torch.Tensor, eps: float = 0.01,
                 n_iters: int = 100) -> torch.Tensor:
    """Entropic OT plan P (N, M) between histograms ``a`` (N,) and ``b`` (M,) under ``cost`` (N, M).

    Solves min <P, C> - eps * H(P) s.t. P 1 = a, P^T 1 = b with ``n_iters`` alternating log-domain
    updates of the dual potentials f (rows) and g (columns). Computed in float64.
    """
    if cost.ndim != 2 or cost.shape != (a.numel(), b.numel()):
        raise ValueError(f"cost must be ({a.numel()}, {b.numel()}), got {tuple(cost.shape)}")
    if eps <= 0 or n_iters < 1:
        raise ValueError(f"need eps > 0 and n_iters >= 1, got eps={eps}, n_iters={n_iters}")
    a = a.detach().double().flatten()
    b = b.detach().double().flatten()
    if (a < 0).any() or (b < 0).any():
        raise ValueError("marginals must be non-negative")
    C = cost.detach().double()
    log_a = torch.log(a.clamp_min(1e-300))
    log_b = torch.log(b.clamp_min(1e-300))
    f = torch.zeros_like(a)
    g = torch.zeros_like(b)
    for _ in range(n_iters):
        # g_j = eps * (log b_j - LSE_i((f_i - C_ij) / eps)); then f likewise over j
        g = eps * (log_b - torch.logsumexp((f[:, None] - C) / eps, dim=0))
        f = eps * (log_a - torch.logsumexp((g[None, :] - C) / eps, dim=1))
    return torch.exp((f[:, None] + g[None, :] - C) / eps)
