"""Articulated-object primitives for the LIBERO experts: pull a drawer open or push it shut, turn a
stove knob on or off.

Both read the articulation from the simulator (the joint, its axis and range, the handle or knob
geometry), so they apply to any cabinet/stove of the same kind, not to one scene's coordinates.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from sim.libero_clearance import slide_route
from sim.libero_experts import Phase, Scene

log = logging.getLogger(__name__)
REACH = 0.78  # horizontal distance from the arm's base within which the hand works on the table


def _body_geoms(s: Scene, body: int) -> list[int]:
    collide = (s.m.geom_contype != 0) | (s.m.geom_conaffinity != 0)
    return [g for g in np.flatnonzero(s.m.geom_bodyid == body) if collide[g]]


def _geom_box(s: Scene, g: int) -> tuple[np.ndarray, np.ndarray]:
    R = s.d.geom_xmat[g].reshape(3, 3)
    c = s.d.geom_xpos[g] + R @ s.m.geom_aabb[g, :3]
    e = np.abs(R) @ s.m.geom_aabb[g, 3:]
    return c - e, c + e


def _joint(s: Scene, name: str) -> tuple[int, np.ndarray]:
    j = s.m.joint(name).id
    return j, s.d.xaxis[j].copy()


# ----- drawers ---------------------------------------------------------------------------------
def _drawer(s: Scene, region: str) -> tuple[str, float, np.ndarray, tuple[float, float], np.ndarray]:
    """(joint name, sign, opening direction, (open by LIBERO's test, fully open) in sign * qpos, centre of
    the handle bar's outer face): the drawer's front moves along the opening direction as sign * qpos grows."""
    site = s.rs.object_sites_dict[region]
    jname = site.joints[0]
    parent = s.rs.get_object(site.parent_name)
    j, axis = _joint(s, jname)
    open_ranges = parent.object_properties["articulation"]["default_open_ranges"]
    sign = -1.0 if max(open_ranges) < 0 else 1.0
    open_dir = sign * axis
    boxes = [_geom_box(s, g) for g in _body_geoms(s, s.m.jnt_bodyid[j])]

    def reach(b):  # how far a box sticks out along the opening direction
        return float(max(b[0] @ open_dir, b[1] @ open_dir))

    far = max(reach(b) for b in boxes)
    handle = [b for b in boxes if reach(b) > far - 0.012]   # the bar and its posts
    bar_out = (np.min([b[0] for b in handle], 0) + np.max([b[1] for b in handle], 0)) / 2
    bar_out = bar_out + open_dir * (far - bar_out @ open_dir)
    ranges = np.abs(open_ranges)
    return jname, sign, open_dir, (float(ranges.min()) + 0.002, float(ranges.max()) - 0.003), bar_out


def open_drawer_plan(region: str, travel: float = 0.16) -> Callable[[Scene, dict], list[Phase]]:
    """Grasp the drawer's handle bar from the front (hand horizontal, fingers closing vertically) and pull.
    Nothing to do when the drawer is fully open, or open and its bar too low to grasp (see below)."""

    def build(s: Scene, mem: dict) -> list[Phase]:
        jname, sign, open_dir, (opened, full), bar_out = _drawer(s, region)
        q = s.joint_qpos(jname) * sign
        # Fully open already (a second stage on the same drawer): nothing to do. Open by LIBERO's test only:
        # pull on, for more room for what goes in, unless the bar is too low for the horizontal hand (a
        # bottom drawer: the palm meets the table and would push the drawer in instead).
        low = bar_out[2] - s.aabb(s.rs.object_sites_dict[region].parent_name)[0][2] < 0.07
        if q > full or (q > opened and low):
            return []
        approach = -open_dir                      # fingers point into the drawer front
        grasp = bar_out - open_dir * 0.008        # pads around the bar
        pull_to = grasp + open_dir * (travel + 0.01)
        up = np.array([0.0, 0.0, 1.0])
        pre = bar_out + open_dir * 0.10
        return [
            Phase("rise", lambda: np.array([s.eef[0], s.eef[1], max(s.eef[2], pre[2] + 0.05)]), -1, tol=0.02,
                  max_steps=20),
            Phase("orient", lambda: pre + np.array([0, 0, 0.05]), -1, lambda: up, tol=0.015, max_steps=60,
                  approach=approach),
            Phase("pre", lambda: pre, -1, lambda: up, tol=0.01, max_steps=40, approach=approach),
            Phase("reach", lambda: grasp, -1, lambda: up, tol=0.006, max_steps=40, speed=0.5, approach=approach),
            Phase("close", lambda: grasp, +1, lambda: up, min_steps=9, max_steps=9, approach=approach),
            Phase("pull", lambda: pull_to, +1, lambda: up, tol=0.01, max_steps=80, speed=0.4, approach=approach,
                  done=lambda: s.joint_qpos(jname) * sign > full),
            Phase("release", None, -1, min_steps=6, max_steps=6, approach=approach),
            Phase("back", lambda: s.eef + open_dir * 0.05, -1, tol=0.02, max_steps=10, approach=approach),
        ]

    return build


def close_drawer_plan(region: str) -> Callable[[Scene, dict], list[Phase]]:
    """Lower the closed hand in front of the handle bar, fingers pointing down and 45 degrees into the
    drawer, and push the bar in until the drawer is shut (nothing to do if it is). Pointing down reaches
    a bottom drawer's low bar; the tilt keeps the forearm off the cabinet above it."""

    def build(s: Scene, mem: dict) -> list[Phase]:
        jname, sign, open_dir, _, bar_out = _drawer(s, region)
        opening = s.joint_qpos(jname) * sign
        if opening < 0.003:
            return []
        front = bar_out + open_dir * 0.035          # fingers just in front of the bar's face
        push_to = bar_out - open_dir * (opening + 0.02)
        push_to[2] = front[2]
        side = np.cross(open_dir, [0.0, 0.0, 1.0])  # fingers side by side across the bar
        tilt = (np.array([0.0, 0.0, -1.0]) - open_dir) / np.sqrt(2)
        return [
            Phase("above", lambda: front + [0, 0, 0.10], +1, lambda: side, tol=0.015, max_steps=60, approach=tilt),
            Phase("lower", lambda: front, +1, lambda: side, tol=0.008, max_steps=40, speed=0.5, approach=tilt),
            Phase("push", lambda: push_to, +1, lambda: side, tol=0.008, max_steps=80, speed=0.5, approach=tilt,
                  done=lambda: s.joint_qpos(jname) * sign < 0.001),
            Phase("back", lambda: s.eef + open_dir * 0.06 + [0, 0, 0.04], +1, tol=0.02, max_steps=15, approach=tilt),
        ]

    return build


# ----- stove knobs -----------------------------------------------------------------------------
def turn_knob_plan(name: str, on: bool = True) -> Callable[[Scene, dict], list[Phase]]:
    """Grasp the knob's lever near its tip and carry it along its arc into the 'on' range (``on``) or
    back to 'off'. Nothing to do when the knob is already there."""

    def build(s: Scene, mem: dict) -> list[Phase]:
        obj = s.rs.get_object(name)
        jname = obj.joints[0] if obj.joints else f"{name}_button"
        j, axis = _joint(s, jname)
        art = obj.object_properties["articulation"]
        on_ranges = art["default_turnon_ranges"]
        on_dir = 1.0 if min(on_ranges) >= 0 else -1.0      # the joint moves this way to turn on
        direction = on_dir if on else -on_dir
        if on:
            target_q = min(on_ranges) + 0.3 if on_dir > 0 else max(on_ranges) - 0.3
        else:   # LIBERO's own test: strictly past the 'off' range's inner end
            edge = max(art["default_turnoff_ranges"]) if on_dir > 0 else min(art["default_turnoff_ranges"])
            target_q = edge - on_dir * 0.002
        if direction * s.joint_qpos(jname) >= direction * target_q:
            return []
        body = s.m.jnt_bodyid[j]
        center = s.d.xanchor[j].copy()
        boxes = [_geom_box(s, g) for g in _body_geoms(s, body)]
        # the lever: the collision box whose farthest corner is farthest from the axis
        def radius(b):
            lo, hi = b
            corners = np.array([[x, y] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])])
            return np.linalg.norm(corners - center[:2], axis=1).max()
        tall = [b for b in boxes if b[1][2] - b[0][2] > 0.02] or boxes
        lever = max(tall, key=radius)
        lo, hi = lever
        c = (lo + hi) / 2
        corners = np.array([[x, y] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])])
        far = corners[np.argmax(np.linalg.norm(corners - center[:2], axis=1))]
        arm = np.array([far[0] - center[0], far[1] - center[1], 0.0])
        r = np.linalg.norm(arm)
        arm /= max(r, 1e-9)
        r = max(0.75 * r, r - 0.02)               # grasp a bit inside the tip
        tangent = direction * np.cross(axis, arm)  # the tip's motion when turning
        tangent[2] = 0
        tangent /= np.linalg.norm(tangent)
        q0 = s.joint_qpos(jname)
        zsign = 1.0 if axis[2] >= 0 else -1.0

        def angle() -> float:  # the lever's rotation about world z since the plan started
            return zsign * (s.joint_qpos(jname) - q0)

        def rot(theta: float) -> np.ndarray:
            ca, sa = np.cos(theta), np.sin(theta)
            return np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])

        def grip_point(theta: float) -> np.ndarray:
            return np.array([center[0], center[1], zg]) + r * (rot(theta) @ arm)

        zg = c[2] + 0.004                                   # pads around the lever's middle height
        step = direction * zsign * 0.8                      # lead the lever along its arc

        def turned() -> bool:
            return direction * s.joint_qpos(jname) >= direction * target_q

        def across() -> np.ndarray:  # fingers close across the lever, turning with it
            return rot(angle()) @ tangent

        g0 = grip_point(0.0)
        return [
            Phase("above", lambda: g0 + [0, 0, 0.08], -1, lambda: tangent, tol=0.005, max_steps=60, ori_tol=0.05),
            Phase("descend", lambda: g0, -1, lambda: tangent, tol=0.005, max_steps=40, speed=0.35),
            Phase("close", lambda: g0, +1, lambda: tangent, min_steps=9, max_steps=9),
            Phase("turn", lambda: grip_point(angle() + step), +1, across, tol=0.003, max_steps=90, speed=1.0,
                  done=turned, stall=False, check=turned),
            Phase("release", None, -1, min_steps=6, max_steps=6),
            Phase("lift", lambda: s.eef + np.array([0, 0, 0.06]), -1, tol=0.01, max_steps=15),
        ]

    return build


