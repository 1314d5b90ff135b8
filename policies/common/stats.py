"""Paired statistics for seed-matched comparisons (method A vs method B, one run each per seed)."""

from __future__ import annotations

import numpy as np


def paired_sign_test(diffs) -> float:
    """Exact one-sided sign-flip permutation p-value of mean(diffs) > 0 (paired seeds; ties count)."""
    d = np.asarray(diffs, float)
    if d.size == 0 or d.size > 20:
        raise ValueError(f"paired_sign_test takes 1-20 paired differences, got {d.size}")
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * d.size)).reshape(d.size, -1).T   # all 2^n sign patterns
    return float(np.mean((signs * np.abs(d)).mean(1) >= d.mean() - 1e-12))


def paired_record(a: dict, b: dict, tol: float = 1e-9) -> dict | None:
    """A minus B over the seeds both have ({seed: value} each): the differences, wins/ties/losses
    and the one-sided p-value of A > B. None when no seed is shared."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    d = [float(a[s] - b[s]) for s in seeds]
    wins, ties = sum(x > tol for x in d), sum(abs(x) <= tol for x in d)
    return {"seeds": seeds, "diffs": d, "mean": float(np.mean(d)), "wins": wins, "ties": ties,
            "losses": len(d) - wins - ties, "p": paired_sign_test(d)}
