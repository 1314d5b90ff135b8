#!/usr/bin/env python
"""Generate the pixel demos the DecisionNCE / Robo-MUTUAL experiments use (Meta-World scripted experts).

One HDF5 file per task under ``--out`` (only successful expert episodes, the policystack episode
layout, ``task`` attr = the task's instruction). Uses ``policystack.demos.generate_metaworld_demos``
when it exists, otherwise an equivalent local loop, so the experiments do not wait on the lead.

    nice -n 10 python scripts/dnce_make_data.py --tasks MT50 --episodes 8 --cameras corner2 \
        --out data/dnce/pretrain
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


def generate(task: str, n: int, out: Path, cameras: tuple[str, ...], size: int, init_seed: int,
             max_steps: int) -> int:
    """Roll the scripted expert from init states 0.. until ``n`` successes; returns episodes written."""
    import sim
    from policystack import keys as K
    from policystack.dataset import Episode, EpisodeWriter

    env = sim.make_env(task, cameras=cameras, image_size=size, init_seed=init_seed,
                       max_episode_steps=max_steps)
    expert = env.unwrapped.expert()
    feats = env.unwrapped.spec_features
    written, index = 0, 0
    with EpisodeWriter(out, env_args={"task": task, "cameras": list(cameras), "image_size": size,
                                      "init_seed": init_seed},
                       features=feats, language=env.unwrapped.instruction) as w:
        while written < n and index < 4 * n:
            obs, info = env.reset(options={"init_state_index": index})
            frames: dict[str, list] = {k: [] for k in obs if k != K.TASK}
            actions, success = [], False
            for _ in range(max_steps):
                for k in frames:
                    frames[k].append(obs[k])
                a = expert(obs[K.STATE])
                actions.append(a)
                obs, _, term, trunc, info = env.step(a)
                if info["is_success"]:
                    success = True
                if term or trunc:
                    break
            if success:
                T = len(actions)
                ep = Episode(obs={k: np.stack(v) for k, v in frames.items()},
                             actions=np.stack(actions).astype(np.float32),
                             rewards=np.eye(1, T, T - 1, dtype=np.float32)[0],
                             dones=np.eye(1, T, T - 1, dtype=np.uint8)[0],
                             task=env.unwrapped.instruction, attrs={"init_state_index": index})
                w.add(ep)
                written += 1
            index += 1
    env.close()
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="MT50", help="MT10, MT50 or comma-separated task names")
    p.add_argument("--episodes", type=int, default=8, help="successful episodes per task")
    p.add_argument("--cameras", default="corner2", help="comma-separated camera names")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--init-seed", type=int, default=1, help="1 = demo split (evaluation uses 0)")
    p.add_argument("--max-steps", type=int, default=300)
    p.add_argument("--out", required=True, type=Path, help="folder for one <task>.hdf5 per task")
    args = p.parse_args(argv)
    from sim.metaworld_tasks import resolve_tasks
    import torch
    torch.set_num_threads(1)
    tasks = resolve_tasks(args.tasks)
    cams = tuple(c for c in args.cameras.split(",") if c)
    args.out.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        path = args.out / f"{task}.hdf5"
        if path.exists():
            print(f"{task}: exists, skipped", flush=True)
            continue
        t0 = time.time()
        tmp = path.with_name(path.name + ".partial")
        if tmp.exists():
            tmp.unlink()
        n = generate(task, args.episodes, tmp, cams, args.image_size, args.init_seed, args.max_steps)
        if n == 0:
            tmp.unlink(missing_ok=True)
            print(f"{task}: expert never succeeded, skipped", flush=True)
            continue
        tmp.rename(path)
        print(f"{task}: {n} episodes in {time.time() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
