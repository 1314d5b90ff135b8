"""KOI vs ROT experiment: a grid of (task, seed, method) runs sharing one BC init per (task, seed),
then success-vs-frames curves (mean and per-seed) and a summary table.

Each run is a separate ``policystack koi train`` process (niced), so runs go in parallel and a rerun
resumes whatever was interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

METHODS = {"koi": ["reward.nu=koi"], "rot": ["reward.nu=uniform"]}

# a budget a shared 2-core CPU machine can run: about 50 core-minutes for 2 tasks x 3 seeds x 2 methods
# on an idle core (see docs/results/koi.md). Everything not listed keeps KOI's values (eps, nu weights,
# n-step, tau, gamma, std, update every 2 steps, ...).
CPU_PRESET = [
    "image_size=64", "episode_steps=60", "policy.hidden_dim=256", "policy.conv_strides=[2,2,1,1]",
    "agent.batch_size=64", "num_seed_frames=1000", "eval_every_frames=1000", "eval_episodes=10",
    "bc_steps=1000", "bc_batch_size=64", "save_every_frames=1000", "num_train_frames=5000",
]
PRESETS = {"cpu": CPU_PRESET, "paper": []}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "policystack.cli", "koi", *args]


def _run(cmd: list[str], log_path: Path, nice: int) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"), OMP_NUM_THREADS="1")
    with open(log_path, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        p = subprocess.run(["nice", "-n", str(nice), *cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
    return p.returncode


def run_grid(out: Path, tasks: Sequence[str], seeds: Sequence[int], methods: Sequence[str],
             overrides: Sequence[str], jobs: int = 2, nice: int = 10) -> list[dict]:
    """BC per (task, seed), then every method from that BC init; returns the per-run records."""
    out = Path(out)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; choose from {sorted(METHODS)}")

    def bc(task_seed):
        task, seed = task_seed
        d = out / "bc" / f"{task}_s{seed}"
        if (d / "bc_eval.json").is_file():
            return 0
        return _run(_cli("bc", "--out", str(d), f"task={task}", f"seed={seed}", *overrides), d.parent / f"{d.name}.log", nice)

    def online(job):
        task, seed, method = job
        run_dir = out / "runs" / f"{task}_{method}_s{seed}"
        t0 = time.time()
        rc = _run(_cli("train", "--run-dir", str(run_dir), "--resume", "--no-progress", f"task={task}",
                       f"seed={seed}", f"bc_dir={out / 'bc' / f'{task}_s{seed}'}", *overrides, *METHODS[method]),
                  run_dir.parent / f"{run_dir.name}.log", nice)
        return {"task": task, "seed": seed, "method": method, "run_dir": str(run_dir), "rc": rc,
                "wall_s": time.time() - t0}

    with ThreadPoolExecutor(max_workers=jobs) as ex:
        rcs = list(ex.map(bc, [(t, s) for t in tasks for s in seeds]))
    if any(rcs):
        raise RuntimeError(f"BC pretraining failed (see {out / 'bc'}/*.log)")
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        return list(ex.map(online, [(t, s, m) for t in tasks for s in seeds for m in methods]))


def collect(out: Path) -> dict:
    """{task: {method: {seed: history}}} from the run directories under ``out/runs``."""
    res: dict = {}
    for d in sorted((Path(out) / "runs").glob("*")):
        if not (d / "eval.json").is_file() or not (d / "config.json").is_file():
            continue
        cfg = json.loads((d / "config.json").read_text())
        method = "koi" if cfg["reward"]["nu"] == "koi" else "rot"
        res.setdefault(cfg["task"], {}).setdefault(method, {})[cfg["seed"]] = json.loads((d / "eval.json").read_text())
    return res


def summarize(res: dict) -> list[dict]:
    """Per task and method: mean success at each eval point and the area under the curve (mean success)."""
    rows = []
    for task, methods in res.items():
        for method, seeds in methods.items():
            frames = sorted({h["frames"] for hist in seeds.values() for h in hist})
            curves = [[next((h["success_rate"] for h in hist if h["frames"] == f), np.nan) for f in frames]
                      for hist in seeds.values()]
            arr = np.array(curves, dtype=float)
            mean = np.nanmean(arr, axis=0)
            rows.append({"task": task, "method": method, "seeds": sorted(seeds), "frames": frames,
                         "mean": mean.tolist(), "per_seed": arr.tolist(),
                         "start": float(mean[0]), "final": float(mean[-1]), "auc": float(np.nanmean(mean))})
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.3), squeeze=False)
    colors = {"koi": "tab:red", "rot": "tab:blue"}
    for ax, task in zip(axes[0], tasks):
        for r in (r for r in rows if r["task"] == task):
            f = np.array(r["frames"]) / 1000
            per = np.array(r["per_seed"])
            c = colors.get(r["method"], None)
            for s in per:
                ax.plot(f, s, color=c, alpha=0.25, lw=0.8)
            ax.plot(f, r["mean"], color=c, lw=2, marker="o", ms=3,
                    label=f"{r['method'].upper()} ({len(r['seeds'])} seeds)")
        ax.set_title(task)
        ax.set_xlabel("environment frames (k)")
        ax.set_ylabel("eval success rate")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| task | method | seeds | success at 0 frames (BC) | final success | mean over curve |",
             "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["task"], r["method"])):
        lines.append(f"| {r['task']} | {r['method'].upper()} | {len(r['seeds'])} | {r['start']:.2f} | "
                     f"{r['final']:.2f} | {r['auc']:.3f} |")
    return "\n".join(lines)
