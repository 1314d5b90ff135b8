"""DecisionNCE on Meta-World or LIBERO demos: pretrain the dual encoder, test it on held-out tasks.

Reports segment<->instruction top-1 retrieval (chance = 1/#tasks), the direction test
(r(o_s->o_e) > r(o_e->o_s)), and the Spearman correlation of the reward with time per task, for the
trained encoder and for the same architecture randomly initialised. Writes ``<out>/metrics.json``,
a markdown table and figures ``docs/results/figures/dnce_*.png``.

    nice -n 10 python scripts/dnce_pretrain_eval.py --data data/dnce/mt50 --out runs/dnce_T_s2 --variant T
    (add --reverse-negatives for the variant with o_e->o_s as a negative; see losses.py)
    (same as: policystack decisionnce evaluate --data ... )
    LIBERO (suite files from `policystack libero-demos`): --data data/dnce/libero --holdout libero \
        --image-key observation.images.agentview
    more instructions: --data data/dnce/libero,data/dnce/l90 --exclude libero90_near (LIBERO-90 demos)
    the paper's model, for a user with the weights (and a GPU): --encoder rn50 --init-from RN50.pt \
        --bpe bpe_simple_vocab_16e6.txt.gz --lr 1e-5 --crop-scale 0.2,1.0 --brightness 0.5 --weight-decay 1e-3
        (κ = 100 follows from --init-from); --init-from DecisionNCE-T --steps 0 evaluates the official weights
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

HOLDOUT = ("door-close-v3", "handle-pull-v3", "plate-slide-back-v3", "push-back-v3", "coffee-pull-v3",
           "button-press-wall-v3", "reach-wall-v3", "sweep-into-v3", "dial-turn-v3", "lever-pull-v3")
# Named held-out splits (--holdout NAME). ml45: Meta-World's own ML45 test tasks. libero: the last two
# tasks of each scripted LIBERO suite (spatial, object, goal), fixed before any LIBERO run.
HOLDOUTS = {
    "mt50": HOLDOUT,
    "ml45": ("bin-picking-v3", "box-close-v3", "hand-insert-v3", "door-lock-v3", "door-unlock-v3"),
    "libero": ("pick up the black bowl next to the plate and place it on the plate",
               "pick up the black bowl on the wooden cabinet and place it on the plate",
               "pick up the chocolate pudding and place it in the basket",
               "pick up the orange juice and place it in the basket",
               "put the bowl on the plate", "put the wine bottle on the rack"),
}
# Named --exclude sets: tasks kept out of training but not evaluated. libero90_near: LIBERO-90 tasks with
# a held-out task's object and target in another scene (nearly the same instruction and motion).
EXCLUDES = {
    "libero90_near": ("pick up the orange juice and put it in the basket", "put the wine bottle on the wine rack",
                      "put the black bowl on the plate", "put the black bowl at the back on the plate",
                      "put the black bowl at the front on the plate", "put the middle black bowl on the plate"),
}


def names_arg(arg: str, named: dict) -> tuple[str, ...]:
    """A named set of task names, or a comma-separated list of them."""
    return named.get(arg) or tuple(t for t in arg.split(",") if t)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/dnce/mt50", help="episode files or folders, comma-separated")
    p.add_argument("--out", default="runs/dnce_T", type=Path)
    p.add_argument("--variant", default="T", choices=("P", "T"))
    p.add_argument("--encoder", default="small", choices=("small", "rn50"),
                   help="small: the CPU-sized CLIP of these results; rn50: the paper's CLIP RN50 (D = 1024)")
    p.add_argument("--init-from", default=None,
                   help="OpenAI CLIP weights or an official DecisionNCE checkpoint, loaded strictly (paper: RN50)")
    p.add_argument("--bpe", default=None, help="CLIP's BPE vocabulary file, for the rn50 text tower")
    p.add_argument("--text-tower", default=None, choices=("clip", "minilm"),
                   help="default: minilm with --encoder small, clip (the only choice) with rn50")
    p.add_argument("--minilm-finetune", action="store_true",
                   help="train the MiniLM transformer too (the paper trains its text tower), at --text-lr")
    p.add_argument("--text-lr", type=float, default=1e-5, help="lr of the fine-tuned MiniLM (paper's lr)")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="paper: 1e-5 (fine-tuning CLIP)")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--logit-scale", type=float, default=None,
                   help="κ (paper: 100, fine-tuning CLIP); default: 1/0.07 for this from-scratch encoder")
    p.add_argument("--crop-scale", default="0.8,1.0", help="RandomResizedCrop area range (paper: 0.2,1.0 at 224²)")
    p.add_argument("--brightness", type=float, default=0.1, help="per-frame brightness jitter (paper: 0.5)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="coupled L2 on weights (paper: 1e-3)")
    p.add_argument("--reverse-negatives", action="store_true",
                   help="not in the paper: add o_e->o_s under its own instruction as a negative (losses.py)")
    p.add_argument("--train-episodes", type=int, default=10, help="first N episodes per task train; the rest evaluate")
    p.add_argument("--holdout", default="mt50",
                   help=f"a named split ({', '.join(HOLDOUTS)}) or comma-separated task names / instructions")
    p.add_argument("--exclude", default="",
                   help=f"kept out of training, not evaluated: a named set ({', '.join(EXCLUDES)}) or a comma list")
    p.add_argument("--image-key", default="observation.images.corner2")
    p.add_argument("--figures", default="docs/results/figures", type=Path)
    p.add_argument("--reuse", action="store_true", help="skip pretraining when the run already has an encoder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default=None, help="figure name prefix (default dnce_<variant>)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    import logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from policies.decisionnce.configuration_decisionnce import PretrainConfig
    from policies.decisionnce.data import load_task_episodes
    from policies.decisionnce.encoder import DualEncoder
    from policies.decisionnce.evaluate_decisionnce import representation_metrics, reward_curves
    from policies.decisionnce.train_decisionnce import pretrain

    holdout, exclude = names_arg(args.holdout, HOLDOUTS), names_arg(args.exclude, EXCLUDES)
    data = tuple(d for d in args.data.split(",") if d)
    cfg = PretrainConfig(data=data, image_key=args.image_key, holdout=holdout, exclude=exclude, out_dir=str(args.out),
                         encoder=encoder_config(args), init_from=args.init_from,
                         variant=args.variant, text_lr=args.text_lr if args.minilm_finetune else None,
                         steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         episodes_per_task=args.train_episodes, seed=args.seed, log_every=25,
                         warmup_steps=args.warmup, weight_decay=args.weight_decay,
                         reverse_negatives=args.reverse_negatives, logit_scale=args.logit_scale,
                         brightness=args.brightness,
                         crop_scale=tuple(float(x) for x in args.crop_scale.split(",")))
    # before pretraining: every held-out and excluded name must be in the data (a typo would train on it)
    held = load_task_episodes(data, [args.image_key], include=holdout, exclude=exclude, strict=True)
    enc_dir = args.out / "checkpoints" / "last" / "encoder"
    t0 = time.time()
    if not (args.reuse and enc_dir.is_dir()):
        pretrain(cfg)
    train_time = time.time() - t0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    enc = DualEncoder.load(enc_dir).to(device)
    allg = load_task_episodes(data, [args.image_key], exclude=holdout + exclude)
    seen = {k: v[args.train_episodes:] for k, v in allg.items() if len(v) > args.train_episodes}
    torch.manual_seed(args.seed)
    rand = DualEncoder(cfg.encoder).eval().to(device)
    results = {"config": {k: v for k, v in vars(args).items() if k not in ("figures", "out")},
               "pretrain_seconds": train_time}
    t1 = time.time()
    for name, e in (("trained", enc), ("random_init", rand)):
        results[name] = {"heldout_tasks": representation_metrics(e, held, args.image_key, args.variant, seed=args.seed)}
        if seen:
            results[name]["seen_tasks_heldout_episodes"] = representation_metrics(
                e, seen, args.image_key, args.variant, seed=args.seed)
    results["eval_seconds"] = time.time() - t1
    (args.out / "metrics.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (args.out / "table.md").write_text(table + "\n")
    print(table)
    plots(args, results, enc, held)
    return 0


def encoder_config(args):
    """The encoder the flags name; a combination the paper's model cannot have is a ConfigError."""
    from policies.decisionnce.configuration_decisionnce import EncoderConfig
    from policystack.errors import ConfigError
    if args.encoder == "small":
        return EncoderConfig(text_tower=args.text_tower or "minilm", minilm_finetune=args.minilm_finetune,
                             tokenizer="bpe" if args.bpe else "hash", bpe_path=args.bpe)
    if args.text_tower == "minilm" or args.minilm_finetune:
        raise ConfigError("--encoder rn50 has CLIP's text tower; --text-tower minilm / --minilm-finetune "
                          "belong to --encoder small")
    return EncoderConfig.rn50(bpe_path=args.bpe)