# ----- hinged doors ------------------------------------------------------------------------------
def close_door_plan(name: str) -> Callable[[Scene, dict], list[Phase]]:
    """Push a hinged door (a microwave's) shut: the closed fingers, pointing down, go against the door's
    outer face three quarters of the way to its free edge and sweep around the hinge, a little ahead of
    the door, until LIBERO's own ``is_close`` holds. Nothing to do when it is shut already."""

    def build(s: Scene, mem: dict) -> list[Phase]:
        obj = s.rs.get_object(name)
        jname = obj.joints[0]
        j, axis = _joint(s, jname)
        art = obj.object_properties["articulation"]
        if obj.is_close(s.joint_qpos(jname)):
            return []
        direction = 1.0 if max(art["default_close_ranges"]) > max(art["default_open_ranges"]) else -1.0
        hinge = s.d.xanchor[j].copy()
        boxes = [_geom_box(s, g) for g in _body_geoms(s, s.m.jnt_bodyid[j])]
        slab = max(boxes, key=lambda b: float(np.prod(b[1] - b[0])))   # the door leaf
        corners = np.array([[x, y] for b in boxes for x in (b[0][0], b[1][0]) for y in (b[0][1], b[1][1])])
        dist = np.linalg.norm(corners - hinge[:2], axis=1)
        u0 = np.r_[corners[np.argmax(dist)] - hinge[:2], 0.0]
        u0 /= np.linalg.norm(u0)
        radius = 0.75 * float(dist.max())           # where the fingers push, from the hinge
        thick = float(np.min(slab[1][:2] - slab[0][:2]))
        z = float(slab[0][2] + slab[1][2]) / 2
        zsign = 1.0 if axis[2] >= 0 else -1.0
        q0 = s.joint_qpos(jname)

        def contact(extra: float) -> np.ndarray:
            """Where the fingers push with the door turned ``extra`` rad further shut than it is now."""
            theta = zsign * (s.joint_qpos(jname) - q0) + zsign * direction * extra
            ca, sa = np.cos(theta), np.sin(theta)
            u = np.array([ca * u0[0] - sa * u0[1], sa * u0[0] + ca * u0[1], 0.0])
            t = zsign * direction * np.cross([0.0, 0.0, 1.0], u)   # the door's motion when closing
            return np.r_[hinge[:2], z] + radius * u - t * (thick / 2 + 0.02)

        def shut() -> bool:
            return bool(obj.is_close(s.joint_qpos(jname)))

        start = contact(0.0)
        return [  # fingers side by side along the door (u0)
            Phase("above", lambda: start + [0, 0, 0.12], +1, lambda: u0, tol=0.015, max_steps=70),
            Phase("lower", lambda: start, +1, lambda: u0, tol=0.01, max_steps=40, speed=0.6),
            Phase("sweep", lambda: contact(0.35), +1, None, tol=0.004, max_steps=140, speed=0.7, stall=False,
                  done=shut, check=shut),
            Phase("back", lambda: s.eef + [0, 0, 0.08], +1, tol=0.02, max_steps=15),
        ]

    return build


