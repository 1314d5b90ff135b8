"""End to end on Meta-World (tiny sizes): demos, key states, BC, online OT-reward RL, checkpoint, resume, CLI."""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.sim

TINY = ["task=button-press-topdown-v3", "image_size=32", "episode_steps=8", "bc_steps=5", "bc_batch_size=8",
        "eval_episodes=1", "eval_every_frames=32", "num_seed_frames=16", "save_every_frames=16",
        "agent.batch_size=8", "policy.hidden_dim=16", "policy.feature_dim=8", "policy.conv_channels=4",
        "policy.conv_strides=[2,1]", "seed=3", "demo_require_success=false"]


def tiny_cfg(*extra):
    from policystack.config import apply_overrides
    from policies.koi.train_koi import KOITrainConfig
    return apply_overrides(KOITrainConfig(), TINY + list(extra))


def test_scripted_demo_key_states_follow_the_task_phases():
    from policies.koi.demos import generate_demos
    from policies.koi.keystates import SimPhaseKeyStates, compute_key_states
    from policies.koi.train_koi import make_env
    cfg = tiny_cfg("episode_steps=40")
    env = make_env(cfg, cfg.demo_init_seed, terminate_on_success=False)
    try:
        (demo,) = generate_demos(env, 1, 40, 2, cfg.image_key)
    finally:
        env.close()
    assert demo.frames.shape == (41, 32, 32, 3) and demo.actions.shape == (41, 4)
    first_success = next(t for t, i in enumerate(demo.infos) if i.get("success", 0) > 0)
    ks = compute_key_states(demo, SimPhaseKeyStates())
    assert ks.semantic[-1] == first_success        # goal = the first success frame
    assert len(ks.semantic) == 2 and ks.semantic[0] < first_success   # button engaged before it is pressed
    assert len(ks.motion) == len(ks.semantic)
    assert abs(int(np.argmax(ks.nu)) - first_success) <= 1


def test_train_checkpoint_resume_and_cli(tmp_path):
    from policystack.cli import main
    from policies.base import load_policy
    from policies.koi.train_koi import OnlineTrainer

    run = tmp_path / "run"
    tr = OnlineTrainer(tiny_cfg("num_train_frames=48"), run, progress=False)
    assert tr.key_states[0]["semantic"], "KOI run must find key states in the demo"
    tr.run()
    hist = json.loads((run / "eval.json").read_text())
    assert hist[0]["frames"] == 0 and hist[-1]["frames"] == 48
    assert (run / "success_vs_frames.png").stat().st_size > 1000
    assert tr.rewarder.scaled
    first = tr.episodes_log[0]["ot_return"]
    assert first == pytest.approx(-10.0, abs=1e-4)           # auto-scaled first episode
    assert any("critic_loss" in e for e in tr.episodes_log)  # updates ran after the seed frames
    assert len(list((run / "replay").glob("*.npz"))) == 3
    policy = load_policy(run)                                  # run dir -> checkpoints/last/pretrained
    assert policy.name == "koi"

    # refusing to overwrite, then resuming to a larger budget through the CLI
    with pytest.raises(Exception, match="resume"):
        OnlineTrainer(tiny_cfg("num_train_frames=64"), run, progress=False)
    rc = main(["koi", "train", "--run-dir", str(run), "--resume", "--no-progress", *TINY, "num_train_frames=64"])
    assert rc == 0
    hist2 = json.loads((run / "eval.json").read_text())
    assert hist2[: len(hist)] == hist and hist2[-1]["frames"] == 64
    resumed = OnlineTrainer(tiny_cfg("num_train_frames=64"), run, resume=True, progress=False)
    assert resumed.step == 32 and resumed.episode == 4 and len(resumed.replay) == 32
    assert resumed.rewarder.scale == tr.rewarder.scale      # scale fixed after the first episode


def test_rot_run_uses_uniform_nu(tmp_path):
    from policies.koi.train_koi import OnlineTrainer
    tr = OnlineTrainer(tiny_cfg("num_train_frames=16", "reward.nu=uniform", "bc_steps=2"), tmp_path / "rot",
                       progress=False)
    nu = tr.key_states[0]["nu"]
    np.testing.assert_allclose(nu, np.full(len(nu), 1 / len(nu)))


def test_cli_rejects_bad_overrides(capsys):
    from policystack.cli import main
    assert main(["koi", "train", "--run-dir", "/tmp/unused", "reward.nu=banana"]) == 2
    assert "reward.nu" in capsys.readouterr().err
    assert main(["koi", "train", "--run-dir", "/tmp/unused", "no_such_field=1"]) == 2