def markdown(r: dict) -> str:
    lines = ["| encoder | eval set | #tasks | chance | seg→text top-1 | text→seg top-1 | direction | "
             "Spearman potential | Spearman progress |", "|---|---|---|---|---|---|---|---|---|"]
    for name in ("trained", "random_init"):
        for split, m in r[name].items():
            lines.append(f"| {name} | {split} | {m['n_instructions']} | {m['chance']:.3f} | {m['seg2text_top1']:.3f} | "
                         f"{m['text2seg_top1']:.3f} | {m['direction']:.3f} | {m['spearman_potential']:.3f} | "
                         f"{m['spearman_progress']:.3f} |")
    lines += ["", "Per held-out task (trained encoder):", "",
              "| task | seg→text | direction | Spearman potential | Spearman progress |", "|---|---|---|---|---|"]
    for inst, m in r["trained"]["heldout_tasks"]["per_task"].items():
        lines.append(f"| {m['task_name']} | {m['seg2text']:.2f} | {m['direction']:.2f} | "
                     f"{m['spearman_potential']:.2f} | {m['spearman_progress']:.2f} |")
    return "\n".join(lines)


def plots(args, r: dict, enc, held) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from policies.decisionnce.evaluate_decisionnce import reward_curves
    from policies.decisionnce.rewards import ema
    args.figures.mkdir(parents=True, exist_ok=True)
    tag = args.tag or f"dnce_{args.variant}"
    hist = json.loads((args.out / "history.json").read_text())
    fig, ax = plt.subplots(1, 2, figsize=(8, 2.8))
    ax[0].plot([h["step"] for h in hist], [h["loss"] for h in hist])
    ax[0].axhline(np.log(args.batch_size), ls="--", c="gray", label="log B")
    ax[0].set_title(f"DecisionNCE-{args.variant} loss"), ax[0].legend()
    ax[1].plot([h["step"] for h in hist], [h["acc"] for h in hist], label="matching acc")
    if all("direction" in h for h in hist):
        ax[1].plot([h["step"] for h in hist], [h["direction"] for h in hist], label="r(fwd) > r(rev)")
    ax[1].axhline(1 / args.batch_size, ls="--", c="gray")
    ax[1].set_title("training batches"), ax[1].legend(fontsize=7)
    for a in ax:
        a.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(args.figures / f"{tag}_loss.png", dpi=70)
    plt.close(fig)

    per = r["trained"]["heldout_tasks"]["per_task"]
    names = [textwrap.shorten(m["task_name"].replace("-v3", ""), 40, placeholder="…") for m in per.values()]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar(x - 0.2, [m["spearman_potential"] for m in per.values()], 0.4, label="potential cos(φ(o_t),ψ(l))")
    ax.bar(x + 0.2, [m["spearman_progress"] for m in per.values()], 0.4, label="progress cos(φ(o_t)−φ(o_0),ψ(l))")
    ax.set_xticks(x, names, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("Spearman vs time")
    ax.set_title("held-out tasks: reward vs time (trained encoder)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.figures / f"{tag}_spearman.png", dpi=70)
    plt.close(fig)

    insts = sorted(held)[:6]
    fig, axes = plt.subplots(1, len(insts), figsize=(3 * len(insts), 2.9))
    for a, inst in zip(np.atleast_1d(axes), insts):
        curves = reward_curves(enc, held[inst][0], args.image_key, sorted(held))
        for other, c in curves.items():
            own = other == inst
            a.plot(ema(c["progress"]), lw=2 if own else 0.7, c="C3" if own else "gray", alpha=1 if own else 0.5)
        a.set_title(textwrap.fill(held[inst][0].attrs["task_name"].replace("-v3", ""), 34), fontsize=7)
        a.set_xlabel("t")
    np.atleast_1d(axes)[0].set_ylabel("cos(φ(o_t)−φ(o_0), ψ(l))")
    fig.suptitle("held-out demo under its own instruction (red) and the other held-out instructions", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(args.figures / f"{tag}_reward_curves.png", dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