# ----- pushing -----------------------------------------------------------------------------------
def push_into_region_plan(obj: str, region: str) -> Callable[[Scene, dict], list[Phase]]:
    """Slide a wide, low object (a plate) into a table region: lower the closed fingers into it, pressed
    onto its floor so they cannot climb the sloped rim, and push the rim from inside. Behind a plate
    there may be no room for the hand (a cabinet 3 cm away), and its rim slips out of a grasp. The way
    goes around other objects (``slide_route``); each step the hand moves by the object's remaining
    way to the next waypoint, so the push is steered by where the object really is."""

    def build(s: Scene, mem: dict) -> list[Phase]:
        goal, size = s.site(region)
        lo, hi = s.aabb(obj)
        body = s.body(obj)
        base = s.d.xpos[s.m.body("robot0_base").id]

        def pos_xy() -> np.ndarray:  # LIBERO's region test uses the body position
            return s.d.xpos[body][:2].copy()

        off = pos_xy() - (lo[:2] + hi[:2]) / 2
        route = slide_route(lo, hi, goal[:2], size[:2], s.obstacles(exclude=(obj,)), reach=(base, REACH))
        if route is None:
            log.debug("push %s: no clear way into %s; pushing straight", obj, region)
            route = [goal[:2] - off]
        ways = [w + off for w in route]
        z_in = float(lo[2]) + 0.003
        width = float(min(hi[:2] - lo[:2]))
        back = 0.15 * width                        # the fingers go in this far behind the centre
        pts = [pos_xy()] + ways
        dirs = [(b - a) / max(np.linalg.norm(b - a), 1e-6) for a, b in zip(pts, pts[1:])]

        def escaped() -> bool:
            return bool(np.linalg.norm(s.eef[:2] - pos_xy()) > 0.45 * width)

        def heading(k: int) -> np.ndarray:
            v = ways[k] - pos_xy()
            return v / max(np.linalg.norm(v), 1e-6)

        def leg(k: int, over: float) -> list[Phase]:
            """Fingers in behind the centre for this leg's heading (above the rim first), then push until
            the object is at waypoint k (turning on the rim itself would climb it)."""
            tol = 0.01 if k == len(ways) - 1 else 0.015

            def entry(dz: float):
                return lambda: np.r_[pos_xy() - heading(k) * back, z_in + dz]

            def push_to() -> np.ndarray:
                return np.r_[s.eef[:2] + np.clip(ways[k] - pos_xy(), -0.05, 0.05), z_in]

            def side() -> np.ndarray:  # fingertips side by side across the push
                v = heading(k)
                return np.r_[-v[1], v[0], 0.0]

            return [
                Phase(f"over {k}", entry(over), +1, side, tol=0.015, max_steps=60),
                Phase(f"lower {k}", entry(0.0), +1, side, tol=0.008, max_steps=40, speed=0.7),
                Phase(f"push {k}", push_to, +1, side, tol=0.002, max_steps=150, speed=0.5, stall=False,
                      done=lambda: escaped() or bool(np.linalg.norm(ways[k] - pos_xy()) < tol),
                      check=lambda: not escaped()),  # out over the rim: plan again from where it is
            ]

        phases, entered = [], dirs[0]
        for k in range(len(ways)):
            ph = leg(k, 0.06 if k == 0 else 0.035)
            # a gentle turn is pushed through; a sharp one (since the fingers last went in) needs the
            # fingers moved behind the centre again
            if k == 0 or dirs[k] @ entered < np.cos(np.radians(50)):
                phases, entered = phases + ph, dirs[k]
            else:
                phases += ph[2:]
        return phases + [Phase("up", lambda: s.eef * [1, 1, 0] + [0, 0, z_in + 0.12], +1, tol=0.02, max_steps=20)]

    return build
