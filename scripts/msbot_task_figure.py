#!/usr/bin/env python
"""Figure of the multi-sensory peg-in-keyway task: what each sense reports in each stage of an expert
episode (wrist image, finger-pad shear, log-Mel of the last 3 s of audio).

    MUJOCO_GL=egl .venv/bin/python scripts/msbot_task_figure.py --out docs/results/figures/msbot_task.png
"""

import argparse

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from policies.common.audio import LogMelFrontend  # noqa: E402
from policystack import keys as K  # noqa: E402
from sim.multisensory_env import STAGE_NAMES, MultiSensoryEnv  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/results/figures/msbot_task.png")
    ap.add_argument("--index", type=int, default=7, help="init state of the episode shown")
    args = ap.parse_args()
    env = MultiSensoryEnv(image_size=96, audio_window_s=3.0)
    expert = env.expert()
    obs, info = env.reset(options={"init_state_index": args.index})
    frames, done = [], False
    while not done:
        name = expert.name()
        frames.append((info["stage"], name, obs))
        obs, _, term, trunc, info = env.step(expert(obs))
        done = term or trunc
    frames.append((info["stage"], "end", obs))
    env.close()
    # one moment per stage: mid-align, the key resting on the plate, right after the click
    picks = [next(f for f in frames if f[0] == 0),
             next(f for f in frames if f[1] == "rotate"),
             frames[-1]]
    mel = LogMelFrontend()
    fig, ax = plt.subplots(3, 3, figsize=(8.5, 7))
    for j, (stage, name, o) in enumerate(picks):
        ax[0, j].imshow(o[K.image_key("wrist")])
        ax[0, j].set_title(f"stage {stage}: {STAGE_NAMES[stage]}\n(next: {name})", fontsize=9)
        tac = o[K.tactile_key("fingers")]
        shear = np.concatenate([np.hypot(tac[1], tac[2]), np.hypot(tac[4], tac[5])], axis=1)
        ax[1, j].imshow(shear, vmin=0, vmax=2.0, cmap="magma")
        ax[1, j].set_title("finger-pad shear (left | right pad)", fontsize=8)
        lm = mel(o[K.audio_key("mic")][0])                       # (6, 64, 48)
        ax[2, j].imshow(np.concatenate(list(lm), axis=1), origin="lower", aspect="auto", vmin=-10, vmax=4)
        ax[2, j].set_title("log-Mel, last 3 s (6 chunks)", fontsize=8)
    for a in ax.flat:
        a.set_xticks([]), a.set_yticks([])
    ax[0, 0].set_ylabel("vision (wrist)"), ax[1, 0].set_ylabel("touch"), ax[2, 0].set_ylabel("audio (mel bins)")
    fig.suptitle("peg-in-keyway: each stage is decided by a different sense", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
