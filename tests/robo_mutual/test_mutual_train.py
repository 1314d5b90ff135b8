"""Training loop end to end on tiny files (goals from a saved encoder, means from other data),
resume, the CLI, and a closed-loop rollout in Meta-World."""

import json

import numpy as np
import pytest
import torch

from policies.base import load_policy
from policies.common.clip import CLIPConfig
from policies.decisionnce.configuration_decisionnce import EncoderConfig
from policies.decisionnce.encoder import DualEncoder
from policies.robo_mutual import RoboMutualConfig
from policies.robo_mutual.train_robo_mutual import MutualTrainConfig, lr_lambda, train
from policystack import keys as K
from policystack.dataset import Episode, EpisodeWriter
from policystack.errors import ConfigError, DatasetError
from policystack.spec import Feature, Spec

CAMS = (K.image_key("corner2"), K.image_key("gripperPOV"))


def _write(folder, tasks, n_eps=2, T=10, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, inst in tasks.items():
        feats = Spec.of([Feature(c, (32, 32, 3), "uint8") for c in CAMS] +
                        [Feature(K.STATE, (39,), "float32"), Feature(K.TASK, (), "str"), Feature(K.ACTION, (4,), "float32")])
        with EpisodeWriter(folder / f"{name}.hdf5", features=feats, language=inst) as w:
            for _ in range(n_eps):
                w.add(Episode(obs={**{c: rng.integers(0, 255, (T, 32, 32, 3), dtype=np.uint8) for c in CAMS},
                                   K.STATE: rng.normal(size=(T, 39)).astype(np.float32)},
                              actions=rng.uniform(-1, 1, (T, 4)).astype(np.float32), rewards=np.zeros(T, np.float32),
                              dones=np.zeros(T, np.uint8), task=inst))
    return folder


@pytest.fixture
def setup(tmp_path):
    clip = CLIPConfig(embed_dim=16, image_resolution=32, vision_layers=(1, 1, 1, 1), vision_width=8, context_length=8,
                      vocab_size=128, transformer_width=64, transformer_heads=1, transformer_layers=1)
    DualEncoder(EncoderConfig(clip=clip)).save(tmp_path / "enc")
    _write(tmp_path / "policy", {"reach-v3": "reach the goal position", "push-v3": "push the puck to the goal"})
    _write(tmp_path / "other", {"door-open-v3": "open the door", "drawer-open-v3": "open the drawer",
                                "reach-v3": "reach the goal position"}, seed=1)
    return tmp_path


def _cfg(tmp_path, **kw):
    p = RoboMutualConfig(backbone_width=8, warmup_steps=2, **kw.pop("policy", {}))
    return MutualTrainConfig(data=(str(tmp_path / "policy"),), gap_data=(str(tmp_path / "other"),),
                             encoder_path=str(tmp_path / "enc"), image_keys=CAMS, policy=p, steps=4, batch_size=4,
                             out_dir=str(tmp_path / "run"), log_every=1, save_every=2, **kw)


def test_train_fits_means_on_other_tasks_only_and_resumes(setup):
    out = train(_cfg(setup, policy={"train_goal_modality": "image"}))
    pol = load_policy(out)
    assert pol.config.task_names == ("push the puck to the goal", "reach the goal position")
    assert pol.gap.mu_text.abs().sum() > 0 and pol.goal_image.abs().sum() > 0
    # μ_text is the mean over the *other* tasks' instructions (reach-v3 is excluded from gap data)
    enc = DualEncoder.load(setup / "enc")
    with torch.no_grad():
        want = enc.encode_text(["open the door", "open the drawer"]).mean(0)
    assert torch.allclose(pol.gap.mu_text, want, atol=1e-5)
    import dataclasses
    train(dataclasses.replace(_cfg(setup, policy={"train_goal_modality": "image"}), steps=6), resume=True)
    hist = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist] == [1, 2, 3, 4, 5, 6]


def test_collapse_without_other_data_is_an_error(setup):
    import dataclasses
    with pytest.raises(ConfigError, match="gap_data"):
        train(dataclasses.replace(_cfg(setup), gap_data=()))
    with pytest.raises(DatasetError):
        train(dataclasses.replace(_cfg(setup), tasks=("nonexistent-v3",)))


def test_lr_schedule_warms_up_from_a_tenth_then_decays_to_min():
    assert lr_lambda(0, 100, 1000, 1e-6 / 3e-4) == pytest.approx(0.1)
    assert lr_lambda(100, 100, 1000, 0.01) == pytest.approx(1.0)
    assert lr_lambda(1000, 100, 1000, 0.01) == pytest.approx(0.01)


def test_cli_train(setup, tmp_path):
    from policystack.cli import main
    from policystack import config as cfgmod
    cfgmod.save_json(_cfg(setup), tmp_path / "cfg.json")
    assert main(["robo_mutual", "train", "--config", str(tmp_path / "cfg.json"), "steps=2",
                 f"out_dir={tmp_path / 'cli'}", "policy.head=mse"]) == 0
    assert load_policy(tmp_path / "cli").config.head == "mse"


@pytest.mark.sim
def test_batched_rollout_in_metaworld(setup):
    from policies.decisionnce.rollout import rollout_task
    pol = load_policy(train(_cfg(setup)))
    res = rollout_task(pol, "reach-v3", 3, ("corner2", "gripperPOV"), image_size=32, max_steps=6, n_envs=2)
    assert [r["init_state_index"] for r in res] == [0, 1, 2]
    assert all(1 <= r["length"] <= 6 and isinstance(r["success"], bool) for r in res)
