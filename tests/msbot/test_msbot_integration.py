"""Spec §6.3: mini MS-Bot on synthetic multi-stage episodes, trained by the real MS-Bot pipeline; and an
end-to-end smoke run on the simulated task (demos -> train -> closed-loop rollout)."""

import json

import numpy as np
import pytest
import torch

from policies.base import load_policy
from policies.msbot.data import MSBotDataset
from policies.msbot.synthetic import modality_keys, synthetic_episodes, write_synthetic
from policies.msbot.train_msbot import MSBotTrainConfig, train
from policystack.config import apply_overrides


def _train_synthetic(tmp_path, epochs, n_train=150, policy="msbot"):
    data = write_synthetic(tmp_path / "train.hdf5", n_train, seed=0)
    ov = [f"dataset={data}", f"output_dir={tmp_path / policy}", f"epochs={epochs}", "batch_size=128",
          "policy.n_obs_steps=3", "policy.tokenizer.n_frames=3", "policy.tokenizer.token_dim=32",
          "policy.tokenizer.history_len=20"]
    if policy == "msbot":
        ov += ["policy.gate_lambda=5", "policy.boundary_before=3", "policy.boundary_after=2"]
    else:
        ov = ["policy.type=concat_fusion"] + ov
    run = train(apply_overrides(MSBotTrainConfig(), ov), progress=False)
    p = load_policy(run)
    eps, st = synthetic_episodes(40, seed=1)
    ds = MSBotDataset(eps, modality_keys(), 3, p.codec.primitives.numpy(), 20, st, 3, 3, 2)
    b = ds.get_batch(np.arange(len(ds)))
    with torch.no_grad():
        logits, ex = p.action_logits(b)
    out = {"action_acc": float((logits.argmax(-1) == p.targets(b)).float().mean())}
    if ex.get("gate") is not None:
        out["gate_acc"] = float((ex["gate"].argmax(-1) == b["stage"]).float().mean())
        a = ex["attention_mass"]
        out["attention"] = np.array([a[b["stage"] == s].mean(0).numpy() for s in range(3)])
    return out


def test_mini_msbot_learns_actions_stages_and_stage_dependent_attention(tmp_path):
    r = _train_synthetic(tmp_path, epochs=6)
    att = r["attention"]
    assert r["action_acc"] > 0.9, r
    assert r["gate_acc"] > 0.7, r
    # the informative modality of a stage gets the most attention (2 of 3 stages after 6 epochs) ...
    assert sum(int(att[s].argmax() == s) for s in range(3)) >= 2, att
    # ... and each modality's attention moves between its informative and other stages
    shifts = [att[m, m] - max(att[s, m] for s in range(3) if s != m) for m in range(3)]
    assert sum(d > 0.2 for d in shifts) >= 2, att


@pytest.mark.slow
def test_mini_msbot_longer_training_attends_to_the_right_modality_in_every_stage(tmp_path):
    r = _train_synthetic(tmp_path, epochs=14)
    assert r["action_acc"] > 0.9 and r["gate_acc"] > 0.8, r
    assert all(r["attention"][s].argmax() == s for s in range(3)), r["attention"]


