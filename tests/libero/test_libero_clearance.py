"""The box geometry behind the experts' clearance decisions (pure numpy, no simulator)."""

import numpy as np

from sim.libero_clearance import on_path, slide_out

BOWL = (np.array([-0.05, -0.05, 0.90]), np.array([0.05, 0.05, 0.95]))


def box(lo, hi):
    return np.array(lo, float), np.array(hi, float)


def test_slide_out_takes_the_shortest_way_from_under_an_overhang_and_breaks_ties_toward_the_target():
    drawer = box([-0.20, 0.02, 1.05], [0.20, 0.40, 1.12])      # overhangs the bowl's back 3 cm
    shift = slide_out(*BOWL, [drawer], toward=np.array([1.0, 0.0, 0.0]))
    assert shift is not None and shift[1] < 0 and abs(shift[2]) == 0
    lo, hi = BOWL[0] + shift, BOWL[1] + shift
    assert hi[1] + 0.015 <= drawer[0][1] + 1e-9                # clear of it, with the margin
    assert np.linalg.norm(shift) <= 0.07                       # 3 cm overlap + 1.5 cm margin, 1 cm steps
    # nothing can be cleared within 12 cm: None, not a shift that still collides
    roof = box([-0.5, -0.5, 1.0], [0.5, 0.5, 1.1])
    assert slide_out(*BOWL, [roof], toward=np.array([1.0, 0.0, 0.0])) is None


def test_on_path_sees_what_lies_between_start_and_target_not_only_at_them():
    caddy = box([0.20, -0.05, 0.90], [0.30, 0.05, 1.05])
    assert on_path(*BOWL, np.array([0.50, 0.0]), *caddy, 0.0)     # straight through it
    assert not on_path(*BOWL, np.array([0.0, 0.50]), *caddy, 0.0)  # the other way
