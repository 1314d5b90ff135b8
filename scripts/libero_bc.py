"""Close the loop on LIBERO: train the BC baseline on scripted demos, evaluate it per task.

    # demos (official init states 0-4 of every libero_object task, agentview 64x64)
    policystack libero-demos --suite libero_object --episodes 5 --max-attempts 5 --init official \\
        --cameras agentview --image-size 64 --out data/libero_bc
    # train + evaluate on init states 10.. (disjoint from the demos' 0-4)
    MUJOCO_GL=egl nice -n 10 .venv/bin/python scripts/libero_bc.py --demos data/libero_bc/libero_object.hdf5 \\
        --out runs/libero_bc --steps 3000 --episodes 3

    # recovery data instead (DART-style: noisy executed motion, clean labels), official states 0-9 only
    policystack libero-demos --suite libero_object --episodes 10 --max-attempts 10 --init official \
        --cameras agentview --image-size 64 --workers 1 --action-noise 0.1 --no-official --out data/libero_bc_dart
    # re-evaluate a trained run on other init states without training
    ... scripts/libero_bc.py --demos ... --out runs/libero_bc --skip-train --start-index 0 \
        --report runs/libero_bc/eval_libero_seen.json

Writes <out>/eval_libero.json (or --report; per-task success) and prints one line per task.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", required=True, help="HDF5 demos in our contract (libero-demos output)")
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--tasks", default="", help="comma-separated task indices to evaluate (default: all)")
    p.add_argument("--out", default="runs/libero_bc")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--episodes", type=int, default=3, help="evaluation episodes per task")
    p.add_argument("--start-index", type=int, default=10, help="first evaluation init state")
    p.add_argument("--cameras", default="agentview")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--n-envs", type=int, default=1)
    p.add_argument("--skip-train", action="store_true", help="evaluate <out>'s last checkpoint")
    p.add_argument("--report", default="", help="JSON report path (default <out>/eval_libero.json)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch
    torch.set_num_threads(1)
    from policies.bc.configuration_bc import BCConfig
    from policystack.evaluation import evaluate
    from policystack.training import TrainConfig, pretrained_path, train
    from sim.libero_suites import SUITE_SIZES, env_id

    out = Path(args.out)
    t0 = time.time()
    if not args.skip_train:
        policy = BCConfig(use_language=True, chunk_size=8, n_action_steps=4, modalities=("state", "images"))
        cfg = TrainConfig(dataset=args.demos, policy=policy, output_dir=str(out), steps=args.steps,
                          batch_size=args.batch_size, seed=args.seed, log_every=100,
                          save_every=max(args.steps // 3, 1), num_threads=1)
        train(cfg)
    t_train = time.time() - t0
    if args.skip_train:  # report the checkpoint's own training time, from the trainer's metrics log
        lines = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []
        t_train = json.loads(lines[-1]).get("time_s", 0.0) if lines else 0.0
    t_eval0 = time.time()
    tasks = [int(t) for t in args.tasks.split(",") if t] or list(range(SUITE_SIZES[args.suite]))
    env_kwargs = {"cameras": tuple(c for c in args.cameras.split(",") if c), "image_size": args.image_size,
                  "depth": False}
    per_task = {}
    for t in tasks:
        rep = evaluate(pretrained_path(out), env_id(args.suite, t), n_episodes=args.episodes, env_kwargs=env_kwargs,
                       n_envs=args.n_envs, start_index=args.start_index,
                       video_dir=out / "videos" if t == tasks[0] else None, max_videos=1)
        per_task[t] = rep
        print(f"{args.suite} task {t}: success {rep['success_rate']:.2f} "
              f"({sum(e['success'] for e in rep['episodes'])}/{rep['n_episodes']}), "
              f"mean length {rep['avg_length']:.0f}", flush=True)
    overall = sum(r["success_rate"] * r["n_episodes"] for r in per_task.values()) / sum(
        r["n_episodes"] for r in per_task.values())
    summary = {"suite": args.suite, "demos": args.demos, "steps": args.steps, "train_s": round(t_train),
               "eval_s": round(time.time() - t_eval0), "start_index": args.start_index,
               "episodes_per_task": args.episodes,
               "env_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in env_kwargs.items()},
               "overall_success": overall,
               "tasks_above_zero": sum(r["success_rate"] > 0 for r in per_task.values()),
               "per_task": {t: {"success_rate": r["success_rate"], "episodes": r["episodes"]}
                            for t, r in per_task.items()}}
    report = Path(args.report) if args.report else out / "eval_libero.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(summary, indent=1))
    print(f"{args.suite}: overall {overall:.2f}; {summary['tasks_above_zero']}/{len(tasks)} tasks above zero; "
          f"train {t_train:.0f} s, eval {summary['eval_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
