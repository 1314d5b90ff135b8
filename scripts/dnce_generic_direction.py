#!/usr/bin/env python
"""Direction test on unseen tasks under several text features:

- own: the task's own instruction ψ;
- generic: the mean ψ̄ of the normalised training instructions' ψ;
- centred: ψ/‖ψ‖ − ψ̄ (not in the paper: it removes the part every training instruction shares);
- arrow: one direction fitted on all training demos without their instructions, the score of a reward
  that ignores the language (`arrow_of_time`);
- fitted: the best text feature for the task, fitted on half its demos and scored on the other half,
  about the most the image encoder allows any instruction embedding (`fit_direction`).

Also prints each unseen instruction's largest cosine to a training instruction. Used in
docs/results/decisionnce.md, sessions 9, 11 and 12.

``--scenes INSTRUCTION``: for one instruction demonstrated in several scenes (LIBERO suite and task
index), the own-instruction direction per scene and whether a direction fitted in one scene orders
the task in another (`transfer_matrix`).

    python scripts/dnce_generic_direction.py DATA RUN SPLIT IMAGE_KEY
    python scripts/dnce_generic_direction.py data/dnce/libero runs/dnce_T_libero libero observation.images.agentview \
        --train-episodes 8
    python scripts/dnce_generic_direction.py data/dnce/libero,data/dnce/l90a,data/dnce/l90b runs/dnce_T_l90 libero \
        observation.images.agentview --scenes "turn on the stove"
"""

from __future__ import annotations

import argparse
import sys
import textwrap

import numpy as np
import torch
import torch.nn.functional as F


def direction_rates(enc, feats: dict, instructions: dict, n: int, rng) -> dict:
    """{instruction: {name: fraction of n random sorted segments per episode with r(fwd) > r(rev)}, "psi": ψ}
    where ``feats`` maps an instruction to its episodes' frame features and ``instructions`` maps a name
    to a function of the task's own ψ giving the text feature used."""
    from policies.decisionnce.rewards import segment_reward
    out = {}
    for inst in sorted(feats):
        own = enc.encode_text([inst])
        hits = {k: [] for k in instructions}
        for f in feats[inst]:
            pairs = np.sort(np.stack([rng.choice(len(f), 2, replace=False) for _ in range(n)]), 1)
            vs, ve = f[pairs[:, 0]], f[pairs[:, 1]]
            for name, text in instructions.items():
                u = text(own).expand(n, -1)
                hits[name].append((segment_reward(vs, ve, u, "T") > segment_reward(ve, vs, u, "T")).float().mean().item())
        out[inst] = {k: float(np.mean(v)) for k, v in hits.items()} | {"psi": own}
    return out


def embed_groups(enc, groups: dict, image_key: str) -> dict:
    """{instruction: episodes} -> {instruction: each episode's (T, D) frame features}, embedded once."""
    from policies.decisionnce.rewards import embed_frames
    return {k: [embed_frames(enc, ep.obs[image_key]) for ep in eps] for k, eps in groups.items()}


def demo_deltas(enc, ep, image_key: str) -> torch.Tensor:
    from policies.decisionnce.evaluate_decisionnce import segment_deltas
    from policies.decisionnce.rewards import embed_frames
    return segment_deltas(embed_frames(enc, ep.obs[image_key]))


def arrow_of_time(enc, groups: dict, image_key: str, per_demo: int = 500, seed: int = 0) -> torch.Tensor:
    """One direction fitted on the training demos of every task together, with no instruction: a reward
    that only says "later frames". Any language-conditioned reward should beat it on a task."""
    from policies.decisionnce.evaluate_decisionnce import fit_direction
    g = torch.Generator().manual_seed(seed)
    deltas = [demo_deltas(enc, ep, image_key) for eps in groups.values() for ep in eps]
    return fit_direction(torch.cat([d[torch.randperm(len(d), generator=g)[:per_demo]] for d in deltas]))


def fitted_rate(feats: list) -> float:
    """Direction rate on the second half of a task's episodes (their frame features) under the text
    feature fitted on the first half (one scene's diagonal entry of ``transfer_matrix``)."""
    from policies.decisionnce.evaluate_decisionnce import segment_deltas, transfer_matrix
    return float(transfer_matrix({"task": [segment_deltas(f) for f in feats]})[1][0, 0])


