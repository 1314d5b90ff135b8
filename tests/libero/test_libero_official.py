"""Official LIBERO demo files read into our Episodes; our writer produces that layout (no simulator)."""

import json

import h5py
import numpy as np
import pytest

from policystack import keys as K
from policystack.dataset import read_episodes
from policystack.errors import DatasetError
from sim.libero_official import axisangle2quat, read_official_demos, write_official_demos

BDDL = "chiliocosm/bddl_files/libero_object/pick_up_the_butter_and_place_it_in_the_basket.bddl"


def _write_official(path, n_demos=2, T=5, convention="opengl", with_split_ee=True):
    """A file laid out exactly as LIBERO's create_dataset.py writes it."""
    rng = np.random.default_rng(0)
    truth = []
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_name"] = "Libero_Floor_Manipulation"
        data.attrs["problem_info"] = json.dumps({"problem_name": "libero_floor_manipulation", "domain_name": "robosuite",
                                                 "language_instruction": "Pick the butter and place it in the basket"})
        data.attrs["macros_image_convention"] = convention
        data.attrs["env_args"] = json.dumps({"type": 1, "env_name": "Libero_Floor_Manipulation", "env_kwargs": {}})
        data.attrs["bddl_file_name"] = BDDL
        data.attrs["bddl_file_content"] = "(define (problem LIBERO_Floor_Manipulation))"
        total = 0
        for i in range(n_demos):
            g = data.create_group(f"demo_{i}")
            o = g.create_group("obs")
            img = rng.integers(0, 255, (T, 8, 6, 3), dtype=np.uint8)
            wrist = rng.integers(0, 255, (T, 8, 6, 3), dtype=np.uint8)
            ee = rng.normal(size=(T, 6))
            grip = rng.normal(size=(T, 2))
            joints = rng.normal(size=(T, 7))
            o["agentview_rgb"], o["eye_in_hand_rgb"] = img, wrist
            o["ee_states"], o["gripper_states"], o["joint_states"] = ee, grip, joints
            if with_split_ee:
                o["ee_pos"], o["ee_ori"] = ee[:, :3], ee[:, 3:]
            g["actions"] = rng.uniform(-1, 1, (T, 7))
            g["states"] = rng.normal(size=(T, 110))
            g["robot_states"] = rng.normal(size=(T, 9))
            g["rewards"] = np.eye(1, T, T - 1, dtype=np.uint8)[0]
            g["dones"] = np.eye(1, T, T - 1, dtype=np.uint8)[0]
            g.attrs["num_samples"] = T
            g.attrs["model_file"] = "<mujoco/>"
            g.attrs["init_state"] = g["states"][0]
            total += T
            truth.append(dict(img=img, wrist=wrist, ee=ee, grip=grip, joints=joints, actions=g["actions"][()]))
        data.attrs["num_demos"] = n_demos
        data.attrs["total"] = total
    return truth


def test_reads_official_layout_into_our_keys(tmp_path):
    path = tmp_path / "pick_up_the_butter_and_place_it_in_the_basket_demo.hdf5"
    truth = _write_official(path)
    eps = read_official_demos(path, with_states=True)
    assert len(eps) == 2
    for ep, t in zip(eps, truth):
        assert set(ep.obs) == {K.image_key("agentview"), K.image_key("wrist"), K.STATE}
        # "opengl" convention: rows are stored bottom-up, so reading turns them right side up
        np.testing.assert_array_equal(ep.obs[K.image_key("agentview")], t["img"][:, ::-1])
        np.testing.assert_array_equal(ep.obs[K.image_key("wrist")], t["wrist"][:, ::-1])
        state = ep.obs[K.STATE]
        assert state.dtype == np.float32 and state.shape == (5, 15)
        np.testing.assert_allclose(state, np.concatenate([t["ee"], t["grip"], t["joints"]], 1), rtol=1e-6)
        np.testing.assert_allclose(ep.actions, t["actions"], rtol=1e-6)
        assert ep.states.shape == (5, 110)
        assert ep.dones[-1] == 1 and ep.rewards.dtype == np.float32
        # the benchmark's instruction (what the env's `task` says), from the BDDL file name
        assert ep.task == "pick up the butter and place it in the basket"
        assert "model_file" not in ep.attrs


