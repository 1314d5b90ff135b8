"""Key states and the expert weighting nu (spec §5.1: key-state distribution, flow)."""

import numpy as np
import pytest

from policies.koi.keystates import (Demo, GripperKeyStates, ManualKeyStates, NuWeights, SimPhaseKeyStates,
                                    VLMKeyStates, compute_key_states, expert_weighting, flow_magnitude,
                                    flow_magnitudes, motion_key_states, uniform_weighting)


def textured(size=48, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size // 4, size // 4, 3)).astype(np.uint8)
    return np.kron(base, np.ones((4, 4, 1), np.uint8))  # blocky texture Farneback can track


def square_video(T=30, t_star=17, size=48):
    """A square that drifts 1 px/frame, except a 6-px jump between frames t_star and t_star + 1."""
    frames, x = [], 8
    for t in range(T):
        img = np.zeros((size, size, 3), np.uint8)
        img[18:30, x:x + 12] = 255
        frames.append(img)
        x += 6 if t == t_star else (1 if t % 2 else 0)
    return np.stack(frames)


@pytest.mark.parametrize("T,sem,mot", [(151, [49, 140], [30, 100]), (60, [20, 45], [5, 30]), (40, [39], [])])
def test_nu_is_a_distribution_peaking_at_the_final_key(T, sem, mot):
    nu = expert_weighting(T, sem, mot)
    assert nu.shape == (T,)
    assert (nu >= 0).all()
    assert abs(nu.sum() - 1.0) < 1e-9
    assert abs(int(np.argmax(nu)) - sem[-1]) <= 1
    for k in sem:   # every semantic key carries more than the uniform level
        assert nu[k] > 1.0 / T
    for k in mot:   # motion bumps are small (0.05) but still raise nu above its base level
        assert nu[k] > nu.min()


def test_nu_magnitudes_match_koi_example():
    # spec §1.6 reports, for T=151, semantic keys 49 and 159 and motion keys 60 and 120:
    # nu from 0.0053 (about the uniform level) to 0.0207 at key frame 49
    nu = expert_weighting(151, [49, 159], [60, 120])
    assert nu.min() == pytest.approx(0.0053, abs=5e-5)
    assert nu.max() == pytest.approx(0.0207, abs=5e-5) and int(np.argmax(nu)) == 49


def test_nu_without_keys_is_uniform_rot():
    np.testing.assert_allclose(expert_weighting(50, []), uniform_weighting(50))


def test_final_key_gets_the_largest_bump():
    nu = expert_weighting(100, [30, 70])
    assert nu[70] > nu[30] > nu[5]
    flat_goal = expert_weighting(100, [30, 70], w=NuWeights(final=0.0))
    assert flat_goal[70] < flat_goal[30]


def smooth_texture(size=64, seed=0):
    import cv2
    noise = np.random.default_rng(seed).random((size, size, 3)) * 255
    t = cv2.GaussianBlur(noise, (0, 0), 1.5)
    return ((t - t.min()) / (t.max() - t.min()) * 255).astype(np.uint8)


@pytest.mark.parametrize("make", [textured, smooth_texture])
def test_flow_zero_for_identical_frames(make):
    f = make()
    assert flow_magnitude(f, f) < 1e-2
    assert flow_magnitude(f, np.roll(f, 1, axis=1)) > 10


@pytest.mark.parametrize("make", [textured, smooth_texture])
def test_flow_monotone_in_displacement(make):
    f = make(64)
    mags = [flow_magnitude(f, np.roll(f, d, axis=1)) for d in range(0, 4)]
    assert all(a < b for a, b in zip(mags, mags[1:])), mags


def test_flow_uint8_and_float64_inputs_agree():
    f, g = textured(), np.roll(textured(), 2, axis=0)
    assert flow_magnitude(f, g) == flow_magnitude(f.astype(np.float64), g.astype(np.float64))


def test_motion_key_is_the_frame_after_the_fast_move():
    t_star = 17
    video = square_video(t_star=t_star)
    flow = flow_magnitudes(video)
    assert len(flow) == len(video) - 1
    # semantic keys around it: the interval [10, 25) holds the jump
    assert motion_key_states(flow, [10, 25, 29]) [1] == t_star + 1
    assert len(motion_key_states(flow, [10, 25, 29])) == 3   # one per interval, including [0, first key)


def _demo(T=40, success_at=30, move_at=20, grasp=None):
    states = np.zeros((T, 39), np.float32)
    states[move_at:, 4] = np.linspace(0.02, 0.1, T - move_at)
    infos = [{}] + [{"success": float(t >= success_at), "grasp_success": float(grasp is not None and t >= grasp)}
                    for t in range(1, T)]
    acts = np.zeros((T, 4), np.float32)
    return Demo(np.zeros((T, 8, 8, 3), np.uint8), acts, states, infos)


def test_sim_phase_key_states_from_object_motion_and_success():
    keys = SimPhaseKeyStates()(_demo(success_at=30, move_at=20))
    assert keys == [20, 30]
    # grasp rising edge is a sub-goal; the goal stays last
    assert SimPhaseKeyStates()(_demo(success_at=35, move_at=20, grasp=27)) == [20, 27, 35]


def test_sim_phase_without_success_uses_the_last_frame():
    d = _demo(success_at=10**6, move_at=20)
    assert SimPhaseKeyStates()(d)[-1] == len(d) - 1


def test_manual_keyidx_is_one_based_and_checked():
    d = _demo()
    assert ManualKeyStates([10, 40])(d) == [9, 39]
    with pytest.raises(ValueError, match="outside"):
        ManualKeyStates([41])(d)


def test_gripper_flips_mark_grasp_and_release():
    d = _demo()
    d.actions[1:, -1] = -1
    d.actions[12:25, -1] = 1
    assert GripperKeyStates()(d) == [12, 25, 39]


def test_vlm_interface_maps_picture_indices_to_frames():
    seen = {}

    def fake_vlm(images, prompt):   # stands in for a remote/local VLM client
        seen["n"], seen["prompt"] = len(images), prompt
        return [1, 3]

    keys = VLMKeyStates(fake_vlm, ["grasp the handle", "drawer is closed"], stride=10)(_demo(T=45))
    assert seen["n"] == 4 and "1. grasp the handle" in seen["prompt"]
    assert keys == [19, 39]        # picture k shows frame (k+1)*10 - 1
    with pytest.raises(ValueError, match="indices"):
        VLMKeyStates(lambda i, p: [0], ["a", "b"])(_demo(T=45))


def test_compute_key_states_end_to_end():
    video = square_video(T=30, t_star=17)
    d = Demo(video, np.zeros((30, 4), np.float32), None, [{}] + [{"success": float(t >= 25)} for t in range(1, 30)])
    ks = compute_key_states(d, SimPhaseKeyStates())
    assert ks.semantic == [25]
    assert ks.motion == [18]
    assert abs(ks.nu.sum() - 1) < 1e-9 and abs(int(np.argmax(ks.nu)) - 25) <= 1


def test_demos_from_a_policystack_hdf5_file(tmp_path):
    from policystack.dataset import Episode, EpisodeWriter
    from policies.koi.demos import demos_from_hdf5, load_demos, save_demos
    T = 9
    frames = np.stack([np.full((8, 8, 3), t, np.uint8) for t in range(T)])
    acts = np.arange(T * 4, dtype=np.float32).reshape(T, 4) / 100
    with EpisodeWriter(tmp_path / "d.hdf5") as w:
        w.add(Episode({"observation.images.corner2": frames, "observation.state": np.zeros((T, 39), np.float32)},
                      acts, np.zeros(T, np.float32), np.zeros(T, np.uint8), task="close the drawer"))
    (d,) = demos_from_hdf5(tmp_path / "d.hdf5", "observation.images.corner2", 1, action_repeat=2)
    assert [int(f[0, 0, 0]) for f in d.frames] == [0, 2, 4, 6, 8]   # agent-step frames
    np.testing.assert_allclose(d.actions[1], acts[0])                  # the action held to reach frame 1
    assert d.task == "close the drawer"
    save_demos([d], tmp_path / "demos.npz")
    (back,) = load_demos(tmp_path / "demos.npz")
    np.testing.assert_array_equal(back.frames, d.frames)
    assert back.task == d.task and back.infos == d.infos
