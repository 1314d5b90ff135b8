"""The multi-sensory peg-in-keyway env: contract, physics-driven senses, stages, distractors, demos."""

import dataclasses
import json

import h5py
import numpy as np
import pytest

from policystack import keys as K
from sim.multisensory_env import MultiSensoryEnv
from sim.multisensory_expert import (PRIMITIVES, generate_demos, primitive, read_executed_actions,
                                    read_stage_labels)

pytestmark = pytest.mark.sim
AUDIO, TACTILE, IMAGE = K.audio_key("mic"), K.tactile_key("fingers"), K.image_key("wrist")


@pytest.fixture(scope="module")
def env():
    e = MultiSensoryEnv(image_size=32, audio_window_s=3.0)
    yield e
    e.close()


def run_expert(env, index, record=False):
    obs, info = env.reset(options={"init_state_index": index})
    ex = env.expert()
    trace = []
    done = False
    while not done:
        name = ex.name()
        prev = obs
        obs, r, term, trunc, info = env.step(ex(obs))
        trace.append((name, prev if record else None, obs if record else None, dict(info)))
        done = term or trunc
    return trace, info


def test_registered_and_passes_check_env():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env
    import sim
    assert "policystack/MultiSensory-peg-keyway" in sim.list_envs()
    e = gym.make("policystack/MultiSensory-peg-keyway", image_size=32, audio_window_s=0.2)
    check_env(e.unwrapped)
    e.close()


def test_observations_match_the_spec(env):
    obs, info = env.reset(options={"init_state_index": 3})
    from policystack.spec import Spec
    Spec.of(f for f in env.spec_features if f.key != K.ACTION).check_observation(obs)
    assert obs[AUDIO].shape == (1, 48000) and obs[AUDIO].dtype == np.float32
    assert obs[TACTILE].shape == (6, 12, 12) and obs[IMAGE].shape == (32, 32, 3)
    assert info["init_state_index"] == 3 and info["stage"] == 0
    assert env.spec_features[K.ACTION].shape == (4,)


def test_init_states_are_indexed_and_deterministic(env):
    a, _ = env.reset(options={"init_state_index": 5})
    layout = (env.hole_xy.copy(), env.keyway_yaw, env.latch_z)
    env.reset(options={"init_state_index": 6})
    b, _ = env.reset(options={"init_state_index": 5})
    assert np.array_equal(a[IMAGE], b[IMAGE]) and np.array_equal(a[TACTILE], b[TACTILE])
    assert np.allclose(layout[0], env.hole_xy) and layout[1] == env.keyway_yaw
    _, info = env.reset(seed=0)
    assert info["init_state_index"] == 0


def test_expert_solves_with_stages_in_order_and_each_sense_reacts(env):
    for index in (0, 1):
        trace, info = run_expert(env, index, record=True)
        assert info["is_success"] and not info["broken"]
        stages = [t[3]["stage"] for t in trace]
        assert stages == sorted(stages) and set(stages) == {0, 1, 2}
        names = [t[0] for t in trace]
        # touch: the pads feel the key resting on the plate exactly while the expert rotates
        rot = [t for t in trace if t[0] == "rotate"]
        free = [t for t in trace if t[3]["stage"] == 0]
        blocked_shear = np.mean([np.abs(t[1][TACTILE][[1, 2, 4, 5]]).max() for t in rot])
        free_shear = np.mean([np.abs(t[1][TACTILE][[1, 2, 4, 5]]).max() for t in free])
        assert blocked_shear > 5 * free_shear
        # audio: a thud when the key lands, a bright click when the latch engages
        assert any(t[3]["impacts"] > 0 for t in trace[:names.index("rotate") + 1])
        click_step = next(i for i, t in enumerate(trace) if t[3]["latched"])
        last = trace[click_step][2][AUDIO][0, -3200:]
        before = trace[click_step][1][AUDIO][0, -3200:]
        assert np.sqrt((last ** 2).mean()) > 10 * np.sqrt((before ** 2).mean())
        spec = np.abs(np.fft.rfft(last))
        freqs = np.fft.rfftfreq(len(last), 1 / 16000)
        assert spec[freqs > 2000].sum() > spec[freqs < 1500].sum()        # the click is bright
        assert names[-2:] == ["wait", "wait"]


