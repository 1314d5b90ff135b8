"""Watch one scripted-expert episode: phase log (end effector, object, gripper) and a PNG contact sheet.

    MUJOCO_GL=egl .venv/bin/python scripts/libero_expert_debug.py libero_spatial 4 --init 0 --out /tmp/ep.png
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite")
    p.add_argument("task", type=int)
    p.add_argument("--init", type=int, default=0)
    p.add_argument("--out", default="", help="contact sheet PNG (renders agentview; slower)")
    p.add_argument("--every", type=int, default=10, help="frame interval of the sheet")
    args = p.parse_args(argv)
    from sim.libero_env import LiberoEnv
    from sim.libero_experts import make_expert
    env = LiberoEnv(args.suite, args.task, cameras=("agentview",) if args.out else (), image_size=160, depth=False)
    obs, _ = env.reset(options={"init_state_index": args.init})
    expert = make_expert(env)
    goal = env.raw_env.env.parsed_problem["goal_state"]
    obj = goal[0][1] if len(goal[0]) > 1 else None
    frames, last_phase, done, t = [], None, False, 0
    while not done:
        a = expert(obs)
        s = expert.scene
        if expert.phase != last_phase:
            o = s.center(obj) if obj in s.rs.obj_body_id else None
            g = expert.mem.get("grasp")
            print(f"   grasp {None if g is None else np.round(g.pos, 3)} axis {None if g is None else np.round(g.axis, 2)}")
            print(f"t={t:3d} {expert.phase:10s} eef {np.round(s.eef, 3)} obj {None if o is None else np.round(o, 3)} "
                  f"grip {s.gripper_width:.3f} retries {expert.retries}", flush=True)
            last_phase = expert.phase
        if args.out and t % args.every == 0:
            frames.append(obs["observation.images.agentview"])
        obs, _, term, trunc, info = env.step(a)
        done = term or trunc
        t += 1
    print(f"success={info['is_success']} steps={t} final phase {expert.phase}")
    if args.out:
        import imageio
        frames.append(obs["observation.images.agentview"])
        cols = 8
        while len(frames) % cols:
            frames.append(np.zeros_like(frames[0]))
        rows = [np.concatenate(frames[i:i + cols], 1) for i in range(0, len(frames), cols)]
        imageio.imwrite(args.out, np.concatenate(rows, 0))
        print(f"wrote {args.out}")
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
