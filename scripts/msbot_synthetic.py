#!/usr/bin/env python
"""Spec §6.3 benchmarks behind the tests, with their numbers printed (for docs/results/msbot.md):

1. OGM / OGM-GE on the two-modality toy (3 seeds): weak-modality carved-head accuracy, mean k of the
   dominant modality, dominant/weak first-layer gradient ratio.
2. Mini MS-Bot (and Concat) on synthetic 3-stage episodes: action / gate accuracy on 40 held-out episodes
   and the attention mass per stage (rows) and modality (columns; modality i is informative in stage i).

    nice -n 10 .venv/bin/python scripts/msbot_synthetic.py --out runs/msbot_synthetic
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/msbot_synthetic")
    ap.add_argument("--steps", type=int, default=1500, help="OGM toy optimiser steps")
    ap.add_argument("--epochs", nargs="+", type=int, default=[6, 14], help="mini MS-Bot epochs")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from policies.msbot.synthetic import modality_keys, ogm_two_modality_toy, synthetic_episodes, write_synthetic
    from policies.msbot.data import MSBotDataset
    from policies.msbot.train_msbot import MSBotTrainConfig, train
    from policies.base import load_policy
    from policystack.config import apply_overrides

    report: dict = {"ogm_toy": {}}
    for m in ("none", "ogm", "ogm_ge"):
        rs = [ogm_two_modality_toy(m, s, args.steps) for s in range(3)]
        report["ogm_toy"][m] = {k: [r[k] for r in rs] for k in rs[0]}
        print(m, {k: f"{np.mean(v):.3f} ± {np.std(v):.3f}" for k, v in report["ogm_toy"][m].items()}, flush=True)
    data = write_synthetic(out / "train.hdf5", 150, seed=0)
    eps, st = synthetic_episodes(40, seed=1)
    for policy, epochs in [("msbot", e) for e in args.epochs] + [("concat_fusion", args.epochs[0])]:
        run = Path(tempfile.mkdtemp(prefix=f"{policy}{epochs}_", dir=out))
        ov = [f"policy.type={policy}", f"dataset={data}", f"output_dir={run}", f"epochs={epochs}", "batch_size=128",
              "policy.n_obs_steps=3", "policy.tokenizer.n_frames=3", "policy.tokenizer.token_dim=32",
              "policy.tokenizer.history_len=20"]
        if policy == "msbot":
            ov += ["policy.gate_lambda=5", "policy.boundary_before=3", "policy.boundary_after=2"]
        train(apply_overrides(MSBotTrainConfig(), ov), progress=False)
        p = load_policy(run)
        ds = MSBotDataset(eps, modality_keys(), 3, p.codec.primitives.numpy(), 20, st, 3, 3, 2)
        b = ds.get_batch(np.arange(len(ds)))
        with torch.no_grad():
            logits, ex = p.action_logits(b)
        r = {"action_acc": float((logits.argmax(-1) == p.targets(b)).float().mean())}
        if ex.get("gate") is not None:
            r["gate_acc"] = float((ex["gate"].argmax(-1) == b["stage"]).float().mean())
            a = ex["attention_mass"]
            r["attention"] = [a[b["stage"] == s].mean(0).tolist() for s in range(3)]
        report[f"{policy}_{epochs}ep"] = r
        print(policy, epochs, json.dumps(r), flush=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