def test_pushing_after_the_click_breaks_the_latch(env):
    obs, _ = env.reset(options={"init_state_index": 2})
    ex = env.expert()
    info = {"latched": False}
    while not info["latched"]:
        obs, _, term, trunc, info = env.step(ex(obs))
        assert not (term or trunc)
    obs, _, term, _, info = env.step(primitive("down"))
    assert info["broken"] and term and not info["is_success"]


def test_misaligned_descent_never_reaches_the_insert_stage(env):
    env.reset(options={"init_state_index": 4})
    if np.all(np.abs(env.hole_xy) < 0.004):
        pytest.skip("hole under the start pose")
    for _ in range(12):
        _, _, _, _, info = env.step(primitive("down"))
    assert info["stage"] == 0 and env.contact_wrench()[0][2] > 0.3     # resting on the board


def test_distractors_change_their_modality_only():
    base = MultiSensoryEnv(image_size=32, audio_window_s=0.2)
    vis = MultiSensoryEnv(image_size=32, audio_window_s=0.2, visual_distractor="both")
    aud = MultiSensoryEnv(image_size=32, audio_window_s=0.2, audio_distractor="noise")
    tac = MultiSensoryEnv(image_size=32, audio_window_s=0.2, tactile_distractor="noise")
    out = {}
    for name, e in (("base", base), ("vis", vis), ("aud", aud), ("tac", tac)):
        obs, _ = e.reset(options={"init_state_index": 1})
        obs, *_ = e.step(primitive("wait"))
        out[name] = obs
        assert np.allclose(e.hole_xy, base.hole_xy)                    # same task layout
    assert np.abs(out["vis"][IMAGE].astype(int) - out["base"][IMAGE]).mean() > 10
    assert np.array_equal(out["aud"][IMAGE], out["base"][IMAGE])
    rms = lambda o: float(np.sqrt((o[AUDIO] ** 2).mean()))
    assert rms(out["aud"]) > 5 * rms(out["base"])
    assert np.abs(out["tac"][TACTILE] - out["base"][TACTILE]).mean() > 0.1
    for e in (base, vis, aud, tac):
        e.close()


def test_nuisance_varies_each_sense_per_episode_and_leaves_distractors_as_they_were():
    kw = dict(image_size=32, audio_window_s=0.2)
    clean, nuis = MultiSensoryEnv(**kw), MultiSensoryEnv(nuisance=0.5, **kw)
    rms = lambda o: float(np.sqrt((o[AUDIO] ** 2).mean()))

    def first(e, i):
        e.reset(options={"init_state_index": i})
        return e.step(primitive("wait"))[0]

    c = [first(clean, i) for i in range(6)]
    n = [first(nuis, i) for i in range(6)]
    # the same layouts, but every sense varies by episode: louder room, drifting pads, other colours
    assert max(rms(o) for o in c) < 0.003 < max(rms(o) for o in n)
    assert np.ptp([np.abs(o[TACTILE]).mean() for o in n]) > 5 * np.ptp([np.abs(o[TACTILE]).mean() for o in c])
    assert np.mean([np.abs(a[IMAGE].astype(int) - b[IMAGE]).mean() for a, b in zip(c, n)]) > 5
    assert np.array_equal(first(nuis, 3)[TACTILE], n[3][TACTILE])   # deterministic per init state
    # an enabled distractor draws exactly what it drew without nuisance (results stay comparable)
    vis = [MultiSensoryEnv(visual_distractor="both", nuisance=v, **kw) for v in (0.0, 0.5)]
    assert np.array_equal(*(first(e, 2)[IMAGE] for e in vis))
    tac = [MultiSensoryEnv(tactile_distractor="noise", nuisance=v, **kw) for v in (0.0, 0.5)]
    for e in tac:
        e.reset(options={"init_state_index": 2})
    assert np.array_equal(tac[0]._tactile_offset, tac[1]._tactile_offset)
    for e in vis + tac:
        e.close()
    with pytest.raises(ValueError, match="nuisance"):
        MultiSensoryEnv(nuisance=1.5)
    clean.close(), nuis.close()


def test_frames_are_rendered(env):
    obs, _ = env.reset(options={"init_state_index": 0})
    assert obs[IMAGE].std() > 10
    assert env.render().shape == (224, 224, 3)


def test_bad_arguments(env):
    with pytest.raises(ValueError):
        MultiSensoryEnv(visual_distractor="fog")
    with pytest.raises(ValueError):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        env.reset(options={"init_state_index": -1})


