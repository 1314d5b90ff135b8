"""Scripted LIBERO experts beyond one pick-and-place: goals of several predicates, closing a drawer or
a microwave, turning a knob off, pushing a plate, holding a wide object by its handle, turning an
object to fit a slot. Each case runs the expert from one of the task's official init states (0 unless
said; state only, no rendering)."""

import numpy as np
import pytest


def run_expert(suite: str, task: int, before=None, during=None, init: int = 0):
    """Roll the expert out; ``before(env)`` runs after the reset, before the first action, and
    ``during(env, expert)`` after every step."""
    from sim.libero_env import LiberoEnv
    from sim.libero_experts import expert_for
    env = LiberoEnv(suite, task, cameras=())
    obs, info = env.reset(options={"init_state_index": init})
    if before is not None:
        before(env)
    expert = expert_for(env)
    assert expert is not None, f"{suite} task {task} ({env.instruction!r}) has no scripted expert"
    stages, done = [], False
    while not done:
        action = expert(obs)
        if not stages or stages[-1] != expert.stage:
            stages.append(expert.stage)
        obs, _, term, trunc, info = env.step(action)
        done = term or trunc
        if during is not None:
            during(env, expert)
    return env, expert, info, stages


@pytest.mark.parametrize("suite,task,n_stages", [
    ("libero_90", 1, 2),    # close the top drawer of the cabinet and put the black bowl on top of it
    ("libero_90", 22, 1),   # close the bottom drawer (its bar is low: pushed with the hand pointing down)
    ("libero_90", 39, 1),   # turn off the stove
    ("libero_90", 33, 1),   # close the microwave (its door starts open 1.5 rad): swept shut around the hinge
    ("libero_10", 8, 2),    # both moka pots on the stove: side by side on one region (the stove is on already)
])
def test_articulated_and_multi_predicate_goals_succeed_stage_by_stage(libero, suite, task, n_stages):
    env, expert, info, stages = run_expert(suite, task)
    try:
        assert info["is_success"], f"{env.instruction!r} failed in phase {expert.phase}"
        assert stages == list(range(n_stages))   # every predicate's stage, in order
    finally:
        env.close()


def test_a_wide_object_is_carried_by_its_handle(libero):
    from sim.libero_experts import Scene, handle_grasp
    start = {}

    def look(env):  # the pot as it stands at the start
        s = Scene(env)
        start["body"] = max(s.geom_boxes("moka_pot_1"), key=lambda b: float(np.prod(b[1] - b[0])))
        start["handle"] = handle_grasp(s, "moka_pot_1")

    env, expert, info, _ = run_expert("libero_90", 19, before=look)   # put the moka pot on the stove
    try:
        assert info["is_success"], f"failed in phase {expert.phase}"
        g, (lo, hi) = expert.mem["grasp"], start["body"]
        np.testing.assert_allclose(g.pos, start["handle"].pos, atol=1e-6)
        outside = np.maximum(np.maximum(lo[:2] - g.pos[:2], 0), g.pos[:2] - hi[:2])
        assert np.linalg.norm(outside) > 0.02   # the pads closed on the handle, clear of the pot's body
    finally:
        env.close()


def test_a_book_is_turned_to_fit_the_caddy_slot(libero):
    env, expert, info, _ = run_expert("libero_90", 74)   # the book into the caddy's left compartment
    try:
        assert info["is_success"], f"failed in phase {expert.phase}"
    finally:
        env.close()


@pytest.mark.parametrize("suite,task,goal_ops,plans", [
    # put the black bowl in the bottom drawer and close it: the BDDL lists closing first
    ("libero_10", 3, ["close", "in"], ["open_drawer_plan", "pick_place_plan", "close_drawer_plan"]),
    # close the bottom drawer and open the top one: in the goal's order (the open top drawer would be
    # in the way of the hand going down to the bottom one)
    ("libero_90", 23, ["close", "open"], ["close_drawer_plan", "open_drawer_plan"]),
])
def test_a_drawer_is_closed_after_putting_into_it_and_otherwise_in_the_goal_order(libero, suite, task,
                                                                                   goal_ops, plans):
    from sim.libero_env import LiberoEnv
    from sim.libero_experts import _goal, _plan_for_goal
    env = LiberoEnv(suite, task, cameras=())
    try:
        env.reset(options={"init_state_index": 0})
        goal = _goal(env)
        assert [g[0].lower() for g in goal] == goal_ops
        assert [b.__qualname__.split(".")[0] for b in _plan_for_goal(env, goal)] == plans
    finally:
        env.close()


