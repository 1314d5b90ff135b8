"""Where a LIBERO expert puts an object down: ``place(scene) -> (xy of the object's centre, surface z)``
for ``pick_place_plan``, plus the finger axis a slot needs and a compartment's floor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from sim.libero_clearance import interior_center, xy_overlap

if TYPE_CHECKING:  # pragma: no cover
    from sim.libero_experts import Scene


def place_on_object(target: str) -> Callable[[Scene], tuple[np.ndarray, float]]:
    def f(s: Scene):
        lo, hi = s.aabb(target)
        c = (lo + hi) / 2
        return c[:2], hi[2]
    return f


def place_in_container(target: str, drop: float = 0.0) -> Callable[[Scene], tuple[np.ndarray, float]]:
    """Release above the container's rim (the object drops in)."""
    def f(s: Scene):
        lo, hi = s.aabb(target)
        c = (lo + hi) / 2
        return c[:2], hi[2] + drop
    return f


def place_in_region(site: str, parent: str, interior: bool = False) -> Callable[[Scene], tuple[np.ndarray, float]]:
    """Release above the parent's rim over the region site's centre (a basket, one compartment of a caddy);
    ``interior``: over the middle of the space the region opens into, between the parent's walls around
    it (boxes rising 3 cm above its floor): a caddy's right compartment is drawn 6 mm off its middle."""
    def f(s: Scene):
        p, size = s.site(site)
        if not interior:
            return p[:2], s.aabb(parent)[1][2]
        lo, hi = p - size, p + size
        walls = [b for b in s.geom_boxes(parent) if b[1][2] > lo[2] + 0.03 and xy_overlap(*b, lo, hi, 0.02)]
        return interior_center(lo, hi, walls), s.aabb(parent)[1][2]
    return f


def region_floor(site: str) -> Callable[[Scene], float]:
    """The bottom of a region site's box (a compartment's floor)."""
    def f(s: Scene):
        p, size = s.site(site)
        return float(p[2] - size[2])
    return f


def region_axis(site: str, obj: str) -> Callable[[Scene], np.ndarray | None]:
    """The region's narrow horizontal axis, to turn the held object's thin side along it, when the object
    would not fit across the region otherwise (a book into a caddy's slot); None when it fits anyway."""
    def f(s: Scene):
        size = s.site(site)[1]
        if s.horizontal_axes(obj)[2] <= 2 * min(size[0], size[1]):
            return None
        return np.array([1.0, 0.0, 0.0]) if size[0] <= size[1] else np.array([0.0, 1.0, 0.0])
    return f


def place_on_region(site: str, parent: str, obj: str | None = None, slot: tuple[int, int] = (0, 1)
                    ) -> Callable[[Scene], tuple[np.ndarray, float]]:
    """The region site's centre; the surface is the parent's highest collision point inside the region.

    ``slot = (i, k)``: the region is shared by k objects of the goal (two moka pots on one stove); the
    i-th goes to the i-th of k places spread along the horizontal axis on which ``obj`` is narrower.
    """
    def f(s: Scene):
        p, size = s.site(site)
        surf = _surface_under(s, parent, p, max(min(size[0], size[1]), 0.02))
        i, k = slot
        if k > 1 and obj is not None:
            lo, hi = s.aabb(obj)
            ax = int(np.argmin(hi[:2] - lo[:2]))
            reach = max(size[ax] - 0.02, 0.0)
            p = p.copy()
            p[ax] += np.linspace(-reach, reach, k)[i]
        return p[:2], surf
    return f


def place_on_site(site: str) -> Callable[[Scene], tuple[np.ndarray, float]]:
    """A region of the table: its centre, on the table top (the site sits on the surface)."""
    def f(s: Scene):
        p, size = s.site(site)
        return p[:2], float(p[2] + size[2])
    return f


def _surface_under(s: Scene, parent: str, p: np.ndarray, r: float) -> float:
    """Top z of the parent's collision geoms whose boxes cover the point p (within r)."""
    top = -np.inf
    for g in s._geoms(parent):
        R = s.d.geom_xmat[g].reshape(3, 3)
        c = s.d.geom_xpos[g] + R @ s.m.geom_aabb[g, :3]
        e = np.abs(R) @ s.m.geom_aabb[g, 3:]
        if np.all(np.abs(p[:2] - c[:2]) <= e[:2] + 0.25 * r):
            top = max(top, c[2] + e[2])
    return float(top if np.isfinite(top) else p[2])
