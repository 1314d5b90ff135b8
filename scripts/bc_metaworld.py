"""The spine's acceptance experiment: BC on scripted Meta-World demos.

State-based BC on reach-v3, button-press-topdown-v3, drawer-open-v3 (50 demos each, 50 held-out
evaluation episodes each) and pixel-based BC (corner2 84x84 + state) on the --pixel-tasks.
Writes a markdown table with wall-clock times to --out/results.md.

    MUJOCO_GL=egl .venv/bin/python scripts/bc_metaworld.py --out outputs/bc_metaworld
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="outputs/bc_metaworld")
    ap.add_argument("--state-tasks", default="reach-v3,button-press-topdown-v3,drawer-open-v3")
    ap.add_argument("--pixel-tasks", default="button-press-topdown-v3")
    ap.add_argument("--demos", type=int, default=50)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--state-steps", type=int, default=3000)
    ap.add_argument("--pixel-steps", type=int, default=4000)
    ap.add_argument("--envs", type=int, default=1)
    ap.add_argument("--pixel-state", choices=("full", "proprio"), default="proprio",
                    help="state given to pixel policies: 'proprio' (4-D hand + gripper) makes them see objects in pixels")
    args = ap.parse_args()
    import torch

    from policystack import config as C
    from policystack.demos import generate_metaworld_demos
    from policystack.evaluation import evaluate
    from policystack.training import TrainConfig, train
    torch.set_num_threads(1)
    out = Path(args.out)
    rows = []
    jobs = [(t, False) for t in args.state_tasks.split(",") if t] + [(t, True) for t in args.pixel_tasks.split(",") if t]
    for task, pixels in jobs:
        name = f"{task}-{'pixels-' + args.pixel_state if pixels else 'state'}"
        d = out / name
        cams = ("corner2",) if pixels else ()
        t0 = time.time()
        data = d / "demos.hdf5"
        if not data.exists():
            generate_metaworld_demos(task, args.demos, data, cameras=cams, image_size=84,
                                     state=args.pixel_state if pixels else "full")
        t1 = time.time()
        run = d / "train"
        if not (run / "checkpoints" / "last").exists():
            steps = args.pixel_steps if pixels else args.state_steps
            train(C.apply_overrides(TrainConfig(), [f"dataset={data}", f"output_dir={run}", f"steps={steps}",
                                                    "policy.modalities=" + ("state,images" if pixels else "state")]))
        t2 = time.time()
        rep = evaluate(run / "checkpoints" / "last" / "pretrained", task, args.episodes,
                       env_kwargs={"cameras": cams, "image_size": 84, "state": args.pixel_state} if pixels else {},
                       n_envs=args.envs,
                       video_dir=d / "videos", max_videos=1, out_dir=d)
        t3 = time.time()
        rows.append({"task": task, "input": f"corner2 84x84 + {args.pixel_state} state" if pixels else "full state",
                     "success": rep["success_rate"], "episodes": rep["n_episodes"],
                     "demos_s": round(t1 - t0), "train_s": round(t2 - t1), "eval_s": round(t3 - t2)})
        print(json.dumps(rows[-1]), flush=True)
    lines = ["| task | input | success (50 eval episodes) | demos s | train s | eval s |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['input']} | {r['success']:.2f} | {r['demos_s']} | {r['train_s']} | {r['eval_s']} |"
              for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