def test_demos_carry_stage_labels(tmp_path):
    from policystack.dataset import file_features, read_episodes
    path = generate_demos(tmp_path / "d.hdf5", 2, env_kwargs={"image_size": 32, "audio_window_s": 0.2},
                          dart_prob=1.0, progress=False)
    eps = read_episodes(path)
    stages = read_stage_labels(path)
    executed = read_executed_actions(path)
    # DART: in the align stage the executed move is random, the label is the expert's
    for e, s, x in zip(eps, stages, executed):
        assert x.shape == e.actions.shape
        assert np.array_equal(x[s > 0], e.actions[s > 0])
    assert len(eps) == 2 and [len(s) for s in stages] == [len(e) for e in eps]
    for e, s in zip(eps, stages):
        assert s[0] <= 1 and s[-1] == 2 and np.all(np.diff(s) >= 0)
        assert e.obs[AUDIO].shape[1:] == (1, 3200)
        rows = {tuple(a) for a in e.actions.tolist()}
        assert rows <= {tuple(v) for v in PRIMITIVES.values()}
    assert AUDIO in file_features(path)


def test_experiment_refuses_to_resume_demos_recorded_at_another_nuisance(tmp_path):
    from policies.msbot.experiment import _check_recorded_nuisance
    from policystack.config import ConfigError
    generate_demos(tmp_path / "demos.hdf5", 1, env_kwargs={"image_size": 16, "audio_window_s": 0.2,
                                                           "nuisance": 0.3}, progress=False)
    _check_recorded_nuisance(tmp_path, 0.0)             # no demos.DONE yet: nothing to resume
    (tmp_path / "demos.DONE").write_text("ok\n")
    _check_recorded_nuisance(tmp_path, 0.3)
    with pytest.raises(ConfigError, match="nuisance=0.3"):
        _check_recorded_nuisance(tmp_path, 0.0)


def test_experiment_config_refuses_unknown_methods_and_conditions_before_training():
    """`--conditions clean policy.blur_p=0.75` once swallowed the override as a condition and failed only
    after a training run; now the config names the bad entry at construction."""
    from policies.msbot.experiment import ExperimentConfig
    from policystack.config import ConfigError
    with pytest.raises(ConfigError, match="unknown condition 'policy.blur_p=0.75'"):
        ExperimentConfig(conditions=["clean", "policy.blur_p=0.75"])
    with pytest.raises(ConfigError, match="unknown method 'msbott'"):
        ExperimentConfig(methods=["msbott"])
    with pytest.raises(ConfigError, match="nuisance"):
        ExperimentConfig(nuisance=1.5)
    with pytest.raises(ConfigError, match="checkpoint must be one of"):
        ExperimentConfig(checkpoint="best")
    assert ExperimentConfig(methods=["msbot", "concat"], conditions=["clean", "all"]).conditions == ["clean", "all"]


@pytest.mark.sim
def test_experiment_evaluates_the_checkpoint_chosen_on_validation_demos(tmp_path):
    """checkpoint=best_acc: validation demos from their own init states, the best epoch evaluated and
    recorded; the same directory refuses a later run that would mix in another checkpoint."""
    from policies.msbot.experiment import ExperimentConfig, run_experiment
    from policystack.config import ConfigError
    small = ["policy.tokenizer.channels=4", "policy.tokenizer.token_dim=8", "policy.n_heads=2"]
    cfg = ExperimentConfig(out=str(tmp_path), methods=["msbot"], seeds=[0], conditions=["clean"], n_demos=2,
                           n_eval=1, epochs=2, overrides=small, checkpoint="best_acc")
    summary = run_experiment(cfg)
    run = tmp_path / "runs" / "msbot_s0"
    val_acc = [json.loads(x)["val_acc"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert int((run / "checkpoints" / "best_acc" / "epoch.txt").read_text()) == int(np.argmax(val_acc))
    assert json.loads((tmp_path / "evals" / "msbot_s0_clean.json").read_text())["checkpoint"] == "best_acc"
    assert summary["success"]["msbot"]["clean"]["n_seeds"] == 1
    with h5py.File(tmp_path / "val.hdf5") as f, h5py.File(tmp_path / "demos.hdf5") as g:
        key = "data/demo_0/obs/observation.images.wrist"        # the hole sits elsewhere: other init states
        assert not np.array_equal(f[key][0], g[key][0])
    with pytest.raises(ConfigError, match="evaluated the best_acc checkpoint"):
        run_experiment(dataclasses.replace(cfg, checkpoint="last"))
