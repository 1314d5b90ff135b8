"""Axis-aligned box geometry for the LIBERO experts' clearance decisions: does a box overlap another in
xy, here or on its way somewhere; where to slide it to get clear. Boxes are (lo, hi) world
corners as ``Scene.geom_boxes`` gives them."""

from __future__ import annotations

import heapq

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


def _clear_leg(lo, hi, a, b, boxes, margin, skip: float = 0.0) -> bool:
    """The box centred at xy ``a`` slid to ``b`` (same size as (lo, hi)) meets none of ``boxes`` after the
    first ``skip`` metres (where it may still touch what it stands beside at the start)."""
    half = (hi[:2] - lo[:2]) / 2
    length = float(np.linalg.norm(b - a))
    for t in np.linspace(0, 1, max(2, int(length / 0.01) + 1)):
        if t * length < skip:
            continue
        c = a + t * (b - a)
        blo, bhi = np.r_[c - half, lo[2]], np.r_[c + half, hi[2]]
        if any(xy_overlap(blo, bhi, olo, ohi, margin) for olo, ohi in boxes):
            return False
    return True


def slide_route(lo: np.ndarray, hi: np.ndarray, goal: np.ndarray, half: np.ndarray,
                boxes: list[tuple[np.ndarray, np.ndarray]], margin: float = 0.005, step: float = 0.01,
                reach: tuple[np.ndarray, float] | None = None) -> list[np.ndarray] | None:
    """Waypoints (xy of the box centre) to slide the box (lo, hi) into the region ``goal`` ± ``half``
    without touching ``boxes``: the shortest way on a ``step`` grid of centre positions (8-connected),
    then shortcut wherever a straight slide is clear. The target moves off the region's centre, by at
    most 3/4 of ``half``, only as far as the way needs. ``reach`` = (xy, radius) bounds the centres (the
    arm's reach). None when no way exists."""
    start = (lo[:2] + hi[:2]) / 2
    size = (hi[:2] - lo[:2]) / 2
    lo_g, hi_g = np.minimum(start, goal) - 0.25 - goal, np.maximum(start, goal) + 0.25 - goal
    axes = [goal[k] + step * np.arange(np.floor(lo_g[k] / step), np.ceil(hi_g[k] / step) + 1) for k in (0, 1)]
    C = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    free = np.ones(C.shape[:2], bool)
    for olo, ohi in boxes:
        free &= ~np.all((C - size - margin <= ohi[:2]) & (olo[:2] <= C + size + margin), -1)
    if reach is not None:
        free &= np.linalg.norm(C - reach[0][:2], axis=-1) <= reach[1]
    free |= np.linalg.norm(C - start, axis=-1) <= 1.25 * step  # it may touch its neighbours where it starts
    in_goal = free & np.all(np.abs(C - goal) <= half * 3 / 4 + 1e-9, -1)
    if not in_goal.any():
        return None
    s0 = np.unravel_index(np.argmin(np.linalg.norm(C - start, axis=-1)), free.shape)
    dist = np.full(free.shape, np.inf)
    prev: dict[tuple, tuple] = {}
    dist[s0] = 0.0
    heap = [(0.0, s0)]
    while heap:
        d, (i, j) = heapq.heappop(heap)
        if d > dist[i, j]:
            continue
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                n = (i + di, j + dj)
                if (di or dj) and 0 <= n[0] < free.shape[0] and 0 <= n[1] < free.shape[1] and free[n]:
                    nd = d + step * np.hypot(di, dj)
                    if nd < dist[n]:
                        dist[n], prev[n] = nd, (i, j)
                        heapq.heappush(heap, (nd, n))
    cost = np.where(in_goal, dist + 2.0 * np.linalg.norm(C - goal, axis=-1), np.inf)
    end = np.unravel_index(np.argmin(cost), cost.shape)
    if not np.isfinite(cost[end]):
        return None
    cells = [end]
    while cells[-1] != s0:
        cells.append(prev[cells[-1]])
    path = [C[c] for c in reversed(cells)]
    path[0] = start
    out, k = [], 0
    while k < len(path) - 1:  # shortcut: the farthest point a straight slide reaches
        skip = 1.25 * step if k == 0 else 0.0
        nxt = next((m for m in range(len(path) - 1, k, -1)
                    if _clear_leg(lo, hi, path[k], path[m], boxes, margin, skip)), k + 1)
        out.append(path[nxt])
        k = nxt
    return out or [C[end]]  # already in the region: stay


def interior_center(lo: np.ndarray, hi: np.ndarray, walls: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The xy centre of the free space a container region (lo, hi) opens into: per horizontal axis, midway
    between the inner faces of the nearest walls on either side that overlap the region along the other
    axis, or the region's own bound where no wall stands. A region drawn off-centre in its compartment
    (a caddy's, by 6 mm) would otherwise drop a snug object onto a wall's top edge."""
    c = (lo[:2] + hi[:2]) / 2
    out = c.copy()
    for k in (0, 1):
        o = 1 - k
        side = [b for b in walls if b[0][o] < hi[o] and b[1][o] > lo[o]]
        below = [b[1][k] for b in side if b[1][k] <= c[k]]
        above = [b[0][k] for b in side if b[0][k] >= c[k]]
        out[k] = (max(below, default=lo[k]) + min(above, default=hi[k])) / 2
    return out
