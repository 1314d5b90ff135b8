#!/usr/bin/env python
"""Direction test on unseen tasks under each task's own instruction and under a generic one: the mean of
the (normalised) training instructions' ψ. Also prints each unseen instruction's largest cosine to a
training instruction. Used in docs/results/decisionnce.md, session 9.

    python scripts/dnce_generic_direction.py DATA RUN SPLIT IMAGE_KEY
    python scripts/dnce_generic_direction.py data/dnce/libero runs/dnce_T_libero libero observation.images.agentview
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="episode files or folders, comma-separated (as the run's --data)")
    p.add_argument("run", help="a pretraining run folder (checkpoints/last/encoder)")
    p.add_argument("split", help="a named held-out split of exp_pretrain_eval (mt50, ml45, libero)")
    p.add_argument("image_key")
    p.add_argument("--exclude", default="", help="the run's --exclude (kept out of the training instructions)")
    p.add_argument("--segments", type=int, default=20, help="random segments per episode")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from policies.decisionnce.data import load_task_episodes
    from policies.decisionnce.encoder import DualEncoder
    from policies.decisionnce.exp_pretrain_eval import EXCLUDES, HOLDOUTS, names_arg
    from policies.decisionnce.rewards import embed_frames, segment_reward

    enc = DualEncoder.load(f"{args.run}/checkpoints/last/encoder").eval()
    hold, data = HOLDOUTS[args.split], args.data.split(",")
    held = load_task_episodes(data, [args.image_key], include=hold)
    train = sorted(load_task_episodes(data, [args.image_key], exclude=hold + names_arg(args.exclude, EXCLUDES),
                                      limit=1, strict=True))
    rng = np.random.default_rng(0)
    n = args.segments
    with torch.no_grad():
        U_train = enc.encode_text(train)
        generic = F.normalize(U_train, dim=-1).mean(0, keepdim=True)
        for inst in sorted(held):
            own = enc.encode_text([inst])
            hits = {"own": [], "generic": []}
            for ep in held[inst]:
                f = embed_frames(enc, ep.obs[args.image_key])
                pairs = np.sort(np.stack([rng.choice(len(f), 2, replace=False) for _ in range(n)]), 1)
                vs, ve = f[pairs[:, 0]], f[pairs[:, 1]]
                for name, u in (("own", own), ("generic", generic)):
                    fwd = segment_reward(vs, ve, u.expand(n, -1), "T")
                    bwd = segment_reward(ve, vs, u.expand(n, -1), "T")
                    hits[name].append((fwd > bwd).float().mean().item())
            cos = F.cosine_similarity(own, U_train).max().item()
            print(f"own {np.mean(hits['own']):.2f}  generic {np.mean(hits['generic']):.2f}  "
                  f"max cos {cos:.2f}  {held[inst][0].attrs['task_name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
