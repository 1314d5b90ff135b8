"""The `policystack decisionnce` verb: reward along an episode, pretrain via overrides, clear errors."""

import pytest

from policies.decisionnce.encoder import DualEncoder
from policystack.cli import main

from dnce_helpers import IMG, synthetic_world, write_groups


def test_reward_command_prints_and_plots(tmp_path, tiny_encoder_cfg, capsys):
    folder = write_groups(synthetic_world(2, 1, T=8), tmp_path / "data")
    DualEncoder(tiny_encoder_cfg).save(tmp_path / "enc")
    f = sorted(folder.glob("*.hdf5"))[0]
    assert main(["decisionnce", "reward", "--encoder", str(tmp_path / "enc"), "--data", str(f),
                 "--image-key", IMG, "--plot", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    assert "instruction: 'task number 0 goes left'" in out and len(out.splitlines()) >= 10
    assert (tmp_path / "r.png").stat().st_size > 1000
    assert main(["decisionnce", "reward", "--encoder", str(tmp_path / "enc"), "--data", str(f),
                 "--image-key", IMG, "--episode", "7"]) == 2          # DatasetError -> exit 2, message


def test_pretrain_command_with_overrides(tmp_path):
    folder = write_groups(synthetic_world(4, 1, T=6), tmp_path / "data")
    rc = main(["decisionnce", "pretrain", f"data=[{folder}]", f"image_key={IMG}", f"out_dir={tmp_path / 'run'}",
               "steps=2", "batch_size=4", "encoder.clip.image_resolution=32", "encoder.clip.vision_width=8",
               "encoder.clip.embed_dim=16", "encoder.clip.transformer_width=64", "encoder.clip.transformer_heads=1",
               "encoder.clip.transformer_layers=1", "encoder.clip.vocab_size=128", "encoder.clip.context_length=8"])
    assert rc == 0
    assert DualEncoder.load(tmp_path / "run/checkpoints/last/encoder").embed_dim == 16
    assert main(["decisionnce", "pretrain", "variant=Q"]) == 2
    # a held-out name the data lacks would silently train on everything: refused before training
    assert main(["decisionnce", "pretrain", f"data=[{folder}]", f"image_key={IMG}", f"out_dir={tmp_path / 'typo'}",
                 "steps=2", "batch_size=2", "holdout=[tsak0]"]) == 2
    assert not (tmp_path / "typo").exists()


def test_named_libero_split_is_the_last_two_tasks_of_each_scripted_suite():
    from policies.decisionnce.exp_pretrain_eval import HOLDOUTS
    from sim.libero_suites import task_info
    want = {task_info(s, i).language for s in ("libero_spatial", "libero_object", "libero_goal") for i in (8, 9)}
    assert set(HOLDOUTS["libero"]) == want


def test_libero90_near_duplicates_are_libero90_tasks_and_not_the_held_out_ones():
    from policies.decisionnce.exp_pretrain_eval import EXCLUDES, HOLDOUTS
    from sim.libero_suites import task_info
    l90 = {task_info("libero_90", i).language for i in range(90)}
    near = set(EXCLUDES["libero90_near"])
    assert near <= l90 and not near & set(HOLDOUTS["libero"])


@pytest.mark.parametrize("flag", ["--holdout", "--exclude"])
def test_evaluate_refuses_a_held_out_or_excluded_task_the_data_lacks(tmp_path, flag):
    folder = write_groups(synthetic_world(2, 1, T=6), tmp_path / "data")
    args = ["--holdout", "task0"] + [flag, "task1,no such task"]
    rc = main(["decisionnce", "evaluate", "--", "--data", str(folder), "--out", str(tmp_path / "run"),
               "--image-key", IMG, *args])
    assert rc == 2 and not (tmp_path / "run").exists()           # checked before any pretraining


def test_pretrain_keeps_excluded_tasks_out_of_training(tmp_path, caplog):
    folder = write_groups(synthetic_world(4, 1, T=6), tmp_path / "data")
    base = ["decisionnce", "pretrain", f"data=[{folder}]", f"image_key={IMG}", "steps=1", "batch_size=2",
            "encoder.clip.image_resolution=32", "encoder.clip.vision_width=8", "encoder.clip.embed_dim=16",
            "encoder.clip.transformer_width=64", "encoder.clip.transformer_heads=1",
            "encoder.clip.transformer_layers=1", "encoder.clip.vocab_size=128", "encoder.clip.context_length=8"]
    with caplog.at_level("INFO"):
        assert main(base + [f"out_dir={tmp_path / 'run'}", "holdout=[task0]", "exclude=[task1]"]) == 0
    assert "2 training instructions" in caplog.text
    assert main(base + [f"out_dir={tmp_path / 'typo'}", "exclude=[tsak1]"]) == 2
    assert not (tmp_path / "typo").exists()


def test_evaluate_starts_from_official_weights_strictly(tmp_path):
    """--init-from: a user's official-layout checkpoint is what gets evaluated (--steps 0) at the paper's
    κ = 100; a file that does not fit the named architecture stops the run before anything is written."""
    import json

    import torch

    from policies.decisionnce.configuration_decisionnce import EncoderConfig
    folder = write_groups(synthetic_world(3, 3, T=6), tmp_path / "data")
    cfg = EncoderConfig(text_tower="clip")               # what --encoder small --text-tower clip builds
    sd = DualEncoder(cfg).state_dict()
    torch.save({"model": sd, "epoch": 3}, tmp_path / "DecisionNCE-T")
    base = ["decisionnce", "evaluate", "--", "--data", str(folder), "--image-key", IMG, "--holdout", "task0",
            "--train-episodes", "2", "--text-tower", "clip", "--steps", "0", "--batch-size", "2",
            "--figures", str(tmp_path / "fig")]
    assert main(base + ["--out", str(tmp_path / "run"), "--init-from", str(tmp_path / "DecisionNCE-T")]) == 0
    got = DualEncoder.load(tmp_path / "run/checkpoints/last/encoder").state_dict()
    assert got.keys() == sd.keys() and all(torch.equal(got[k], sd[k]) for k in sd)
    from policies.decisionnce.configuration_decisionnce import PretrainConfig
    from policystack.config import load_json
    run_cfg = load_json(PretrainConfig, tmp_path / "run/pretrain_config.json")
    assert run_cfg.init_from.endswith("DecisionNCE-T") and run_cfg.scale == 100.0   # the paper's κ
    assert json.loads((tmp_path / "run/metrics.json").read_text())["trained"]["heldout_tasks"]["n_instructions"] == 1
    # the MiniLM-tower file named as a CLIP-text-tower encoder: a key mismatch, refused before any output
    torch.save({"model": DualEncoder(EncoderConfig(text_tower="minilm")).state_dict()}, tmp_path / "minilm.pth")
    assert main(base + ["--out", str(tmp_path / "bad"), "--init-from", str(tmp_path / "minilm.pth")]) == 2
    assert not (tmp_path / "bad").exists()
    # the paper's RN50 has CLIP's text tower only
    assert main(base[:3] + ["--encoder", "rn50", "--text-tower", "minilm", "--out", str(tmp_path / "x")]) == 2
