#!/usr/bin/env python
"""Short DecisionNCE pretraining runs on the Meta-World data with config overrides (the session-2
diagnosis table in docs/results/decisionnce.md): trains ``steps`` (default 500) on the 40 training
tasks, then prints one line with the last training batches and the held-out metrics.

    nice -n 10 python scripts/dnce_sweep.py base logit_scale=100 lr=3e-4 weight_decay=1e-3
    nice -n 10 python scripts/dnce_sweep.py k14_light logit_scale=14.3 lr=1e-3 weight_decay=0 \
        brightness=0.1 crop_scale=[0.8,1.0]

Unlisted fields keep session 1's run: lr 3e-4, 200 warm-up steps, crop (0.5, 1), brightness 0.2,
MiniLM text tower, first 10 demos per task for training.
"""

import json
import sys
import time

import numpy as np
import torch


def main(argv) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    torch.set_num_threads(1)
    from policies.decisionnce.configuration_decisionnce import EncoderConfig, PretrainConfig
    from policies.decisionnce.data import load_task_episodes
    from policies.decisionnce.encoder import DualEncoder
    from policies.decisionnce.evaluate_decisionnce import representation_metrics
    from policies.decisionnce.exp_pretrain_eval import HOLDOUT
    from policies.decisionnce.train_decisionnce import pretrain
    from policystack import config as cfgmod

    name, overrides = argv[0], argv[1:]
    data, key = "data/dnce/mt50", "observation.images.corner2"
    cfg = PretrainConfig(data=(data,), holdout=HOLDOUT, episodes_per_task=10, out_dir=f"runs/dnce_sweep/{name}",
                         encoder=EncoderConfig(text_tower="minilm"), steps=500, lr=3e-4, warmup_steps=200,
                         crop_scale=(0.5, 1.0), brightness=0.2, log_every=25, save_every=100000)
    cfg = cfgmod.apply_overrides(cfg, overrides)
    t0 = time.time()
    out = pretrain(cfg)
    train_s = time.time() - t0
    last = json.loads((out / "history.json").read_text())[-4:]
    enc = DualEncoder.load(out / "checkpoints/last/encoder")
    seen = {k: v[10:] for k, v in load_task_episodes([data], [key], exclude=HOLDOUT).items()}
    held = load_task_episodes([data], [key], include=HOLDOUT)
    ms = representation_metrics(enc, seen, key, cfg.variant, segments_per_episode=10, text_rounds=50)
    mh = representation_metrics(enc, held, key, cfg.variant, segments_per_episode=10, text_rounds=50)
    row = {"name": name, "overrides": overrides, "scale": cfg.scale, "train_seconds": train_s,
           "last_loss": float(np.mean([h["loss"] for h in last])), "last_acc": float(np.mean([h["acc"] for h in last])),
           "seen": {k: ms[k] for k in ("seg2text_top1", "direction", "spearman_potential", "spearman_progress")},
           "heldout": {k: mh[k] for k in ("seg2text_top1", "direction", "spearman_potential", "spearman_progress")}}
    (out / "sweep.json").write_text(json.dumps(row, indent=2))
    print(f"RESULT {name} {' '.join(overrides)} | train {train_s:.0f}s loss {row['last_loss']:.3f} "
          f"acc {row['last_acc']:.3f} | seen: s2t {ms['seg2text_top1']:.3f} dir {ms['direction']:.3f} "
          f"spP {ms['spearman_potential']:.2f} | held: s2t {mh['seg2text_top1']:.3f} dir {mh['direction']:.3f} "
          f"spP {mh['spearman_potential']:.2f} spT {mh['spearman_progress']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
