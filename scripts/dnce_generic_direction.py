#!/usr/bin/env python
"""Direction test on unseen tasks under each task's own instruction and under a generic one: the mean of
the (normalised) training instructions' ψ. Also prints each unseen instruction's largest cosine to a
training instruction. Used in docs/results/decisionnce.md, session 9.

    python scripts/dnce_generic_direction.py DATA RUN SPLIT IMAGE_KEY
    python scripts/dnce_generic_direction.py data/dnce/libero runs/dnce_T_libero libero observation.images.agentview
"""
import sys, numpy as np, torch
torch.set_num_threads(1)
from policies.decisionnce.data import load_task_episodes
from policies.decisionnce.encoder import DualEncoder
from policies.decisionnce.rewards import embed_frames, segment_reward
from policies.decisionnce.exp_pretrain_eval import HOLDOUTS
data, run, split, key = sys.argv[1:5]
enc = DualEncoder.load(f"{run}/checkpoints/last/encoder").eval()
hold = HOLDOUTS[split]
held = load_task_episodes([data], [key], include=hold)
train = sorted(load_task_episodes([data], [key], exclude=hold, limit=1))
rng = np.random.default_rng(0)
with torch.no_grad():
    Ut = enc.encode_text(train); g = torch.nn.functional.normalize(Ut, dim=-1).mean(0, keepdim=True)
    for inst in sorted(held):
        u = enc.encode_text([inst])
        own, gen = [], []
        for ep in held[inst]:
            f = embed_frames(enc, ep.obs[key]); T = len(f)
            pr = np.sort(np.stack([rng.choice(T, 2, replace=False) for _ in range(20)]), 1)
            own.append((segment_reward(f[pr[:, 0]], f[pr[:, 1]], u.expand(20, -1), "T") > 0).float().mean().item())
            gen.append((segment_reward(f[pr[:, 0]], f[pr[:, 1]], g.expand(20, -1), "T") > 0).float().mean().item())
        cos = torch.nn.functional.cosine_similarity(u, Ut).max().item()
        print(f"own {np.mean(own):.2f}  generic {np.mean(gen):.2f}  max cos {cos:.2f}  {held[inst][0].attrs['task_name']}")
