#!/usr/bin/env python
"""Direction test on unseen tasks under each task's own instruction, under a generic one (the mean ψ̄ of
the normalised training instructions' ψ) and under the own instruction centred, ψ/‖ψ‖ − ψ̄ (not in the
paper: it removes the part every training instruction shares). Also prints each unseen instruction's
largest cosine to a training instruction. Used in docs/results/decisionnce.md, sessions 9 and 11.

    python scripts/dnce_generic_direction.py DATA RUN SPLIT IMAGE_KEY
    python scripts/dnce_generic_direction.py data/dnce/libero runs/dnce_T_libero libero observation.images.agentview \
        --train-episodes 8
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F


def direction_rates(enc, episodes: dict, image_key: str, instructions: dict, n: int, rng) -> dict:
    """{instruction: {name: fraction of n random sorted segments per episode with r(fwd) > r(rev)}, "psi": ψ}
    where ``instructions`` maps a name to a function of the task's own ψ giving the text feature used."""
    from policies.decisionnce.rewards import embed_frames, segment_reward
    out = {}
    for inst in sorted(episodes):
        own = enc.encode_text([inst])
        hits = {k: [] for k in instructions}
        for ep in episodes[inst]:
            f = embed_frames(enc, ep.obs[image_key])
            pairs = np.sort(np.stack([rng.choice(len(f), 2, replace=False) for _ in range(n)]), 1)
            vs, ve = f[pairs[:, 0]], f[pairs[:, 1]]
            for name, text in instructions.items():
                u = text(own).expand(n, -1)
                hits[name].append((segment_reward(vs, ve, u, "T") > segment_reward(ve, vs, u, "T")).float().mean().item())
        out[inst] = {k: float(np.mean(v)) for k, v in hits.items()} | {"psi": own}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="episode files or folders, comma-separated (as the run's --data)")
    p.add_argument("run", help="a pretraining run folder (checkpoints/last/encoder)")
    p.add_argument("split", help="a named held-out split of exp_pretrain_eval (mt50, ml45, libero)")
    p.add_argument("image_key")
    p.add_argument("--exclude", default="", help="the run's --exclude (kept out of the training instructions)")
    p.add_argument("--segments", type=int, default=20, help="random segments per episode")
    p.add_argument("--train-episodes", type=int, default=None,
                   help="the run's --train-episodes: also test the training tasks' later (held-out) demos")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from policies.decisionnce.data import load_task_episodes
    from policies.decisionnce.encoder import DualEncoder
    from policies.decisionnce.exp_pretrain_eval import EXCLUDES, HOLDOUTS, names_arg
    from policies.decisionnce.rewards import centred_text, text_baseline

    enc = DualEncoder.load(f"{args.run}/checkpoints/last/encoder").eval()
    hold, data = HOLDOUTS[args.split], args.data.split(",")
    held = load_task_episodes(data, [args.image_key], include=hold)
    train_eps = load_task_episodes(data, [args.image_key], exclude=hold + names_arg(args.exclude, EXCLUDES),
                                   limit=None if args.train_episodes is not None else 1, strict=True)
    train = sorted(train_eps)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        U_train = enc.encode_text(train)
        generic = text_baseline(U_train)[None]
        texts = {"own": lambda u: u, "generic": lambda u: generic, "centred": lambda u: centred_text(u, generic)}
        for inst, r in direction_rates(enc, held, args.image_key, texts, args.segments, rng).items():
            cos = F.cosine_similarity(r["psi"], U_train).max().item()
            print("  ".join(f"{k} {r[k]:.2f}" for k in texts), f" max cos {cos:.2f}  {held[inst][0].attrs['task_name']}")
        if args.train_episodes is not None:
            seen = {k: v[args.train_episodes:] for k, v in train_eps.items() if len(v) > args.train_episodes}
            r = direction_rates(enc, seen, args.image_key, texts, args.segments, rng)
            print("  ".join(f"{k} {np.mean([x[k] for x in r.values()]):.2f}" for k in texts),
                  f" training tasks' held-out demos, mean over {len(r)} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