@pytest.mark.sim
def test_sim_demos_train_and_rollout(tmp_path):
    from policies.msbot.experiment import attention_by_stage, rollout, summarize
    from sim.multisensory_expert import generate_demos

    env_kwargs = {"image_size": 32, "audio_window_s": 0.2}
    demos = generate_demos(tmp_path / "demos.hdf5", 3, env_kwargs=env_kwargs, progress=False)
    cfg = apply_overrides(MSBotTrainConfig(), [
        f"dataset={demos}", f"output_dir={tmp_path / 'run'}", "epochs=2", "policy.tokenizer.channels=8",
        "policy.tokenizer.token_dim=16", "policy.n_heads=2", "policy.tokenizer.audio_stream=true"])
    run = train(cfg, progress=False)
    assert (run / "loss.png").exists() and (run / "metrics.jsonl").read_text().count("\n") == 2
    policy = load_policy(run)
    assert bool(policy.stage.ready)                        # stage tokens set after the warm-up epoch
    seen = []                                              # the diagnostic hook sees each step's info
    res = rollout(policy, 1, env_kwargs, progress=False, before_step=lambda info: seen.append(info["stage"]))
    assert res["n_episodes"] == 1 and len(res["steps"]) == res["episodes"][0]["length"]
    assert seen == [s["stage"] for s in res["steps"]]
    att = attention_by_stage(res["steps"])
    assert att is not None and att.shape[1] == 3
    # open loop on the demos: per-stage accuracies are the per-sample results grouped by the file's labels
    from policies.msbot.data import load_hdf5
    from policies.msbot.experiment import open_loop
    ol = open_loop(policy, demos)
    _, stages = load_hdf5(demos)
    n = np.bincount(np.concatenate(stages), minlength=3)
    assert 0.0 <= ol["action_acc"] <= 1.0 and 0.0 <= ol["gate_acc"] <= 1.0
    per = [a for a, k in zip(ol["action_acc_per_stage"], n) if k]
    assert np.isclose(sum(a * k for a, k in zip(per, n[n > 0])) / n.sum(), ol["action_acc"])
    # the experiment summary aggregates evaluations and reports each run's final training fit
    exp = tmp_path / "exp"
    (exp / "evals").mkdir(parents=True)
    (exp / "evals" / "msbot_s0_clean.json").write_text(json.dumps({**res, "method": "msbot", "seed": 0,
                                                                     "condition": "clean"}))
    (exp / "runs").mkdir()
    (exp / "runs" / "msbot_s0").symlink_to(run.resolve(), target_is_directory=True)
    summary = summarize(exp)
    assert summary["success"]["msbot"]["clean"]["per_seed"] == [res["success_rate"]]
    assert summary["training_final_epoch"]["msbot_s0"]["epoch"] == 1
    assert (exp / "summary.md").exists() and (exp / "msbot_success.png").exists()
    # resuming a finished run adds nothing and keeps the weights
    cfg2 = apply_overrides(cfg, ["resume=true"])
    train(cfg2, progress=False)
    assert (run / "metrics.jsonl").read_text().count("\n") == 2


def test_summary_pairs_msbot_with_each_method_on_shared_seeds():
    from policies.msbot.experiment import _paired_vs_msbot

    def ev(m, s, c, v):
        return {"method": m, "seed": s, "condition": c, "success_rate": v}
    evals = [ev("msbot", 0, "clean", 1.0), ev("msbot", 1, "clean", 0.5), ev("msbot", 2, "clean", 0.9),
             ev("concat", 0, "clean", 0.8), ev("concat", 1, "clean", 0.6), ev("concat", 3, "clean", 0.0),
             ev("msbot", 0, "audio", 0.4), ev("mulsa", 0, "audio", 0.4)]
    paired = _paired_vs_msbot(evals, ["clean", "audio"])
    assert set(paired) == {"concat", "mulsa"} and set(paired["concat"]) == {"clean"}
    rec = paired["concat"]["clean"]
    assert rec["seeds"] == [0, 1] and rec["diffs"] == pytest.approx([0.2, -0.1])   # seeds 2, 3 unpaired
    assert (rec["wins"], rec["ties"], rec["losses"]) == (1, 0, 1)
    assert paired["mulsa"]["audio"]["ties"] == 1
    assert _paired_vs_msbot([ev("concat", 0, "clean", 1.0)], ["clean"]) == {}


def test_validation_keeps_best_checkpoints_without_changing_training(tmp_path):
    """The reference's valid() each epoch: accuracy/CE on held-out episodes, best_acc / best_loss
    checkpoints; scoring must not consume randomness, so the last weights match a run without it."""
    data = write_synthetic(tmp_path / "train.hdf5", 24, seed=0)
    val = write_synthetic(tmp_path / "val.hdf5", 8, seed=1)
    ov = [f"dataset={data}", "epochs=3", "batch_size=64", "policy.n_obs_steps=3", "policy.tokenizer.n_frames=3",
          "policy.tokenizer.token_dim=16", "policy.n_heads=2", "policy.tokenizer.history_len=20"]
    plain = train(apply_overrides(MSBotTrainConfig(), ov + [f"output_dir={tmp_path / 'plain'}"]), progress=False)
    run = train(apply_overrides(MSBotTrainConfig(), ov + [f"output_dir={tmp_path / 'val'}", f"val_dataset={val}"]),
                progress=False)
    a, b = load_policy(plain).state_dict(), load_policy(run).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(0.0 <= m["val_acc"] <= 1.0 and m["val_ce"] > 0 for m in metrics)
    best = max(range(3), key=lambda e: (metrics[e]["val_acc"], -e))          # first epoch reaching the max
    assert int((run / "checkpoints" / "best_acc" / "epoch.txt").read_text()) == best
    low = min(range(3), key=lambda e: (metrics[e]["val_ce"], e))
    assert int((run / "checkpoints" / "best_loss" / "epoch.txt").read_text()) == low
    assert load_policy(run / "checkpoints" / "best_acc" / "pretrained").codec.n_classes == load_policy(run).codec.n_classes
