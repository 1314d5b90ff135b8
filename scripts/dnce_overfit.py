#!/usr/bin/env python
"""Can the DecisionNCE encoder fit the InfoNCE objective at all? A tiny diagnostic on Meta-World demos:
the first ``--tasks`` task files, ``--eps`` demos each, no augmentation, batch ``--bs``.

``--fixed 1`` repeats one batch of segments (pure optimisation check: the loss must reach ~0);
otherwise every step draws new random segments (can it learn the tasks it trains on?).
Prints the mean loss / matching accuracy over each 50 steps, and the features' spread at init.

    nice -n 10 python scripts/dnce_overfit.py --fixed 1 --steps 200
    nice -n 10 python scripts/dnce_overfit.py --steps 800 --variant T --scale 100
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/dnce/mt50")
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--eps", type=int, default=2)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--scale", type=float, default=100.0)
    p.add_argument("--variant", default="T", choices=("P", "T"))
    p.add_argument("--bs", type=int, default=8)
    p.add_argument("--fixed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    from policies.decisionnce.configuration_decisionnce import EncoderConfig
    from policies.decisionnce.data import (SegmentDataset, UniqueInstructionBatchSampler, collate_segments,
                                           load_task_episodes)
    from policies.decisionnce.encoder import DualEncoder
    from policies.decisionnce.losses import decisionnce_loss
    from policies.decisionnce.train_decisionnce import param_groups

    key = "observation.images.corner2"
    files = [str(f) for f in sorted(Path(a.data).glob("*.hdf5"))[:a.tasks]]
    groups = load_task_episodes(files, [key], limit=a.eps)
    enc = DualEncoder(EncoderConfig(text_tower="minilm"))
    ds = SegmentDataset(groups, key, 2, enc.resolution, augment=False, seed=a.seed)
    sampler = UniqueInstructionBatchSampler(len(ds), a.bs, seed=a.seed)
    opt = torch.optim.Adam(param_groups(enc, 1e-3, a.lr), lr=a.lr, eps=1e-6)
    with torch.no_grad():
        b = collate_segments([ds[i] for i in range(len(ds))])
        for mode in ("eval", "train"):
            enc.train(mode == "train")
            v, _ = enc(b["frames"], b["task"])
            vn = F.normalize(v.reshape(-1, v.shape[-1]), dim=-1)
            d = v[:, 1] - v[:, 0]
            print(f"init ({mode} mode): mean cos between frames {(vn @ vn.T).mean():.6f}, "
                  f"|v_e - v_s| / |v_s| {(d.norm(dim=-1) / v[:, 0].norm(dim=-1)).mean():.2e}")
    enc.train()
    fixed = collate_segments([ds[i] for i in range(a.bs)]) if a.fixed else None
    step, epoch, win, t0 = 0, 0, [], time.time()
    while step < a.steps:
        sampler.set_epoch(epoch)
        epoch += 1
        for idx in sampler:
            batch = fixed if fixed is not None else collate_segments([ds[i] for i in idx])
            v, u = enc(batch["frames"], batch["task"])
            loss, logs = decisionnce_loss(v, u, a.variant, a.scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            win.append((logs["loss"], logs["acc"]))
            if step % 50 == 0:
                w = np.array(win)
                win = []
                print(f"step {step} loss {w[:, 0].mean():.3f} acc {w[:, 1].mean():.2f} ({time.time() - t0:.0f}s)",
                      flush=True)
            if step >= a.steps:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
