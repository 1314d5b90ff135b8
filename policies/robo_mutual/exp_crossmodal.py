"""Robo-MUTUAL cross-modal experiment: train with text goals, act with image goals (and text goals as
the same-modality reference), with Collapse + Corrupt vs without them; same data, budget and seeds.

Also reports goal-space diagnostics of the frozen encoder on the policy's tasks (paired cosine,
modality-probe accuracy, text->image nearest-neighbour retrieval) before and after Collapse.
Writes ``<out>/crossmodal.json``, markdown tables and ``docs/results/figures/mutual_crossmodal.png``.

    nice -n 10 python scripts/mutual_crossmodal.py --encoder runs/dnce_T/checkpoints/last/encoder
    (same as: policystack robo_mutual crossmodal ...)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

TASKS = ("faucet-open-v3", "faucet-close-v3", "drawer-open-v3", "drawer-close-v3", "button-press-topdown-v3",
         "window-close-v3")
CONDITIONS = {"collapse+corrupt": {"collapse": True, "corrupt": True}, "none": {"collapse": False, "corrupt": False}}


def goal_diagnostics(encoder_path: str, data: str, gap_data: str, tasks, image_key: str) -> dict:
    from policies.decisionnce.data import load_task_episodes
    from policies.decisionnce.encoder import DualEncoder
    from policies.robo_mutual.modality_gap import (ModalityGap, cross_modal_retrieval, modality_probe_accuracy,
                                                   paired_cosine)
    from policies.robo_mutual.train_robo_mutual import goal_embeddings
    enc = DualEncoder.load(encoder_path)
    groups = load_task_episodes([data], [image_key], include=tasks)
    text, image = goal_embeddings(enc, groups, image_key)
    gap_groups = load_task_episodes([gap_data], [image_key], exclude=tuple(tasks) + tuple(groups))
    gt, gi = goal_embeddings(enc, gap_groups, image_key)
    gap = ModalityGap(next(iter(text.values())).shape[0]).fit(torch.stack(list(gt.values())), torch.cat(list(gi.values())))
    insts = sorted(groups)
    T = torch.stack([text[t] for t in insts])
    I = torch.cat([image[t] for t in insts])
    il = np.concatenate([[k] * len(image[t]) for k, t in enumerate(insts)])
    Tp = T[torch.as_tensor(il)]           # each image goal's paired text goal
    out = {}
    for name, (tt, ii, tp) in {"raw": (T, I, Tp),
                               "collapsed": (gap.collapse(T, "text"), gap.collapse(I, "image"), gap.collapse(Tp, "text"))}.items():
        out[name] = {"paired_cos": paired_cosine(tp, ii), "modality_probe_acc": modality_probe_accuracy(tp, ii),
                     "image_to_text_nn_acc": cross_modal_retrieval(tt, np.arange(len(insts)), ii, il)}
    out["norms"] = {"mu_text": float(gap.mu_text.norm()), "mu_image": float(gap.mu_image.norm()),
                    "mean_text_goal": float(T.norm(dim=1).mean()), "mean_image_goal": float(I.norm(dim=1).mean())}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/dnce/mutual")
    p.add_argument("--gap-data", default="data/dnce/mt50", help="other tasks' demos to fit the modality means")
    p.add_argument("--encoder", default="runs/dnce_T/checkpoints/last/encoder")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--conditions", default="collapse+corrupt,none")
    p.add_argument("--train-goal", default="text", choices=("text", "image"))
    p.add_argument("--head", default="ddpm", choices=("ddpm", "mse"))
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup", type=int, default=150)
    p.add_argument("--width", type=int, default=16, help="FiLM-ResNet base width (paper: ResNet34, 64)")
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes per task and goal modality")
    p.add_argument("--max-steps", type=int, default=150)
    p.add_argument("--state-indices", default=",".join(map(str, range(18))),
                   help="observation.state dims (default: hand, gripper, objects; not the goal position)")
    p.add_argument("--out", default="runs/mutual", type=Path)
    p.add_argument("--figures", default="docs/results/figures", type=Path)
    p.add_argument("--reuse", action="store_true", help="reuse trained policies found under --out")
    p.add_argument("--report-only", action="store_true", help="only print the table/plot of the rows under --out")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    import logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from policies.decisionnce.rollout import rollout_task
    from policies.robo_mutual import RoboMutualConfig, RoboMutualPolicy
    from policies.robo_mutual.train_robo_mutual import MutualTrainConfig, train

    tasks = tuple(t for t in args.tasks.split(",") if t)
    args.out.mkdir(parents=True, exist_ok=True)
    image_keys = ("observation.images.corner2", "observation.images.gripperPOV")
    diag_file = args.out / "goal_diagnostics.json"
    if diag_file.is_file():
        diag = json.loads(diag_file.read_text())
    else:
        diag = goal_diagnostics(args.encoder, args.data, args.gap_data, tasks, image_keys[0])
        diag_file.write_text(json.dumps(diag, indent=1))
    print(json.dumps(diag, indent=1), flush=True)
    other = "image" if args.train_goal == "text" else "text"
    t_start = time.time()
    for seed in [] if args.report_only else [int(s) for s in args.seeds.split(",")]:
        for cond in args.conditions.split(","):
            run = args.out / f"{args.train_goal}_{cond}_s{seed}"
            row_file = args.out / f"row_{args.train_goal}_{cond}_s{seed}.json"
            if row_file.is_file():       # each (seed, condition) is one row file: runs can go in parallel
                continue
            t0 = time.time()
            if not (args.reuse and (run / "checkpoints/last/pretrained/config.json").is_file()):
                pcfg = RoboMutualConfig(train_goal_modality=args.train_goal, goal_modality=args.train_goal,
                                        head=args.head, warmup_steps=args.warmup, backbone_width=args.width,
                                        state_indices=tuple(int(i) for i in args.state_indices.split(",") if i),
                                        **CONDITIONS[cond])
                cfg = MutualTrainConfig(data=(args.data,), tasks=tasks, gap_data=(args.gap_data,),
                                        encoder_path=args.encoder, image_keys=image_keys, policy=pcfg,
                                        steps=args.steps, batch_size=args.batch_size, seed=seed,
                                        image_goal_seed=seed, out_dir=str(run))
                train(cfg)
            train_s = time.time() - t0
            pol = RoboMutualPolicy.from_pretrained(run / "checkpoints/last/pretrained")
            torch.manual_seed(seed)
            res = {}
            for modality in (other, args.train_goal):
                pol.set_goal_modality(modality)
                res[modality] = {t: float(np.mean([r["success"] for r in rollout_task(
                    pol, t, args.episodes, ("corner2", "gripperPOV"), 64, max_steps=args.max_steps)])) for t in tasks}
            hist = json.loads((run / "history.json").read_text())
            row = {"seed": seed, "condition": cond, "train_goal": args.train_goal, "final_loss": hist[-1]["loss"],
                   "cross_modal": float(np.mean(list(res[other].values()))),
                   "same_modal": float(np.mean(list(res[args.train_goal].values()))),
                   "per_task": res, "train_seconds": train_s, "seconds": time.time() - t0}
            row["args"] = {k: str(v) for k, v in vars(args).items()}
            row_file.write_text(json.dumps(row, indent=1))
            print(json.dumps(row), flush=True)
    print(f"total {time.time() - t_start:.0f}s")
    rows = [json.loads(f.read_text()) for f in sorted(args.out.glob(f"row_{args.train_goal}_*.json"))]
    rows.sort(key=lambda r: (r["seed"], r["condition"] != "collapse+corrupt"))
    if not rows:
        return 0
    print(markdown(rows, tasks, args.train_goal, other, diag))
    plot(rows, tasks, args.train_goal, other, args.figures / f"mutual_crossmodal_{args.train_goal}.png")
    return 0


def markdown(rows, tasks, train_goal, other, diag) -> str:
    out = [f"Trained with {train_goal} goals; success rate (mean ± std over seeds).", "",
           f"| condition | act with {other} goals (cross-modal) | per seed | act with {train_goal} goals | per seed |",
           "|---|---|---|---|---|"]
    conds = list(dict.fromkeys(r["condition"] for r in rows))
    for c in conds:
        rs = [r for r in rows if r["condition"] == c]
        x, y = [r["cross_modal"] for r in rs], [r["same_modal"] for r in rs]
        out.append(f"| {c} | {np.mean(x):.3f} ± {np.std(x):.3f} | {', '.join(f'{v:.2f}' for v in x)} | "
                   f"{np.mean(y):.3f} ± {np.std(y):.3f} | {', '.join(f'{v:.2f}' for v in y)} |")
    out += ["", f"Per task, cross-modal ({other} goals), mean over seeds:", "",
            "| condition |" + "".join(f" {t.replace('-v3', '')} |" for t in tasks), "|---|" + "---|" * len(tasks)]
    for c in conds:
        rs = [r for r in rows if r["condition"] == c]
        out.append(f"| {c} |" + "".join(f" {np.mean([r['per_task'][other][t] for r in rs]):.2f} |" for t in tasks))
    out += ["", "Goal-space diagnostics on the policy's tasks (means fitted on other tasks):", "",
            "| goals | paired cos(text, image) | modality probe acc | image→text NN task acc |", "|---|---|---|---|"]
    for k in ("raw", "collapsed"):
        d = diag[k]
        out.append(f"| {k} | {d['paired_cos']:.3f} | {d['modality_probe_acc']:.3f} | {d['image_to_text_nn_acc']:.3f} |")
    return "\n".join(out)


def plot(rows, tasks, train_goal, other, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path.parent.mkdir(parents=True, exist_ok=True)
    conds = list(dict.fromkeys(r["condition"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 3))
    x = np.arange(len(tasks) + 1)
    w = 0.8 / len(conds)
    for i, c in enumerate(conds):
        rs = [r for r in rows if r["condition"] == c]
        vals = np.array([[r["per_task"][other][t] for t in tasks] + [r["cross_modal"]] for r in rs])
        ax.bar(x + (i - (len(conds) - 1) / 2) * w, vals.mean(0), w, yerr=vals.std(0), capsize=2, label=c)
    ax.set_xticks(x, [t.replace("-v3", "") for t in tasks] + ["mean"], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("success rate")
    ax.set_title(f"Robo-MUTUAL: trained on {train_goal} goals, acting on {other} goals")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