def test_the_carry_clears_what_stands_on_the_way_to_the_target(libero):
    """The mug goes to a table region beside the caddy: it passes over the caddy's walls, not into them."""
    from sim.libero_experts import Scene
    seen = {"gap": []}

    def look(env):
        seen["scene"] = Scene(env)
        seen["caddy"] = seen["scene"].aabb("desk_caddy_1")

    def watch(env, expert):   # the mug's bottom above the caddy's top while over its footprint
        clo, chi = seen["caddy"]
        lo, hi = seen["scene"].aabb("white_yellow_mug_1")
        if expert.phase == "carry" and np.all(lo[:2] <= chi[:2]) and np.all(clo[:2] <= hi[:2]):
            seen["gap"].append(lo[2] - chi[2])

    env, expert, info, _ = run_expert("libero_90", 76, before=look, during=watch)   # mug right of the caddy
    try:
        assert info["is_success"], f"failed in phase {expert.phase}"
        assert seen["gap"] and min(seen["gap"]) > 0
    finally:
        env.close()


def test_an_object_under_an_open_drawer_is_slid_out_before_the_lift(libero):
    """libero_goal "open the top drawer and put the bowl inside", init state 3: the opened drawer hangs
    over the bowl, which a straight lift knocked out of the hand (8 of 15 init states succeeded before)."""
    phases = []
    env, expert, info, _ = run_expert("libero_goal", 3, init=3,
                                      during=lambda env, ex: phases.append((ex.stage, ex.phase)))
    try:
        assert info["is_success"], f"failed in phase {expert.phase}"
        names = [p for _, p in dict.fromkeys(phases)]
        assert "slide" in names and names.index("slide") < names.index("lift")
    finally:
        env.close()


def test_a_drawer_open_by_libero_test_is_pulled_on_unless_its_bar_is_too_low_to_grasp(libero):
    """Between LIBERO's "open" (past 0.14) and fully open (0.16) a drawer is pulled on, for room; a bottom
    drawer is not: its bar is 3.6 cm above the table, and the horizontal hand would push it in instead."""
    import mujoco

    from sim.libero_env import LiberoEnv
    from sim.libero_experts import Scene
    from sim.libero_primitives import open_drawer_plan
    env = LiberoEnv("libero_90", 24, cameras=())   # the white cabinet (put the black bowl in the bottom drawer)
    try:
        env.reset(options={"init_state_index": 0})
        s = Scene(env)
        phases = {}
        for level in ("bottom", "top"):
            for other in ("bottom", "middle", "top"):   # one drawer 0.15 open, the others shut
                adr = s.m.jnt_qposadr[s.m.joint(f"white_cabinet_1_{other}_level").id]
                s.d.qpos[adr] = -0.15 if other == level else 0.0
            mujoco.mj_forward(s.m, s.d)
            phases[level] = open_drawer_plan(f"white_cabinet_1_{level}_region")(s, {})
        assert phases["bottom"] == []
        assert [p.name for p in phases["top"]][-3:] == ["pull", "release", "back"]
    finally:
        env.close()


@pytest.mark.parametrize("init,detour", [(15, False), (2, True)])
def test_a_plate_is_pushed_from_inside_around_what_stands_in_the_way(libero, init, detour):
    """libero_goal #5, push the plate to the front of the stove: a plate is too wide to grasp and its rim
    slips, so the closed fingers push it from inside. The cream cheese stands on the straight way: from
    init state 2 the push goes round it; from 15 no way round is clear and the plate shoves it along."""
    seen = {"escaped": False}

    def watch(env, expert):
        from sim.libero_experts import Scene
        s = Scene(env)
        if expert.phase.startswith("push"):  # the fingers stay inside the plate's rim while pushing
            d = np.linalg.norm(s.eef[:2] - s.d.xpos[s.body("plate_1")][:2])
            seen["escaped"] |= bool(d > 0.07)

    env, expert, info, _ = run_expert("libero_goal", 5, during=watch, init=init)
    try:
        assert info["is_success"], f"failed in phase {expert.phase}"
        legs = {p.name for p in expert.phases if p.name.startswith("push")}
        assert (len(legs) > 1) == detour, legs
        assert not seen["escaped"]
    finally:
        env.close()


def test_a_book_goes_down_into_the_middle_of_a_compartment_drawn_off_centre(libero):
    """libero_90 #83: the right compartment's region is drawn 6 mm off the middle between its walls, and
    a standing book has 7 mm to spare: aimed at the region and dropped from the rim, it caught the back
    wall's top edge and leaned out (0/6 in the session-15 sweep). The episode ends on LIBERO's success
    test, which the book passes while still being lowered."""
    env, expert, info, _ = run_expert("libero_90", 83)
    try:
        from sim.libero_experts import Scene
        assert info["is_success"], f"failed in phase {expert.phase}"
        lo, hi = Scene(env).aabb("black_book_1")
        assert -0.453 - 0.004 < lo[0] and hi[0] < -0.328 + 0.004, (lo, hi)   # going in between the walls
    finally:
        env.close()
