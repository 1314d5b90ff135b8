"""The `policystack` command as a user runs it: help, errors that name the problem, the main job."""

import subprocess
import sys

import pytest

from policystack.cli import main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "policystack.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_help_lists_every_verb():
    out = _run("--help").stdout
    for verb in ("demos", "train", "eval", "envs", "quickstart"):
        assert verb in out
    train_help = _run("train", "--help").stdout
    assert "policy.type" in train_help and "resume" in train_help and "steps=5000" in train_help


@pytest.mark.sim
def test_unknown_task_is_one_clear_error():
    r = _run("demos", "--task", "rech-v3", "--out", "/tmp/never.hdf5")
    assert r.returncode == 2 and "unknown Meta-World task 'rech-v3'" in r.stderr and "reach-v3" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_and_corrupt_checkpoints(tmp_path, capsys):
    assert main(["eval", "--policy", str(tmp_path / "nope"), "--env", "reach-v3"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint" in err and "does not exist" in err
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "config.json").write_text('{"type": "bc"')
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"junk")
    assert main(["eval", "--policy", str(tmp_path / "ck"), "--env", "reach-v3"]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_dataset_with_wrong_keys(tmp_path, capsys):
    import h5py
    with h5py.File(tmp_path / "bad.hdf5", "w") as f:
        f.create_group("data/demo_0/obs")
    assert main(["train", f"dataset={tmp_path / 'bad.hdf5'}", f"output_dir={tmp_path / 'r'}"]) == 2
    assert "lacks 'actions'" in capsys.readouterr().err


@pytest.mark.sim
def test_quickstart_main_job(tmp_path):
    r = _run("quickstart", "--demos", "20", "--steps", "800", "--episodes", "5", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "success rate:" in r.stdout and "rollout video:" in r.stdout and "training curve:" in r.stdout
    video = [line.split(": ", 1)[1] for line in r.stdout.splitlines() if line.startswith("rollout video")][0]
    import os
    assert os.path.getsize(video) > 1000
