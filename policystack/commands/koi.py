"""`policystack koi`: KOI / ROT online imitation (BC init + DrQ-v2 with an optimal-transport reward).

    policystack koi bc --out DIR [name=value ...]             demos + BC pretraining (+ its eval)
    policystack koi train --run-dir DIR [--resume] [name=value ...]
    policystack koi experiment --out DIR --tasks A B --seeds 0 1 2 [--preset cpu] [name=value ...]
    policystack koi plot --out DIR --figure PNG               re-aggregate an experiment

Overrides set fields of KOITrainConfig (``reward.nu=uniform`` gives ROT; ``policy.hidden_dim=256``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "koi"
HELP = "KOI/ROT: BC pretraining, online training with the OT reward, and the KOI-vs-ROT experiment"
DESCRIPTION = __doc__


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="koi_cmd", metavar="<step>")
    bc = sub.add_parser("bc", help="generate demos and BC-pretrain a KOI policy")
    bc.add_argument("--out", required=True, help="directory for demos.npz, pretrained/ and bc_eval.json")
    bc.add_argument("--no-eval", action="store_true", help="skip evaluating the BC policy")
    tr = sub.add_parser("train", help="online KOI/ROT training (BC first unless bc_dir=... is given)")
    tr.add_argument("--run-dir", required=True)
    tr.add_argument("--resume", action="store_true", help="continue from <run-dir>/checkpoints/last")
    tr.add_argument("--no-progress", action="store_true", help="no tqdm bar (for logs)")
    ex = sub.add_parser("experiment", help="KOI vs ROT over tasks x seeds; success vs frames plot")
    ex.add_argument("--out", required=True)
    ex.add_argument("--tasks", nargs="+", default=["button-press-topdown-v3", "drawer-close-v3"])
    ex.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ex.add_argument("--methods", nargs="+", default=["koi", "rot"])
    ex.add_argument("--preset", default="cpu", help="cpu (small budget) or paper (KOI's settings)")
    ex.add_argument("--jobs", type=int, default=1, help="runs in parallel (1 on a shared machine)")
    ex.add_argument("--nice", type=int, default=10)
    ex.add_argument("--figure", default=None, help="where to save the plot (default <out>/koi_vs_rot.png)")
    pl = sub.add_parser("plot", help="aggregate an experiment directory into a plot + table")
    pl.add_argument("--out", required=True)
    pl.add_argument("--figure", default=None)
    pl.add_argument("--include-unfinished", action="store_true", help="also aggregate runs still in progress")
    fields = "config fields (name=value overrides; reward.nu=uniform gives ROT):\n" + "\n".join(_describe())
    for q in (bc, tr, ex):
        q.add_argument("overrides", nargs="*", help="KOITrainConfig overrides name=value")
        q.formatter_class = argparse.RawDescriptionHelpFormatter
        q.epilog = fields


def _describe() -> list[str]:
    from policystack.config import describe
    from policies.koi.train_koi import KOITrainConfig
    return describe(KOITrainConfig)


def _config(overrides):
    from policystack.config import apply_overrides
    from policies.koi.train_koi import KOITrainConfig
    return apply_overrides(KOITrainConfig(), list(overrides))


def run(args) -> int:
    if args.koi_cmd is None:
        print("policystack koi: choose a step: bc, train, experiment, plot (see --help)", file=sys.stderr)
        return 2
    if args.koi_cmd == "bc":
        from policies.koi.train_koi import pretrain_bc
        cfg = _config(args.overrides)
        pretrain_bc(cfg, Path(args.out), evaluate=not args.no_eval)
        info = json.loads((Path(args.out) / "bc_eval.json").read_text())
        print(f"BC policy saved to {Path(args.out) / 'pretrained'}; "
              f"success {info.get('eval', {}).get('success_rate', float('nan')):.2f}")
        return 0
    if args.koi_cmd == "train":
        from policies.koi.train_koi import OnlineTrainer
        cfg = _config(args.overrides)
        run_dir = OnlineTrainer(cfg, args.run_dir, resume=args.resume, progress=not args.no_progress).run()
        hist = json.loads((run_dir / "eval.json").read_text())
        print("frames  success")
        for h in hist:
            print(f"{h['frames']:>6}  {h['success_rate']:.2f}")
        print(f"checkpoint: {run_dir / 'checkpoints' / 'last' / 'pretrained'}; plot: {run_dir / 'success_vs_frames.png'}")
        return 0
    from policies.koi import experiment as X
    out = Path(args.out)
    if args.koi_cmd == "experiment":
        if args.preset not in X.PRESETS:
            print(f"unknown preset {args.preset!r}; choose from {sorted(X.PRESETS)}", file=sys.stderr)
            return 2
        overrides = X.PRESETS[args.preset] + list(args.overrides)
        _config(overrides)  # validate before launching anything
        runs = X.run_grid(out, args.tasks, args.seeds, args.methods, overrides, args.jobs, args.nice)
        failed = [r for r in runs if r["rc"] != 0]
        (out / "runs.json").write_text(json.dumps(runs, indent=2))
        if failed:
            print(f"{len(failed)} run(s) failed; logs in {out / 'runs'}", file=sys.stderr)
    rows = X.summarize(X.collect(out, finished_only=not getattr(args, "include_unfinished", False)))
    if not rows:
        print(f"no finished runs under {out / 'runs'}", file=sys.stderr)
        return 1
    fig = Path(args.figure) if args.figure else out / "koi_vs_rot.png"
    X.plot(rows, fig)
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    print(X.markdown_table(rows))
    print(f"plot: {fig}")
    return 0
