"""The box geometry behind the experts' clearance decisions (pure numpy, no simulator)."""

import numpy as np

from sim.libero_clearance import interior_center, on_path, slide_out, slide_route

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


def _clear_along(lo, hi, pts, boxes, margin):
    """Every 5 mm of the polyline keeps ``margin`` from every box."""
    half = (hi[:2] - lo[:2]) / 2
    for a, b in zip(pts, pts[1:]):
        for t in np.linspace(0, 1, int(np.linalg.norm(b - a) / 0.005) + 2):
            c = a + t * (b - a)
            for olo, ohi in boxes:
                gap = np.maximum(olo[:2] - (c + half), (c - half) - ohi[:2])
                if np.all(gap < margin - 1e-9):
                    return False
    return True


def test_slide_route_goes_straight_when_clear_and_around_a_block_otherwise():
    plate = box([-0.07, -0.07, 0.90], [0.07, 0.07, 0.92])
    goal, half = np.array([0.0, 0.30]), np.array([0.04, 0.04])
    assert [list(np.round(w, 6)) for w in slide_route(*plate, goal, half, [])] == [[0.0, 0.30]]
    cheese = box([-0.06, 0.12, 0.90], [0.04, 0.16, 0.95])   # across the straight way, a plate's gap short
    route = slide_route(*plate, goal, half, [cheese])
    assert route is not None and len(route) >= 2          # a detour
    start = np.zeros(2)
    assert _clear_along(*plate, [start] + route, [cheese], 0.005)
    end = route[-1]
    assert np.all(np.abs(end - goal) <= 0.75 * half + 1e-9)   # in the region, by LIBERO's point test
    # the arm cannot reach round it on that side: the way goes round the other side
    left = slide_route(*plate, goal, half, [cheese], reach=(np.array([-0.3, 0.15]), 0.35))
    assert left is not None and all(np.linalg.norm(w - [-0.3, 0.15]) <= 0.35 for w in left)
    assert min(w[0] for w in left) < cheese[0][0]
    # the region itself is covered: no route, not one into the block
    lid = box([-0.10, 0.20, 0.90], [0.10, 0.40, 0.95])
    assert slide_route(*plate, goal, half, [lid]) is None


def test_slide_route_may_start_against_a_neighbour():
    plate = box([-0.07, -0.07, 0.90], [0.07, 0.07, 0.92])
    bowl = box([-0.18, -0.05, 0.90], [-0.072, 0.05, 0.96])   # 2 mm from the plate's side
    route = slide_route(*plate, np.array([0.0, 0.30]), np.array([0.04, 0.04]), [bowl])
    assert route is not None and np.linalg.norm(route[-1] - [0.0, 0.30]) < 1e-9
    here = slide_route(*plate, np.array([0.005, 0.0]), np.array([0.04, 0.04]), [bowl])  # already there
    assert len(here) == 1 and np.linalg.norm(here[0] - [0.005, 0.0]) < 0.011


def test_interior_center_is_midway_between_the_walls_not_the_drawn_region():
    region = box([-0.459, -0.061, 0.89], [-0.335, 0.063, 1.01])   # a caddy's right compartment, as drawn
    back = box([-0.462, -0.35, 0.89], [-0.453, 0.07, 1.05])        # inner face at x = -0.453
    front = box([-0.328, -0.08, 0.89], [-0.320, 0.07, 1.05])       # inner face at x = -0.328
    side = box([-0.461, 0.061, 0.89], [-0.320, 0.073, 1.05])       # inner face at y = 0.061
    other = box([-0.461, -0.080, 0.89], [-0.320, -0.068, 1.05])    # inner face at y = -0.068
    beside = box([-0.393, -0.21, 0.89], [-0.385, -0.075, 0.99])    # a partition behind that wall
    c = interior_center(*region, [back, front, side, other, beside])
    np.testing.assert_allclose(c, [(-0.453 - 0.328) / 2, (-0.068 + 0.061) / 2], atol=1e-9)
    assert abs(c[0] - (-0.397)) > 0.006                            # 6.5 mm from the region's centre
    # without the side walls the nearest wall that way is the partition
    np.testing.assert_allclose(interior_center(*region, [back, front, side, beside])[1], (-0.075 + 0.061) / 2)
    # no walls: the region's own centre
    np.testing.assert_allclose(interior_center(*region, []), [-0.397, 0.001], atol=1e-9)
