"""The optional pretrain stage: a base RGB policy on *other* tasks (the paper's RoboFlamingo checkpoint)
from which RGB-RF and RGB-D-RF are both fine-tuned, and its use in the experiment (one shared
pretrain for every seed)."""

from __future__ import annotations

import json
import shutil

import pytest

from policystack.checkpoint import WEIGHTS_NAME
from policystack.config import ConfigError
from policies.di2.train_di2 import DI2TrainConfig, train

from di2_helpers import changed_keys, stage_weights, IMAGE_SIZE, TASKS, tiny_overrides, tiny_policy_config

pytestmark = pytest.mark.sim


def _cfg(dataset, pretrain, out, **kw) -> DI2TrainConfig:
    base = dict(dataset=dataset, pretrain_dataset=pretrain, output_dir=str(out), policy=tiny_policy_config(),
                batch_size=8, steps_pretrain=20, steps_rgb=10, steps_rgbd=0, lr=1e-3, warmup_steps=5,
                val_every=3, stages=("pretrain", "rgb", "rgbd"))
    base.update(kw)
    return DI2TrainConfig(**base)




def test_rgb_rf_and_rgbd_rf_are_both_fine_tuned_from_the_pretrained_policy(mw_rgbd_dataset, toy_blocks_dataset,
                                                                            tmp_path):
    out = tmp_path / "run"
    train(_cfg(mw_rgbd_dataset, (toy_blocks_dataset,), out))
    pre, rgb, rgbd = (stage_weights(out, s) for s in ("pretrain", "rgb", "rgbd"))
    # RGB-RF fine-tune: the conv encoder and LM blocks stay as pretrained (frozen CLIP / MPT), the
    # resampler and the policy head learn
    changed = changed_keys(pre, rgb)
    assert changed and not any(k.startswith(("rgb_encoder.", "fusion.lm", "fusion.norm", "depth_")) for k in changed)
    assert any(k.startswith("rgb_resampler.") for k in changed) and any(k.startswith("lstm.") for k in changed)
    # RGB-D-RF starts from the pretrained weights, not from RGB-RF (0 steps: it *is* the pretrained policy)
    assert not changed_keys(pre, rgbd)
    assert changed_keys(rgb, rgbd)
    m = json.loads((out / "stages" / "pretrain" / "pretrained" / "metrics.json").read_text())
    assert m["steps"] == 20 and "heldout_action_loss" in m      # zero-shot loss on the target tasks
    # a re-run finds every stage done and changes nothing
    mtime = (out / "stages" / "rgb" / "pretrained" / WEIGHTS_NAME).stat().st_mtime_ns
    train(_cfg(mw_rgbd_dataset, (toy_blocks_dataset,), out))
    assert (out / "stages" / "rgb" / "pretrained" / WEIGHTS_NAME).stat().st_mtime_ns == mtime


def test_pretrain_config_errors_name_the_problem(mw_rgbd_dataset, tmp_path):
    with pytest.raises(ConfigError, match="pretrain_dataset"):
        DI2TrainConfig(dataset=mw_rgbd_dataset, stages=("pretrain", "rgb"))
    with pytest.raises(ConfigError, match="prefix"):
        DI2TrainConfig(dataset=mw_rgbd_dataset, pretrain_dataset=mw_rgbd_dataset[:1], stages=("rgb",))
    # the base policy must not have seen the target tasks
    with pytest.raises(ConfigError, match="other tasks"):
        train(_cfg(mw_rgbd_dataset, mw_rgbd_dataset[:1], tmp_path / "x"))


def test_experiment_shares_one_pretrained_policy_across_seeds(mw_rgbd_dataset, tmp_path):
    from policystack.cli import main
    data = tmp_path / "data"
    data.mkdir()
    target, other = TASKS[1], TASKS[0]
    for task in (target, other):
        shutil.copy(next(p for p in mw_rgbd_dataset if task in p), data / f"{task}_{IMAGE_SIZE}px_3.hdf5")
    out = tmp_path / "exp"
    rc = main(["di2", "experiment", f"tasks={target}", f"pretrain_tasks={other}", "n_pretrain_demos=3",
               f"image_size={IMAGE_SIZE}", "n_demos=3", "seeds=0,1", "n_eval_episodes=1", "max_episode_steps=2",
               f"output_dir={out}", f"data_dir={data}", "conditions=rgb,rgbd_nodepth"]
              + [f"train.{o}" for o in tiny_overrides()]
              + ["train.steps_pretrain=3", "train.steps_rgb=2", "train.steps_rgbd=2", "train.steps_dcm=2",
                 "train.steps_dac=2", "train.steps_di2=2", "train.batch_size=4", "train.token_batch_size=8",
                 "train.val_every=3"])
    assert rc == 0
    shared = stage_weights(out / "pretrain", "pretrain")
    for seed in (0, 1):
        assert not changed_keys(shared, stage_weights(out / f"seed_{seed}", "pretrain"))
        cfg = json.loads((out / f"seed_{seed}" / "train_config.json").read_text())
        assert cfg["stages"][0] == "pretrain" and cfg["pretrain_dataset"]
    assert changed_keys(stage_weights(out / "seed_0", "rgb"), stage_weights(out / "seed_1", "rgb"))
    summary = json.loads((out / "summary.json").read_text())
    assert all(len(r["per_seed"]) == 2 for r in summary["conditions"].values())
    assert "pretrain" in summary["offline"]["0"]
