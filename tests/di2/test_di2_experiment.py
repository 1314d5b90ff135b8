"""The DI² experiment command end to end, at toy size (training quality is not judged here)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from di2_helpers import IMAGE_SIZE, TASKS, tiny_overrides

pytestmark = pytest.mark.sim


def test_experiment_trains_each_seed_and_evaluates_every_condition(mw_rgbd_dataset, tmp_path):
    from policystack.cli import main
    data = tmp_path / "data"
    data.mkdir()
    task = TASKS[1]
    # reuse the session's demos under the name the experiment looks for (3 demos, 32 px)
    shutil.copy(next(p for p in mw_rgbd_dataset if task in p), data / f"{task}_{IMAGE_SIZE}px_3.hdf5")
    out = tmp_path / "exp"
    fig = tmp_path / "fig.png"
    rc = main(["di2", "experiment", "--figure", str(fig), f"tasks={task}", f"image_size={IMAGE_SIZE}", "n_demos=3", "seeds=0",
               "n_eval_episodes=1", "max_episode_steps=3", f"output_dir={out}", f"data_dir={data}",
               "conditions=rgb,rgbd_nodepth,dcm_nodac,di2,di2_gt"]
              + [f"train.{o}" for o in tiny_overrides()]
              + ["train.steps_rgb=2", "train.steps_rgbd=2", "train.steps_dcm=3", "train.steps_dac=3",
                 "train.steps_di2=2", "train.batch_size=4", "train.token_batch_size=8", "train.val_every=3"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["conditions"]) == {"rgb", "rgbd_nodepth", "dcm_nodac", "di2", "di2_gt"}
    for cond, r in summary["conditions"].items():
        assert len(r["per_seed"]) == 1 and 0.0 <= r["mean"] <= 1.0
        res = json.loads((out / "seed_0" / "eval" / cond / f"{task}.json").read_text())
        assert res["episodes"][0]["length"] == 3
        # the simulator-free number: held-out action loss with the condition's own depth source
        assert len(r["heldout_loss_per_seed"]) == 1 and math.isfinite(r["heldout_loss_mean"])
    assert "dcm" in summary["offline"]["0"] and "dac" in summary["offline"]["0"]
    assert fig.is_file() and fig.stat().st_size < 300_000
    # a second call finds every result cached and trains nothing
    mtime = (out / "seed_0" / "stages" / "di2" / "pretrained" / "model.safetensors").stat().st_mtime_ns
    assert main(["di2", "experiment", "--config", str(out / "experiment_config.json")]) == 0
    assert (out / "seed_0" / "stages" / "di2" / "pretrained" / "model.safetensors").stat().st_mtime_ns == mtime
    # summary-only tables what is cached: a seed that never ran is absent, and nothing is trained
    rc = main(["di2", "experiment", "--config", str(out / "experiment_config.json"), "--summary-only",
               "seeds=0,7"])
    assert rc == 0
    assert not (out / "seed_7").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert all(len(r["per_seed"]) == 1 for r in summary["conditions"].values())
