#!/usr/bin/env python
"""Compare DecisionNCE pretraining conditions on their held-out tasks, from each run's metrics.json.

Each condition is LABEL=RUN[,RUN...] (one run per pretraining seed, all from `dnce_pretrain_eval.py` with
the same --holdout). Prints a markdown table (per held-out task: direction, mean and per seed; then the
overall direction and retrieval) and writes a bar plot with one dot per seed.

    python scripts/dnce_compare_runs.py --plot docs/results/figures/dnce_libero90_direction.png \
        "23 tasks=runs/dnce_T_libero,runs/dnce_T_libero_s1,runs/dnce_T_libero_s2" \
        "+ LIBERO-90=runs/dnce_T_l90,runs/dnce_T_l90_s1,runs/dnce_T_l90_s2"
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

import numpy as np


def load(spec: str) -> tuple[str, list[dict]]:
    label, sep, runs = spec.partition("=")
    if not sep or not runs:
        raise SystemExit(f"condition {spec!r}: expected LABEL=RUN[,RUN...]")
    out = []
    for r in runs.split(","):
        f = Path(r) / "metrics.json"
        if not f.is_file():
            raise SystemExit(f"{f} not found (run dnce_pretrain_eval.py first)")
        out.append(json.loads(f.read_text())["trained"]["heldout_tasks"])
    return label, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("conditions", nargs="+", help="LABEL=RUN[,RUN...]")
    p.add_argument("--plot", type=Path, default=None, help="bar plot of per-task direction (PNG)")
    args = p.parse_args(argv)
    conds = [load(c) for c in args.conditions]
    tasks = list(conds[0][1][0]["per_task"])
    for label, runs in conds:
        if any(list(r["per_task"]) != tasks for r in runs):
            raise SystemExit(f"{label}: runs were evaluated on different held-out tasks")
    cell = {(label, t): [r["per_task"][t]["direction"] for r in runs] for label, runs in conds for t in tasks}

    def fmt(v: list[float]) -> str:
        return f"{np.mean(v):.2f} ({' / '.join(f'{x:.2f}' for x in v)})"

    print("| held-out task | " + " | ".join(label for label, _ in conds) + " |")
    print("|---|" + "---|" * len(conds))
    for t in tasks:
        print(f"| {t} | " + " | ".join(fmt(cell[label, t]) for label, _ in conds) + " |")
    for key, name in (("direction", "**direction, all segments**"), ("seg2text_top1", "seg→text top-1")):
        print(f"| {name} | " + " | ".join(fmt([r[key] for r in runs]) for _, runs in conds) + " |")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(tasks), 3.8))
        w = 0.8 / len(conds)
        for i, (label, _) in enumerate(conds):
            x = np.arange(len(tasks)) + (i - (len(conds) - 1) / 2) * w
            ax.bar(x, [np.mean(cell[label, t]) for t in tasks], w, label=label, alpha=0.8)
            for xi, t in zip(x, tasks):
                ax.plot([xi] * len(cell[label, t]), cell[label, t], "k.", ms=4)
        ax.axhline(0.9, color="g", ls="--", lw=1, label="issue's bar (0.9)")
        ax.axhline(0.5, color="gray", ls=":", lw=1)
        ax.set_xticks(np.arange(len(tasks)), ["\n".join(textwrap.wrap(t, 22)) for t in tasks], fontsize=7)
        ax.set_ylabel("direction (fraction of segments)")
        ax.set_ylim(0, 1.05)
        ax.set_title("DecisionNCE-T, unseen tasks: r(o_s→o_e) > r(o_e→o_s); dots = pretraining seeds", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
