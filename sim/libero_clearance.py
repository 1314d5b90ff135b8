"""Axis-aligned box geometry for the LIBERO experts' clearance decisions: does a box overlap another in
xy, here or on its way somewhere; where to slide it to get clear. Boxes are (lo, hi) world
corners as ``Scene.geom_boxes`` gives them."""

from __future__ import annotations

import numpy as np


def xy_overlap(lo1, hi1, lo2, hi2, margin: float = 0.0) -> bool:
    return bool(np.all(lo1[:2] - margin <= hi2[:2]) and np.all(lo2[:2] <= hi1[:2] + margin))


def xy_distance(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    d = np.maximum(np.maximum(lo[:2] - p[:2], 0), p[:2] - hi[:2])
    return float(np.linalg.norm(d))


def on_path(lo: np.ndarray, hi: np.ndarray, xy: np.ndarray, olo: np.ndarray, ohi: np.ndarray,
            margin: float) -> bool:
    """Whether the box (lo, hi), slid in xy from where it is until its centre is at ``xy``, overlaps (olo, ohi)."""
    shift = np.append(np.asarray(xy) - (lo[:2] + hi[:2]) / 2, 0.0)
    return any(xy_overlap(lo + t * shift, hi + t * shift, olo, ohi, margin) for t in np.linspace(0, 1, 11))


def slide_out(lo: np.ndarray, hi: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray]],
              toward: np.ndarray, margin: float = 0.015) -> np.ndarray | None:
    """The shortest horizontal shift (up to 12 cm, in 1 cm steps, of 16 directions; ties go ``toward``)
    that takes the box (lo, hi) clear of every box in ``boxes`` in xy; None when none does."""
    u0 = toward / (np.linalg.norm(toward) + 1e-9)
    dirs = [np.array([np.cos(a), np.sin(a), 0.0]) for a in np.linspace(0, 2 * np.pi, 16, endpoint=False)]
    dirs.sort(key=lambda d: -float(d @ u0))
    for r in np.arange(0.01, 0.125, 0.01):
        for d in dirs:
            if not any(xy_overlap(lo + r * d, hi + r * d, blo, bhi, margin) for blo, bhi in boxes):
                return r * d
    return None
