import gc

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from policystack.errors import UnknownNameError
from sim.metaworld_tasks import INSTRUCTIONS, MT10, resolve_tasks

pytestmark = pytest.mark.sim


def test_every_task_registered_and_passes_check_env():
    ids = [e for e in sim.list_envs() if "MetaWorld-" in e]
    assert len(ids) == 50
    for task in INSTRUCTIONS:
        env = sim.make_env(task)
        check_env(env.unwrapped, skip_render_check=True)
        obs, info = env.reset()
        assert obs["task"] == INSTRUCTIONS[task] and obs["observation.state"].dtype == np.float32
        env.close()


def test_task_sets_and_unknown_names():
    assert resolve_tasks("MT10") == MT10 and len(resolve_tasks("MT50")) == 50
    with pytest.raises(UnknownNameError, match="did you mean reach-v3"):
        sim.make_env("reach-v2")
    with pytest.raises(UnknownNameError, match="unknown Meta-World task"):
        resolve_tasks("MT11")


def test_init_states_are_indexed_and_reproducible():
    env = sim.make_env("pick-place-v3")
    a = [env.reset(options={"init_state_index": i})[0]["observation.state"] for i in range(3)]
    b = [env.reset(options={"init_state_index": i})[0]["observation.state"] for i in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.allclose(a[0], a[1])
    env.reset(seed=0)
    _, info = env.reset()
    assert info["init_state_index"] == 1  # sequential after seeding
    other_split = sim.make_env("pick-place-v3", init_seed=1)
    assert not np.allclose(other_split.reset(options={"init_state_index": 0})[0]["observation.state"], a[0])


def test_pixels_and_depth_are_rendered():
    env = sim.make_env("drawer-open-v3", cameras=("corner2", "gripperPOV"), image_size=(64, 96), depth=True)
    obs, _ = env.reset(options={"init_state_index": 0})
    img = obs["observation.images.corner2"]
    assert img.shape == (64, 96, 3) and img.dtype == np.uint8 and img.std() > 5
    d = obs["observation.depth.corner2"]
    assert d.dtype == np.float32 and 0.3 < np.median(d) < 5.0  # metres: table at ~1-2 m from corner2
    assert env.observation_space.contains(obs)
    env.close()


def test_two_renderers_in_one_process_do_not_mix_frames():
    """gymnasium's renderer bug: a second env's GL context garbles the first env's frames."""
    a = sim.make_env("reach-v3", cameras=("corner2",), image_size=64)
    fa = a.reset(options={"init_state_index": 0})[0]["observation.images.corner2"]
    b = sim.make_env("door-open-v3", cameras=("corner2",), image_size=64)
    fb = b.reset(options={"init_state_index": 0})[0]["observation.images.corner2"]
    fa2 = a.reset(options={"init_state_index": 0})[0]["observation.images.corner2"]
    assert np.array_equal(fa, fa2) and not np.array_equal(fa, fb)
    b.close()
    del b
    gc.collect()
    assert np.array_equal(a.reset(options={"init_state_index": 0})[0]["observation.images.corner2"], fa)


@pytest.mark.parametrize("task", ["reach-v3", "button-press-topdown-v3", "drawer-open-v3"])
def test_scripted_expert_succeeds(task):
    env = sim.make_env(task)
    expert = env.unwrapped.expert()
    wins = 0
    for i in range(3):
        obs, _ = env.reset(options={"init_state_index": i})
        for _ in range(500):
            obs, r, term, trunc, info = env.step(expert(obs["observation.state"]))
            if term or trunc:
                break
        wins += info["is_success"]
    assert wins == 3


def test_bad_actions_are_rejected():
    env = sim.make_env("reach-v3")
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([0, np.nan, 0, 0]))


def test_gymnasium_make_by_full_id():
    env = gym.make("policystack/MetaWorld-reach-v3", max_episode_steps=5, terminate_on_success=False)
    env.reset()
    for t in range(5):
        _, _, term, trunc, _ = env.step(np.zeros(4, np.float32))
    assert trunc and not term
