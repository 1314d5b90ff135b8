"""Does the DCM beat predict-the-mean given more steps? Continue stage 1 of a finished DI² run.

Loads ``<run>/stages/dcm/pretrained`` (encoders, resamplers and DCM after stage 1), rebuilds the
stage's frozen-token cache exactly as training did, trains only the DCM for ``--steps`` more steps
and prints the held-out MSE(DCM(R), D) against the predict-the-mean-token baseline. Writes nothing
into the run (a copy of the config points at a scratch output dir).

    .venv/bin/python scripts/di2_dcm_longer.py outputs/di2_libero/exp/seed_0 --steps 4000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from policystack import config as cfgmod
    from policies.di2.train_di2 import DI2TrainConfig, StageRunner, _lr_at, _optimizer, STAGE_PLAN
    cfg = cfgmod.load_json(DI2TrainConfig, args.run / "train_config.json")
    cfg = dataclasses.replace(cfg, output_dir="/tmp/di2_dcm_longer")
    runner = StageRunner(cfg)
    runner._load_into_policy(args.run / "stages" / "dcm" / "pretrained")
    policy = runner.policy
    policy.set_trainable(STAGE_PLAN["dcm"][0])
    runner._ensure_token_cache()
    base = runner.mean_token_baseline()
    done = json.loads((args.run / "stages" / "dcm" / "pretrained" / "metrics.json").read_text())["steps"]
    opt = _optimizer(policy, "dcm", cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 123)
    rows = [{"step": done, "val_dcm_mse": runner.heldout("dcm")["val_dcm_mse"]}]
    print(f"predict-the-mean MSE {base:.3e}; step {done}: DCM {rows[0]['val_dcm_mse']:.3e}", flush=True)
    t0 = time.time()
    for i in range(1, args.steps + 1):
        policy.train()
        idx = torch.randint(0, len(runner.tok_train[0]), (cfg.token_batch_size,), generator=gen)
        loss, _ = policy.dcm_loss(runner.tok_train[0][idx].flatten(0, 1), runner.tok_train[1][idx].flatten(0, 1))
        for g in opt.param_groups:
            g["lr"] = _lr_at(done + i, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i % args.every == 0:
            rows.append({"step": done + i, "val_dcm_mse": runner.heldout("dcm")["val_dcm_mse"]})
            print(f"step {done + i}: DCM {rows[-1]['val_dcm_mse']:.3e} "
                  f"(ratio to the mean baseline {rows[-1]['val_dcm_mse'] / base:.2f}, {time.time() - t0:.0f}s)",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run), "mean_token_baseline_mse": base, "history": rows},
                                        indent=1))


if __name__ == "__main__":
    main()