def scene_report(enc, episodes: list, image_key: str, instruction: str) -> None:
    """Print the own-instruction rate per scene and the fitted-direction transfer matrix."""
    from collections import defaultdict

    from policies.decisionnce.evaluate_decisionnce import direction_rate, transfer_matrix
    deltas = defaultdict(list)
    for ep in episodes:
        deltas[f"{ep.attrs.get('suite', '')}#{ep.attrs.get('task_index', '')}"].append(demo_deltas(enc, ep, image_key))
    u = F.normalize(enc.encode_text([instruction])[0], dim=0)
    names, m = transfer_matrix(deltas)
    print(f"{instruction!r}: rows = direction fitted on (first half), columns = scored on (second half)")
    print("scene".ljust(16), "".join(n[-14:].rjust(16) for n in names))
    for row, label in zip([[direction_rate(deltas[n], u) for n in names], *m], ["own (all demos)", *names, "joint fit"]):
        print(label[-16:].ljust(16), "".join(f"{x:16.2f}" for x in row))


def plot_rates(rows: dict, path: str, title: str) -> None:
    """Grouped bars: per unseen task, the direction rate under each text feature."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tasks, cols = list(rows), list(next(iter(rows.values())))
    fig, ax = plt.subplots(figsize=(1.6 * len(tasks) + 2, 4.4))
    w = 0.8 / len(cols)
    for j, c in enumerate(cols):
        ax.bar(np.arange(len(tasks)) + (j - (len(cols) - 1) / 2) * w, [rows[t][c] for t in tasks], w, label=c)
    ax.axhline(0.9, color="k", ls="--", lw=0.8)
    ax.set_xticks(np.arange(len(tasks)), [textwrap.fill(t, 26) for t in tasks], fontsize=7)
    ax.set_ylabel("direction rate")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=len(cols), loc="upper center", bbox_to_anchor=(0.5, -0.22))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="episode files or folders, comma-separated (as the run's --data)")
    p.add_argument("run", help="a pretraining run folder (checkpoints/last/encoder)")
    p.add_argument("split", help="the run's --holdout: a named split of exp_pretrain_eval (mt50, ml45, libero) "
                                 "or comma-separated instructions")
    p.add_argument("image_key")
    p.add_argument("--exclude", default="", help="the run's --exclude (kept out of the training instructions)")
    p.add_argument("--segments", type=int, default=20, help="random segments per episode")
    p.add_argument("--train-episodes", type=int, default=None,
                   help="the run's --train-episodes: also test the training tasks' later (held-out) demos")
    p.add_argument("--scenes", default=None, metavar="INSTRUCTION",
                   help="only the per-scene report of one instruction (see the module docstring)")
    p.add_argument("--plot", default=None, help="save a bar chart of the unseen tasks' rates (png)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from policies.decisionnce.data import load_task_episodes
    from policies.decisionnce.encoder import DualEncoder
    from policies.decisionnce.exp_pretrain_eval import EXCLUDES, HOLDOUTS, names_arg
    from policies.decisionnce.rewards import centred_text, text_baseline

    enc = DualEncoder.load(f"{args.run}/checkpoints/last/encoder").eval()
    hold, data = names_arg(args.split, HOLDOUTS), args.data.split(",")
    if args.scenes:
        eps = load_task_episodes(data, [args.image_key], include=(args.scenes,), strict=True)
        with torch.no_grad():
            scene_report(enc, eps[args.scenes], args.image_key, args.scenes)
        return 0
    held = load_task_episodes(data, [args.image_key], include=hold)
    train_eps = load_task_episodes(data, [args.image_key], exclude=hold + names_arg(args.exclude, EXCLUDES),
                                   limit=None if args.train_episodes is not None else 1, strict=True)
    train = sorted(train_eps)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        U_train = enc.encode_text(train)
        generic = text_baseline(U_train)[None]
        n_fit = args.train_episodes or 1
        arrow = arrow_of_time(enc, {k: v[:n_fit] for k, v in train_eps.items()}, args.image_key)[None]
        texts = {"own": lambda u: u, "generic": lambda u: generic, "centred": lambda u: centred_text(u, generic),
                 "arrow": lambda u: arrow}
        rows, held_f = {}, embed_groups(enc, held, args.image_key)
        for inst, r in direction_rates(enc, held_f, texts, args.segments, rng).items():
            cos = F.cosine_similarity(r["psi"], U_train).max().item()
            rows[inst] = {k: r[k] for k in texts} | {"fitted": fitted_rate(held_f[inst])}
            print("  ".join(f"{k} {v:.2f}" for k, v in rows[inst].items()),
                  f" max cos {cos:.2f}  {held[inst][0].attrs['task_name']}")
        if args.plot:
            plot_rates(rows, args.plot, f"{args.run}: unseen tasks under each text feature")
        if args.train_episodes is not None:
            seen = {k: v[args.train_episodes:] for k, v in train_eps.items() if len(v) > args.train_episodes}
            r = direction_rates(enc, embed_groups(enc, seen, args.image_key), texts, args.segments, rng)
            print("  ".join(f"{k} {np.mean([x[k] for x in r.values()]):.2f}" for k in texts),
                  f" training tasks' held-out demos, mean over {len(r)} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
