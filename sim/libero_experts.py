"""Scripted waypoint experts for LIBERO, driven by object poses read from the simulator.

An expert is a list of phases (move above, descend, close, lift, carry, lower, release, ...); each phase
servoes the end effector to a target with LIBERO's OSC_POSE delta action (position error / 5 cm per
unit, world-frame rotation vector / 0.5 rad per unit) and ends when the target is reached or its step
cap runs out. Grasps are chosen from the objects' collision geometry: a top grasp across the narrow
horizontal side at a height set by the object's size, or a rim grasp for bowls (one finger inside, one
outside). A grasp that did not lift the object is retried from the start (twice at most).

Coverage (``expert_for`` returns None elsewhere): every libero_object task; every libero_spatial task
(bowl rim grasps); libero_goal except pushing the plate (pick-and-place onto the stove, the plate, the
bowl, the cabinet and the wine rack; opening the middle drawer; opening the top drawer and putting the
bowl in; turning on the stove, see sim/libero_primitives.py). libero_10/libero_90 goals made of
``on``/``in``/``open`` and ``close`` (a drawer)/``turnon``/``turnoff`` predicates get the same scripts, one
stage per predicate (closing a drawer after putting into it). Objects wider than the gripper are held
by a handle when they have one (a moka pot, a mug); an object that fits a region only one way round (a
book into a caddy's slot) is turned to fit. Success rates per task are in docs/results/libero.md and
docs/results/decisionnce.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
from scipy.spatial.transform import Rotation

from sim.libero_clearance import on_path, slide_out, xy_distance, xy_overlap
from sim.libero_places import (place_in_container, place_in_region, place_on_object, place_on_region, place_on_site,
                               region_axis, region_floor)

if TYPE_CHECKING:  # pragma: no cover
    from sim.libero_env import LiberoEnv

log = logging.getLogger(__name__)

POS_SCALE = 0.05   # metres per unit action (OSC_POSE output_max)
GRIPPER_SPAN = 0.075  # widest object side the open fingers close across (metres)
ROT_SCALE = 0.5    # radians per unit action
DOWN = np.array([0.0, 0.0, -1.0])


# ----- scene geometry ------------------------------------------------------------------------
class Scene:
    """Read-only geometry of a LIBERO scene: end effector, object boxes, region sites."""

    def __init__(self, env: "LiberoEnv"):
        self.env = env
        self.rs = env.raw_env.env                      # robosuite env
        self.m = self.rs.sim.model._model
        self.d = self.rs.sim.data._data
        robot = self.rs.robots[0]
        self.eef_site = robot.eef_site_id
        self.finger_joints = [self.m.joint(f"gripper0_finger_joint{i}").id for i in (1, 2)]
        self._subtree: dict[int, np.ndarray] = {}

    # robot
    @property
    def eef(self) -> np.ndarray:
        return self.d.site_xpos[self.eef_site].copy()

    @property
    def eef_mat(self) -> np.ndarray:
        return self.d.site_xmat[self.eef_site].reshape(3, 3).copy()

    @property
    def finger_axis(self) -> np.ndarray:
        return self.d.xaxis[self.finger_joints[0]].copy()

    @property
    def gripper_width(self) -> float:
        q = [self.d.qpos[self.m.jnt_qposadr[j]] for j in self.finger_joints]
        return float(abs(q[0] - q[1]))

    # objects
    def body(self, name: str) -> int:
        return int(self.rs.obj_body_id[name])

    def _geoms(self, name: str) -> np.ndarray:
        root = self.body(name)
        if root not in self._subtree:
            bodies = {root}
            for b in range(root + 1, self.m.nbody):   # children come after parents in MuJoCo
                if self.m.body_parentid[b] in bodies:
                    bodies.add(b)
            collide = (self.m.geom_contype != 0) | (self.m.geom_conaffinity != 0)
            self._subtree[root] = np.flatnonzero(np.isin(self.m.geom_bodyid, list(bodies)) & collide)
        return self._subtree[root]

    def geom_boxes(self, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """World-frame axis-aligned box of each of the body's collision geoms."""
        out = []
        for g in self._geoms(name):
            R = self.d.geom_xmat[g].reshape(3, 3)
            c = self.d.geom_xpos[g] + R @ self.m.geom_aabb[g, :3]
            e = np.abs(R) @ self.m.geom_aabb[g, 3:]
            out.append((c - e, c + e))
        return out

    def aabb(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World-frame axis-aligned box around the body's collision geoms."""
        boxes = self.geom_boxes(name)
        return np.min([b[0] for b in boxes], 0), np.max([b[1] for b in boxes], 0)

    def center(self, name: str) -> np.ndarray:
        lo, hi = self.aabb(name)
        return (lo + hi) / 2

    def horizontal_axes(self, name: str) -> tuple[np.ndarray, float, float]:
        """(narrow horizontal direction, narrow extent, wide extent) from the box in the body's own frame."""
        b = self.body(name)
        Rb = self.d.xmat[b].reshape(3, 3)
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        for g in self._geoms(name):
            Rg = Rb.T @ self.d.geom_xmat[g].reshape(3, 3)
            c = Rb.T @ (self.d.geom_xpos[g] - self.d.xpos[b]) + Rg @ self.m.geom_aabb[g, :3]
            e = np.abs(Rg) @ self.m.geom_aabb[g, 3:]
            lo, hi = np.minimum(lo, c - e), np.maximum(hi, c + e)
        ext = hi - lo
        vertical = int(np.argmax(np.abs(Rb[2])))           # body axis closest to world z
        h = [i for i in range(3) if i != vertical]
        narrow, wide = (h[0], h[1]) if ext[h[0]] <= ext[h[1]] else (h[1], h[0])
        axis = Rb[:, narrow].copy()
        axis[2] = 0.0
        n = np.linalg.norm(axis)
        axis = axis / n if n > 1e-6 else np.array([1.0, 0.0, 0.0])
        return axis, float(ext[narrow]), float(ext[wide])

    def rim_radius(self, name: str) -> float:
        """Radius of a bowl's wall: median horizontal distance of the upper collision geoms from the centre."""
        lo, hi = self.aabb(name)
        c = (lo + hi) / 2
        mid = lo[2] + 0.5 * (hi[2] - lo[2])
        r = []
        for g in self._geoms(name):
            R = self.d.geom_xmat[g].reshape(3, 3)
            gc = self.d.geom_xpos[g] + R @ self.m.geom_aabb[g, :3]
            if gc[2] > mid:
                r.append(np.linalg.norm(gc[:2] - c[:2]))
        return float(np.median(r)) if r else 0.5 * min(hi[0] - lo[0], hi[1] - lo[1]) - 0.007

    def obstacles(self, exclude: tuple[str, ...] = ()) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.aabb(n) for n in self.rs.obj_body_id if n not in exclude]

    # regions (BDDL sites such as flat_stove_1_cook_region)
    def site(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        sid = self.m.site(name).id
        return self.d.site_xpos[sid].copy(), self.m.site_size[sid].copy()

    def joint_qpos(self, name: str) -> float:
        return float(self.d.qpos[self.m.jnt_qposadr[self.m.joint(name).id]])


# ----- servoing ------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    pos: Callable[[], np.ndarray] | None        # end-effector target (world), re-evaluated every step
    grip: float = -1.0                          # -1 open, +1 close
    axis: Callable[[], np.ndarray] | None = None  # wanted finger axis (horizontal); None keeps the current
    tol: float = 0.01
    max_steps: int = 60
    min_steps: int = 0
    speed: float = 1.0                          # cap on the position action's norm
    check: Callable[[], bool] | None = None     # at the end: False -> the grasp failed, restart the plan
    on_end: Callable[[], None] | None = None
    approach: np.ndarray = field(default_factory=lambda: DOWN.copy())  # where the fingers point
    done: Callable[[], bool] | None = None      # an extra end condition (e.g. the drawer is open)
    ori_tol: float | None = None                # also require the hand's orientation within this (rad)
    stall: bool = True                          # end the phase early when the hand stops moving


def _target_rotation(scene: Scene, axis: np.ndarray, approach: np.ndarray = DOWN) -> np.ndarray:
    """Gripper pointing along ``approach`` (down by default) with its fingers closing along ``axis``
    (the sign of ``axis`` giving the smaller turn)."""
    R = scene.eef_mat
    z_local = np.array([0.0, 0.0, 1.0])          # the grip site's z axis points out of the fingers
    f_local = R.T @ scene.finger_axis
    f_local = f_local - z_local * (f_local @ z_local)
    f_local /= np.linalg.norm(f_local)
    src = np.stack([f_local, z_local, np.cross(f_local, z_local)], 1)
    approach = np.asarray(approach, float) / np.linalg.norm(approach)
    axis = np.asarray(axis, float) - approach * (np.asarray(axis, float) @ approach)
    axis /= np.linalg.norm(axis)
    best, best_angle = None, np.inf
    for u in (axis, -axis):
        dst = np.stack([u, approach, np.cross(u, approach)], 1)
        Rt = dst @ src.T
        angle = np.linalg.norm(Rotation.from_matrix(Rt @ R.T).as_rotvec())
        if angle < best_angle:
            best, best_angle = Rt, angle
    return best


def servo(scene: Scene, pos: np.ndarray | None, axis: np.ndarray | None, grip: float, speed: float = 1.0,
          kp: float = 1.0, kr: float = 1.0, approach: np.ndarray = DOWN) -> np.ndarray:
    a = np.zeros(7)
    if pos is not None:
        v = kp * (np.asarray(pos) - scene.eef) / POS_SCALE
        n = np.linalg.norm(v)
        if n > speed:
            v *= speed / n
        a[:3] = v
    if axis is not None:
        Rt = _target_rotation(scene, np.asarray(axis, float), approach)
    else:  # keep the approach direction and the fingers' current direction
        Rt = _target_rotation(scene, scene.finger_axis, approach)
    rv = Rotation.from_matrix(Rt @ scene.eef_mat.T).as_rotvec()
    a[3:6] = np.clip(kr * rv / ROT_SCALE, -1, 1)
    a[6] = grip
    return np.clip(a, -1, 1).astype(np.float32)


Builder = Callable[[Scene, dict], list[Phase]]


class WaypointExpert:
    """callable(obs) -> action; restarts its plan at every env reset (``env.episode_id``)."""

    def __init__(self, env: "LiberoEnv", builder: Builder | list[Builder], max_retries: int = 2):
        self.env = env
        self.stages = list(builder) if isinstance(builder, (list, tuple)) else [builder]
        self.max_retries = max_retries
        self._episode = None

    def reset(self) -> None:
        self.scene = Scene(self.env)
        self.mem: dict = {}
        self.retries = 0
        self.stage = 0
        self._start()

    def _start(self) -> None:
        # a stage's plan is built when the stage begins, from the scene as it is then
        self.phases = self.stages[self.stage](self.scene, self.mem)
        while not self.phases and self.stage + 1 < len(self.stages):   # nothing to do in this stage
            self.stage += 1
            self.phases = self.stages[self.stage](self.scene, self.mem)
        self.i = 0
        self.k = 0
        self.trail: list[np.ndarray] = []

    @property
    def phase(self) -> str:
        return self.phases[self.i].name if self.i < len(self.phases) else "done"

    def __call__(self, obs=None) -> np.ndarray:
        if self._episode != self.env.episode_id:
            self._episode = self.env.episode_id
            self.reset()
        while self.i < len(self.phases):
            p = self.phases[self.i]
            target = p.pos() if p.pos is not None else None
            eef = self.scene.eef
            reached = target is None or np.linalg.norm(target - eef) < p.tol
            if reached and p.axis is not None and p.ori_tol is not None:  # turned far enough, too
                Rt = _target_rotation(self.scene, p.axis(), p.approach)
                reached = np.linalg.norm(Rotation.from_matrix(Rt @ self.scene.eef_mat.T).as_rotvec()) < p.ori_tol
            self.trail.append(eef)
            stalled = (p.stall and target is not None and self.k >= max(p.min_steps, 8)
                       and np.linalg.norm(self.trail[-1] - self.trail[-8]) < 0.0015)  # blocked: move on
            extra = p.done is not None and self.k >= p.min_steps and p.done()
            if (self.k >= p.min_steps and (reached or stalled)) or self.k >= p.max_steps or extra:
                if p.on_end is not None:
                    p.on_end()
                if p.check is not None and not p.check():
                    if self.retries < self.max_retries:
                        self.retries += 1
                        log.debug("grasp failed in phase %s; retry %d", p.name, self.retries)
                        self.mem["retry"] = self.retries
                        self._start()
                        continue
                self.i += 1
                self.k = 0
                self.trail = []
                if self.i >= len(self.phases) and self.stage + 1 < len(self.stages):
                    self.stage += 1
                    self._start()
                continue
            self.k += 1
            axis = p.axis() if p.axis is not None else None
            return servo(self.scene, target, axis, p.grip, p.speed, approach=p.approach)
        # plan finished: hold still with the last gripper command
        last = self.phases[-1].grip if self.phases else -1.0
        return np.array([0, 0, 0, 0, 0, 0, last], np.float32)


# ----- grasps and plans ----------------------------------------------------------------------
@dataclass
class Grasp:
    pos: np.ndarray        # grip-site target
    axis: np.ndarray       # finger closing direction (horizontal)
    approach: float = 0.10  # height of the pre-grasp point above pos


def top_grasp(s: Scene, obj: str) -> Grasp:
    """Across the narrow horizontal side, at mid-height for short objects, 4.5 cm below the top for tall."""
    lo, hi = s.aabb(obj)
    c = (lo + hi) / 2
    h = hi[2] - lo[2]
    axis, narrow, wide = s.horizontal_axes(obj)
    if narrow > GRIPPER_SPAN and wide > narrow:  # wider than the open gripper: try the other side anyway
        axis = np.array([-axis[1], axis[0], 0.0])
    z = max(hi[2] - min(0.045, 0.5 * h), lo[2] + 0.008)
    return Grasp(np.array([c[0], c[1], z]), axis)


def handle_grasp(s: Scene, obj: str, thin: float = 0.025) -> Grasp | None:
    """Across a handle: the object's thin collision boxes (horizontal narrow side < ``thin``) clear of
    its largest box, the cluster farthest from it. None when the object has no such part."""
    boxes = s.geom_boxes(obj)
    main = max(boxes, key=lambda b: float(np.prod(b[1] - b[0])))
    mc = (main[0] + main[1]) / 2
    parts = [b for b in boxes if np.min(b[1][:2] - b[0][:2]) < thin and not xy_overlap(*b, *main, 0.003)]
    if not parts:
        return None
    far = max(parts, key=lambda b: float(np.linalg.norm((b[0] + b[1])[:2] / 2 - mc[:2])))
    handle = [b for b in parts if xy_overlap(*b, *far, 0.005)]
    lo, hi = np.min([b[0] for b in handle], 0), np.max([b[1] for b in handle], 0)
    c = (lo + hi) / 2
    axis = np.array([1.0, 0.0, 0.0]) if hi[0] - lo[0] <= hi[1] - lo[1] else np.array([0.0, 1.0, 0.0])
    return Grasp(c, axis)


def rim_grasp(s: Scene, obj: str, prefer: np.ndarray | None = None) -> Grasp:
    """Pinch a bowl's wall: fingers radial, one inside and one outside, at the side with most clearance."""
    lo, hi = s.aabb(obj)
    c = (lo + hi) / 2
    r = s.rim_radius(obj)
    others = s.obstacles(exclude=(obj,))
    best, best_score = None, -np.inf
    for ang in np.linspace(0, 2 * np.pi, 16, endpoint=False):
        u = np.array([np.cos(ang), np.sin(ang), 0.0])
        p = c + r * u
        clear = min([xy_distance(p, olo, ohi) for olo, ohi in others if ohi[2] > hi[2] - 0.06] + [0.3])
        score = min(clear, 0.08) + 0.02 * (u @ (prefer if prefer is not None else np.array([-1.0, 0, 0])))
        if score > best_score:
            best, best_score = u, score
    p = c + r * best
    p[2] = max(hi[2] - 0.018, lo[2] + 0.009)   # the pads around the wall, above the support
    return Grasp(p, best, approach=0.08)


def too_wide(s: Scene, obj: str) -> bool:
    """Both horizontal sides wider than the open gripper and no bowl rim to pinch (a plate, a moka pot)."""
    return not is_bowl(obj) and s.horizontal_axes(obj)[1] > GRIPPER_SPAN


def is_bowl(name: str) -> bool:
    """Bowls are wider than the open gripper: they are taken by their rim."""
    return "bowl" in name


def pick_place_plan(obj: str, place: Callable[[Scene], tuple[np.ndarray, float]], clearance: float = 0.02,
                    carry: float = 0.06, place_axis: Callable[[Scene], np.ndarray | None] | None = None,
                    floor: Callable[[Scene], float] | None = None) -> Callable[[Scene, dict], list[Phase]]:
    """Pick ``obj`` and release it with its bottom ``clearance`` above the surface at the place point.

    ``place(scene) -> (xy of the object's centre, surface z)``; ``place_axis(scene)``: the finger axis
    to carry and lower the object with (None: keep the grasp's). ``floor(scene)``: the surface is a rim
    around a deeper floor (a caddy's compartment): the object is lowered in toward the floor while the
    fingertips stay above the rim, so it drops less far and the walls keep it upright.
    """

    def build(s: Scene, mem: dict) -> list[Phase]:
        g = rim_grasp(s, obj) if is_bowl(obj) else top_grasp(s, obj)
        if too_wide(s, obj):
            g = handle_grasp(s, obj) or g
        lo0, hi0 = s.aabb(obj)
        mem.update(bottom0=lo0[2], grasp=g)
        above = g.pos + [0, 0, g.approach]
        xy, surf = place(s)
        turn = place_axis(s) if place_axis is not None else None
        hold = (lambda: turn) if turn is not None else None
        # carry the object's bottom above its support, the target and anything it would pass over on the
        # straight way there (a drawer's walls, the cabinet it sits in, the caddy beside a table region)
        around = max([ohi[2] for olo, ohi in s.obstacles(exclude=(obj,))
                      if on_path(lo0, hi0, xy, olo, ohi, 0.03) and ohi[2] < lo0[2] + 0.25] + [lo0[2]])
        lift_bottom = max(surf, around) + carry
        # something hanging over the object below the carry height (an open drawer over a bowl): slide the
        # object out from under it, 1.5 cm above its support, before lifting
        over = [b for n in s.rs.obj_body_id if n != obj for b in s.geom_boxes(n)
                if hi0[2] - 0.005 < b[0][2] < lift_bottom + hi0[2] - lo0[2] and xy_overlap(lo0, hi0, *b, 0.01)]
        shift = slide_out(lo0, hi0, over, toward=np.append(xy - (lo0[:2] + hi0[:2]) / 2, 0.0)) if over else None
        base = g.pos + (shift if shift is not None else 0.0)

        def record():
            lo, hi = s.aabb(obj)
            mem["offset"] = (lo + hi) / 2 - s.eef     # object centre relative to the grip site
            mem["below"] = lo[2] - s.eef[2]           # object bottom relative to the grip site

        def lifted() -> bool:
            return s.aabb(obj)[0][2] > mem["bottom0"] + 0.02

        def carry_target():
            return np.array([xy[0] - mem["offset"][0], xy[1] - mem["offset"][1], lift_bottom - mem["below"]])

        def held() -> bool:
            lo, hi = s.aabb(obj)
            return bool(np.linalg.norm((lo + hi) / 2 - s.eef - mem["offset"]) < 0.06)

        def release_target():
            lo, hi = s.aabb(obj)   # live: a hanging object (a bowl held by its rim) swings and tilts
            off, below = (lo + hi) / 2 - s.eef, lo[2] - s.eef[2]
            if np.linalg.norm(off - mem["offset"]) > 0.06:   # dropped: do not chase it
                off, below = mem["offset"], mem["below"]
            z = surf + clearance - below
            if floor is not None:   # in among walls: keep the carry's aim, a tilt against a wall is no new aim
                z, off = max(min(z, floor(s) + clearance - below), surf + 0.015), mem["offset"]
            return np.array([xy[0] - off[0], xy[1] - off[1], z])

        lift_z = g.pos[2] + (lift_bottom - lo0[2])
        carry_speed = 0.45 if is_bowl(obj) else 0.8
        return [
            Phase("approach", lambda: above, -1, lambda: g.axis, tol=0.012, max_steps=80),
            Phase("descend", lambda: g.pos, -1, lambda: g.axis, tol=0.006, max_steps=40, speed=0.6),
            Phase("close", lambda: g.pos, +1, lambda: g.axis, min_steps=9, max_steps=9),
            *([] if shift is None else [Phase("slide", lambda: base + [0, 0, 0.015], +1, lambda: g.axis,
                                              tol=0.008, max_steps=40, speed=0.4)]),
            Phase("lift", lambda: np.array([base[0], base[1], lift_z]), +1, tol=0.01, max_steps=50,
                  speed=0.7, on_end=record, check=lifted),
            Phase("carry", carry_target, +1, hold, tol=0.015, max_steps=100, speed=carry_speed, check=held),
            Phase("lower", release_target, +1, hold, tol=0.008, max_steps=40, speed=0.4),
            Phase("release", None, -1, min_steps=6, max_steps=6),
            Phase("retreat", lambda: release_target() + [0, 0, 0.10], -1, tol=0.02, max_steps=30),
        ]

    return build


# ----- task dispatch -------------------------------------------------------------------------
def _goal(env: "LiberoEnv") -> list:
    return [list(map(str, g)) for g in env.raw_env.env.parsed_problem["goal_state"]]


def _plan_for_goal(env: "LiberoEnv", goal: list) -> list[Builder] | None:
    """One stage per predicate of the goal, in the goal's order except that closing a drawer something
    must go into comes last (put the bowl in the drawer, then close it; but close the bottom drawer
    before opening the top one, whose open drawer would be in the way); None when a predicate has no
    script."""
    stages: list[Builder] = []
    filled = {g[2] for g in goal if len(g) == 3}
    goal = sorted(goal, key=lambda g: g[0].lower() == "close" and g[1] in filled)
    targets = [g[2] if len(g) == 3 else None for g in goal]
    for n, pred in enumerate(goal):
        shared = [j for j, t in enumerate(targets) if t is not None and t == targets[n]]
        plan = _plan_for_predicate(env, pred, slot=(shared.index(n), len(shared)) if shared else (0, 1))
        if plan is None:
            return None
        stages += plan if isinstance(plan, list) else [plan]
    return stages or None


def _plan_for_predicate(env: "LiberoEnv", pred: list, slot: tuple[int, int] = (0, 1)
                        ) -> Builder | list[Builder] | None:
    """``slot``: this predicate's place among the goal's predicates with the same target (place_on_region)."""
    from sim import libero_primitives as prim
    rs = env.raw_env.env
    name = pred[0].lower()
    if name in ("on", "in") and len(pred) == 3:
        obj, target = pred[1], pred[2]
        if obj not in rs.objects_dict:
            return None
        if target in rs.obj_body_id:             # onto / into another object
            if name == "in" or "basket" in target or "tray" in target:
                return pick_place_plan(obj, place_in_container(target))
            return pick_place_plan(obj, place_on_object(target), clearance=0.01)
        if target in rs.object_sites_dict:       # a region of a fixture or object
            site = rs.object_sites_dict[target]
            parent = site.parent_name
            if "contain_region" in target:       # e.g. basket_1_contain_region, a caddy's compartment
                turn = region_axis(target, obj)
                if turn(Scene(env)) is not None:     # a slot it fits only turned: dropped in from the rim
                    return pick_place_plan(obj, place_in_region(target, parent), place_axis=turn)
                # it fits either way: aimed at the middle between the walls and lowered in (a book standing
                # in a 12.5 cm compartment has 5.5 mm to spare on each side)
                return pick_place_plan(obj, place_in_region(target, parent, interior=True),
                                       floor=region_floor(target))
            if name == "on" and parent is None:  # a region of the table
                sc = Scene(env)
                if too_wide(sc, obj) and handle_grasp(sc, obj) is None:
                    return prim.push_into_region_plan(obj, target)  # no rim or handle to hold (a plate)
                return pick_place_plan(obj, place_on_site(target), clearance=0.01)
            if name == "on":
                return pick_place_plan(obj, place_on_region(target, parent, obj, slot), clearance=0.015)
            if name == "in" and getattr(site, "joints", None):   # a drawer: open it, then put the object in
                return [prim.open_drawer_plan(target),
                        pick_place_plan(obj, place_on_region(target, parent), clearance=0.02)]
        return None
    if name in ("open", "close") and len(pred) == 2:
        site = rs.object_sites_dict.get(pred[1])
        if getattr(site, "joints", None):  # a drawer region
            return (prim.open_drawer_plan if name == "open" else prim.close_drawer_plan)(pred[1])
        if name == "close" and site is None and getattr(rs.get_object(pred[1]), "joints", None):
            return prim.close_door_plan(pred[1])  # a hinged door (a microwave's); opening one is not scripted
        return None
    if name in ("turnon", "turnoff") and len(pred) == 2:
        return prim.turn_knob_plan(pred[1], on=name == "turnon")
    return None


def expert_for(env: "LiberoEnv") -> WaypointExpert | None:
    """The scripted expert for this env's task, or None when no script covers its goal."""
    plan = _plan_for_goal(env, _goal(env))
    return None if plan is None else WaypointExpert(env, plan)


def make_expert(env: "LiberoEnv") -> WaypointExpert:
    exp = expert_for(env)
    if exp is None:
        raise NotImplementedError(f"no scripted expert for {env.suite} task {env.task_index} "
                                  f"({env.instruction!r}, goal {_goal(env)})")
    return exp
