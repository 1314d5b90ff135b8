"""Show KOI's key states on a scripted Meta-World demo: flow magnitude, semantic/motion keys, nu, key frames.

    MUJOCO_GL=egl python scripts/koi_keystates.py --task drawer-close-v3 --out docs/results/figures/koi_keystates_drawer-close.png
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="drawer-close-v3")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=60, help="agent steps (x action_repeat env steps)")
    ap.add_argument("--action-repeat", type=int, default=2)
    ap.add_argument("--camera", default="corner2")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import sim
    from policies.koi.demos import generate_demos
    from policies.koi.keystates import SimPhaseKeyStates, compute_key_states

    env = sim.make_env(args.task, cameras=(args.camera,), image_size=args.image_size, init_seed=1,
                       max_episode_steps=args.steps * args.action_repeat, terminate_on_success=False)
    try:
        (demo,) = generate_demos(env, 1, args.steps, args.action_repeat, f"observation.images.{args.camera}")
    finally:
        env.close()
    ks = compute_key_states(demo, SimPhaseKeyStates())
    keys = sorted(set(ks.semantic) | set(ks.motion))
    fig = plt.figure(figsize=(8, 4.6))
    ax = fig.add_axes([0.08, 0.52, 0.86, 0.42])
    ax.plot(ks.nu, color="tab:red", label="KOI nu")
    ax.axhline(1 / len(demo), color="tab:blue", ls="--", label="ROT nu (uniform)")
    ax.set_ylabel("expert weight nu")
    ax2 = ax.twinx()
    ax2.plot(np.arange(1, len(demo)), ks.flow, color="gray", alpha=0.6, label="Farneback |flow|")
    ax2.set_ylabel("flow magnitude")
    for s in ks.semantic:
        ax.axvline(s, color="tab:green", lw=1.5)
    for m in ks.motion:
        ax.axvline(m, color="tab:orange", lw=1, ls=":")
    ax.set_xlabel("demo frame (agent step)")
    ax.set_title(f"{args.task}: semantic keys {ks.semantic} (green), motion keys {ks.motion} (orange)", fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    for i, k in enumerate(keys[:6]):
        a = fig.add_axes([0.02 + i * 0.163, 0.02, 0.15, 0.3])
        a.imshow(demo.frames[k])
        a.set_title(f"frame {k}" + (" (goal)" if k == ks.semantic[-1] else ""), fontsize=7)
        a.axis("off")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(json.dumps({"task": args.task, "demo_frames": len(demo), **ks.to_dict(),
                      "nu_max": float(ks.nu.max()), "nu_uniform": 1 / len(demo)}))


if __name__ == "__main__":
    main()