def test_reader_options_and_fallbacks(tmp_path):
    path = tmp_path / "some_file.hdf5"
    truth = _write_official(path, n_demos=3, convention="opencv", with_split_ee=False)
    eps = read_official_demos(path, limit=2, language="problem_info", keep_raw=True)
    assert len(eps) == 2
    assert eps[0].task == "Pick the butter and place it in the basket"
    np.testing.assert_array_equal(eps[0].obs[K.image_key("agentview")], truth[0]["img"])  # opencv: not flipped
    assert "ee_states" in eps[0].obs and eps[0].states is None
    np.testing.assert_allclose(eps[1].obs[K.STATE][:, :6], truth[1]["ee"], rtol=1e-6)
    assert read_official_demos(path, language="put it away")[0].task == "put it away"


def test_missing_proprio_is_a_clear_error(tmp_path):
    path = tmp_path / "x.hdf5"
    _write_official(path, n_demos=1)
    with h5py.File(path, "a") as f:
        del f["data/demo_0/obs/joint_states"]
    with pytest.raises(DatasetError, match="joint_states"):
        read_official_demos(path)


def test_writer_round_trip_matches_official_layout(tmp_path):
    from policystack.dataset import Episode
    rng = np.random.default_rng(1)
    T = 4
    state = rng.normal(size=(T, 15)).astype(np.float32)
    img = rng.integers(0, 255, (T, 8, 8, 3), dtype=np.uint8)
    ep = Episode(obs={K.STATE: state, K.image_key("agentview"): img, K.image_key("wrist"): img[:, :, ::-1]},
                 actions=rng.uniform(-1, 1, (T, 7)).astype(np.float32), rewards=np.zeros(T, np.float32),
                 dones=np.zeros(T, np.uint8), task="x", states=rng.normal(size=(T, 110)))
    path = write_official_demos(tmp_path / "o" / "t_demo.hdf5", [ep, ep], "libero_object", 6)
    with h5py.File(path, "r") as f:
        d = f["data"]
        assert d.attrs["num_demos"] == 2 and d.attrs["total"] == 2 * T
        assert d.attrs["macros_image_convention"] == "opengl"
        assert "butter" in json.loads(d.attrs["problem_info"])["language_instruction"]
        assert "(:language" in d.attrs["bddl_file_content"]
        g = d["demo_1"]
        assert set(g["obs"]) == {"ee_pos", "ee_ori", "ee_states", "gripper_states", "joint_states",
                                 "agentview_rgb", "eye_in_hand_rgb"}
        np.testing.assert_array_equal(g["obs/agentview_rgb"][()], img[:, ::-1])  # stored bottom-up
        assert g["robot_states"].shape == (T, 9) and g["states"].shape == (T, 110)
        np.testing.assert_allclose(g["robot_states"][:, 5:], axisangle2quat(state[:, 3:6].astype(np.float64)))
    back = read_official_demos(path, with_states=True)
    np.testing.assert_allclose(back[0].obs[K.STATE], state, rtol=1e-6)
    np.testing.assert_array_equal(back[1].obs[K.image_key("agentview")], img)
    assert back[0].task == "pick up the butter and place it in the basket"
    # the generic reader sees it too, through the key map
    assert K.image_key("wrist") in read_episodes(path, key_map={"eye_in_hand_rgb": K.image_key("wrist")})[0].obs


def test_axisangle_quat_round_trip():
    from sim.libero_env import quat2axisangle
    rng = np.random.default_rng(2)
    for _ in range(20):
        v = rng.normal(size=3)
        v *= rng.uniform(0.1, 3.0) / np.linalg.norm(v)
        np.testing.assert_allclose(quat2axisangle(axisangle2quat(v)), v, atol=1e-9)
