import json

import pytest
import torch
from safetensors.torch import load_file

from policystack import config as C
from policystack.errors import ConfigError, DatasetError, SpecMismatchError
from policystack.training import TrainConfig, train


def _cfg(data, out, *extra):
    return C.apply_overrides(TrainConfig(), [f"dataset={data}", f"output_dir={out}", "batch_size=16",
                                             "policy.modalities=state", "log_every=5", *extra])


def test_resume_continues_exactly(reach_demos, tmp_path):
    straight = train(_cfg(reach_demos, tmp_path / "a", "steps=20", "save_every=10"))
    half = train(_cfg(reach_demos, tmp_path / "b", "steps=10", "save_every=10"))
    resumed = train(_cfg(reach_demos, tmp_path / "b", "steps=20", "save_every=10", "resume=true"))
    assert resumed == half
    wa = load_file(straight / "checkpoints/last/pretrained/model.safetensors")
    wb = load_file(resumed / "checkpoints/last/pretrained/model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    steps = [json.loads(line)["step"] for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20]
    assert (resumed / "loss.png").stat().st_size > 1000 and (resumed / "config.json").exists()


def test_existing_run_needs_resume(reach_demos, tmp_path):
    train(_cfg(reach_demos, tmp_path / "r", "steps=2", "save_every=2"))
    with pytest.raises(ConfigError, match="resume=true"):
        train(_cfg(reach_demos, tmp_path / "r", "steps=2", "save_every=2"))


def test_loss_decreases(reach_demos, tmp_path):
    run = train(_cfg(reach_demos, tmp_path / "l", "steps=300", "save_every=300", "log_every=50"))
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.5 * losses[0]


def test_dataset_without_needed_keys_fails_before_training(reach_demos, tmp_path):
    with pytest.raises(SpecMismatchError, match="bc"):
        train(_cfg(reach_demos, tmp_path / "x", "steps=2", "policy.modalities=images"))
    with pytest.raises(DatasetError, match="no dataset"):
        train(C.apply_overrides(TrainConfig(), [f"output_dir={tmp_path / 'y'}"]))
