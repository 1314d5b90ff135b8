"""LCBC probe: a 256-256 MLP on frozen [φ(o_t), ψ(l), proprio] -> action, with the pretrained
DecisionNCE encoder vs the same architecture randomly initialised (frozen), same data, budget, seeds.

Features of every demo frame are computed once (the encoder is frozen), then only the MLP trains.
Success is measured in closed loop on Meta-World (evaluation split, init_seed 0); the held-out
demo-action MSE is reported too. Writes ``<out>/lcbc.json``, a markdown table and
``docs/results/figures/dnce_lcbc.png``.

    nice -n 10 python scripts/dnce_lcbc.py --encoder runs/dnce_T/checkpoints/last/encoder --out runs/dnce_lcbc
    (same as: policystack decisionnce lcbc ...)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from policies.common.stats import paired_record

TASKS = ("door-close-v3", "reach-wall-v3", "button-press-wall-v3", "handle-pull-v3", "plate-slide-back-v3")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/dnce/mt50")
    p.add_argument("--encoder", default="runs/dnce_T/checkpoints/last/encoder")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--demos", type=int, default=10, help="demos per task for BC (the rest: held-out MSE)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--state-indices", default="0,1,2,3", help="proprio dims of observation.state ('' = none)")
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes per task")
    p.add_argument("--max-steps", type=int, default=150)
    p.add_argument("--image-key", default="observation.images.corner2")
    p.add_argument("--kinds", default="decisionnce_T,random_init", help="which frozen encoders to probe")
    p.add_argument("--out", default="runs/dnce_lcbc", type=Path, help="rows already in <out>/lcbc.json are kept")
    p.add_argument("--figures", default="docs/results/figures", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from policies.base import make_policy
    from policies.decisionnce import DecisionNCEConfig
    from policies.decisionnce.data import load_task_episodes
    from policies.decisionnce.encoder import DualEncoder
    from policies.decisionnce.modeling_decisionnce import IMAGE_FEATURE, TEXT_FEATURE
    from policies.decisionnce.rollout import rollout_task
    from policystack import keys as K
    from policystack.dataset import compute_stats, features_of

    tasks = tuple(t for t in args.tasks.split(",") if t)
    state_idx = tuple(int(i) for i in args.state_indices.split(",") if i != "")
    groups = load_task_episodes([args.data], [args.image_key, K.STATE], include=tasks)
    train_eps = [ep for t in sorted(groups) for ep in groups[t][:args.demos]]
    test_eps = [ep for t in sorted(groups) for ep in groups[t][args.demos:]]
    feats = features_of(train_eps)
    stats = compute_stats(train_eps, [K.STATE, K.ACTION])
    enc_cfg = DualEncoder.load(args.encoder).cfg
    args.out.mkdir(parents=True, exist_ok=True)
    done = args.out / "lcbc.json"
    rows = json.loads(done.read_text())["rows"] if done.is_file() else []
    t_start = time.time()
    for seed in [int(s) for s in args.seeds.split(",")]:
        for kind in args.kinds.split(","):
            if any(r["seed"] == seed and r["encoder"] == kind for r in rows):
                continue
            t0 = time.time()
            torch.manual_seed(seed)
            cfg = DecisionNCEConfig(encoder_path=args.encoder if kind == "decisionnce_T" else None,
                                    encoder=enc_cfg, encoder_seed=seed, image_key=args.image_key,
                                    state_indices=state_idx, lr=args.lr)
            pol = make_policy(cfg, feats, stats)

            def arrays(eps):
                img = torch.cat([pol.image_features(torch.from_numpy(ep.obs[args.image_key])) for ep in eps])
                txt = pol.text_features([ep.task for ep in eps for _ in range(len(ep))])
                st = torch.from_numpy(np.concatenate([ep.obs[K.STATE] for ep in eps]))
                act = torch.from_numpy(np.concatenate([ep.actions for ep in eps]))
                return {IMAGE_FEATURE: img, TEXT_FEATURE: txt, K.STATE: st, K.ACTION: act}
            tr, te = arrays(train_eps), arrays(test_eps) if test_eps else None
            opt = torch.optim.Adam(pol.optim_params(), lr=args.lr)
            g = torch.Generator().manual_seed(seed)
            pol.train()
            n = len(tr[K.ACTION])
            for step in range(args.steps):
                idx = torch.randint(0, n, (args.batch_size,), generator=g)
                loss, _ = pol({k: v[idx] for k, v in tr.items()})
                opt.zero_grad()
                loss.backward()
                opt.step()
            pol.eval()
            with torch.no_grad():
                test_mse = float(pol(te)[0]) if te else float("nan")
            per_task = {}
            for t in tasks:
                res = rollout_task(pol, t, args.episodes, ("corner2",), image_size=feats[args.image_key].shape[0],
                                   max_steps=args.max_steps)
                per_task[t] = float(np.mean([r["success"] for r in res]))
            row = {"seed": seed, "encoder": kind, "train_loss": loss.item(), "heldout_mse": test_mse,
                   "success": float(np.mean(list(per_task.values()))), "per_task": per_task,
                   "seconds": time.time() - t0}
            rows.append(row)
            print(json.dumps(row), flush=True)
            (args.out / "lcbc.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                            "rows": rows}, indent=2))
    print(f"total {time.time() - t_start:.0f}s")
    print(markdown(rows, tasks))
    plot(rows, tasks, args.figures / "dnce_lcbc.png")
    return 0


def paired_summary(rows) -> str:
    """DecisionNCE-T minus random init, paired by seed: success and held-out MSE."""
    by = {kind: {r["seed"]: r for r in rows if r["encoder"] == kind} for kind in ("decisionnce_T", "random_init")}
    succ = paired_record(*({s: r["success"] for s, r in by[k].items()} for k in ("decisionnce_T", "random_init")))
    if succ is None:
        return ""
    # lower MSE is better: random minus pretrained
    mse = paired_record(*({s: r["heldout_mse"] for s, r in by[k].items()} for k in ("random_init", "decisionnce_T")))
    return (f"Paired by seed ({len(succ['seeds'])} seeds): success difference {succ['mean']:+.3f} "
            f"({', '.join(f'{d:+.2f}' for d in succ['diffs'])}; {succ['wins']} wins, {succ['ties']} ties, "
            f"{succ['losses']} losses; sign-flip p = {succ['p']:.3f}); held-out MSE lower by {mse['mean']:.3f} "
            f"in {sum(d > 0 for d in mse['diffs'])} of {len(mse['diffs'])} seeds (p = {mse['p']:.3f}).")


def markdown(rows, tasks) -> str:
    out = ["| encoder (frozen) | success mean ± std over seeds | per-seed | held-out action MSE |" +
           "".join(f" {t.replace('-v3', '')} |" for t in tasks), "|---|---|---|---|" + "---|" * len(tasks)]
    for kind in ("decisionnce_T", "random_init"):
        rs = [r for r in rows if r["encoder"] == kind]
        if not rs:
            continue
        s = [r["success"] for r in rs]
        out.append(f"| {kind} | {np.mean(s):.3f} ± {np.std(s):.3f} | {', '.join(f'{x:.2f}' for x in s)} | "
                   f"{np.mean([r['heldout_mse'] for r in rs]):.3f} |" +
                   "".join(f" {np.mean([r['per_task'][t] for r in rs]):.2f} |" for t in tasks))
    return "\n".join(out) + "\n\n" + paired_summary(rows)


def plot(rows, tasks, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(tasks) + 1)
    for i, kind in enumerate(("decisionnce_T", "random_init")):
        rs = [r for r in rows if r["encoder"] == kind]
        if not rs:
            continue
        vals = np.array([[r["per_task"][t] for t in tasks] + [r["success"]] for r in rs])
        ax.bar(x + (i - 0.5) * 0.4, vals.mean(0), 0.4, yerr=vals.std(0), capsize=2, label=kind)
    ax.set_xticks(x, [t.replace("-v3", "") for t in tasks] + ["mean"], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("success rate")
    ax.set_title("LCBC probe on frozen encoders (mean ± std over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
