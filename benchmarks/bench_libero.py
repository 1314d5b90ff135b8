"""LIBERO throughput: our wrapper against the raw LIBERO env with the same cameras, and fast vs default GL.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_libero.py [--suite libero_spatial --task 0 --steps 20 --rounds 3]

The machine is shared, so the envs are measured in alternating blocks; rates are total steps / total
time and the ratios are the median of the per-round ratios: (1) wrapper / raw ``OffScreenRenderEnv`` (agentview + wrist, 128x128, RGB + depth, both
with the fast render settings); (2) fast settings / MuJoCo defaults (shadows, reflections, 4x MSAA), both
through the wrapper; (3) soft vs hard reset time. Prints a table and optionally writes JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

ACTION = np.array([0.05, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0])


class RawEnv:
    """LIBERO's own OffScreenRenderEnv, soft resets, with the same fast GL settings our wrapper applies."""

    def __init__(self, suite: str, task: int, size: int, fast: bool = True):
        import mujoco
        from libero.libero.envs import OffScreenRenderEnv

        from sim.libero_suites import load_init_states, task_info
        info = task_info(suite, task)
        self.env = OffScreenRenderEnv(bddl_file_name=str(info.bddl_file), camera_heights=size, camera_widths=size,
                                      camera_depths=True, hard_reset=False, horizon=10 ** 7, ignore_done=True)
        self.init = load_init_states(suite, task)
        self.env.seed(0)
        self.env.reset()
        ctx = self.env.env.sim._render_context_offscreen
        if fast:
            ctx.gl_ctx.make_current()
            self.env.env.sim.model._model.vis.quality.offsamples = 0
            ctx.con.free()
            ctx._set_mujoco_context_and_buffers()
            ctx.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self.ctx = ctx
        self.env.set_init_state(self.init[0])

    def block(self, n: int) -> float:
        self.ctx.gl_ctx.make_current()
        t = time.perf_counter()
        for _ in range(n):
            obs, *_ = self.env.step(ACTION)
        dt = time.perf_counter() - t
        assert obs["agentview_image"].std() > 1, "blank frame"
        return n / dt

    def close(self):
        self.env.close()


class Wrapped:
    def __init__(self, suite: str, task: int, size: int, fast: bool = True, hard_reset: bool = False):
        from sim.libero_env import LiberoEnv
        self.env = LiberoEnv(suite, task, image_size=size, depth=True, fast_render=fast, hard_reset=hard_reset,
                             max_episode_steps=10 ** 7)
        self.env.reset(options={"init_state_index": 0})

    def block(self, n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            obs, *_ = self.env.step(ACTION.astype(np.float32))
        dt = time.perf_counter() - t
        assert obs["observation.images.agentview"].std() > 1, "blank frame"
        return n / dt

    def close(self):
        self.env.close()


def alternate(a, b, steps: int, rounds: int) -> tuple[list[float], list[float]]:
    ra, rb = [], []
    a.block(3), b.block(3)  # warm-up
    for _ in range(rounds):
        ra.append(a.block(steps))
        rb.append(b.block(steps))
    return ra, rb


def reset_times(suite: str, task: int, size: int, n: int = 3) -> dict[str, float]:
    out = {}
    for hard in (False, True):
        w = Wrapped(suite, task, size, hard_reset=hard)
        ts = []
        for i in range(n):
            t = time.perf_counter()
            w.env.reset(options={"init_state_index": i + 1})
            ts.append(time.perf_counter() - t)
        out["hard" if hard else "soft"] = statistics.median(ts)
        w.close()
        gc.collect()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="libero_spatial")
    p.add_argument("--task", type=int, default=0)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=8, help="steps per timed block")
    p.add_argument("--rounds", type=int, default=8, help="alternating blocks per env")
    p.add_argument("--skip-reset", action="store_true", help="skip the soft/hard reset timing")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    t0 = time.time()
    res: dict = {"suite": args.suite, "task": args.task, "size": args.size, "steps": args.steps,
                 "rounds": args.rounds, "load_avg_start": os.getloadavg()[0]}

    raw, wrap = RawEnv(args.suite, args.task, args.size), Wrapped(args.suite, args.task, args.size)
    r_raw, r_wrap = alternate(raw, wrap, args.steps, args.rounds)
    raw.close(), wrap.close()
    del raw, wrap
    gc.collect()
    fast, slow = Wrapped(args.suite, args.task, args.size, fast=True), Wrapped(args.suite, args.task, args.size, fast=False)
    r_fast, r_slow = alternate(fast, slow, args.steps, args.rounds)
    fast.close(), slow.close()
    del fast, slow
    gc.collect()
    def rate(blocks):  # total steps / total time: load spikes weigh by their duration
        return len(blocks) / sum(1.0 / b for b in blocks)

    def paired(a, b):  # median of the per-round ratios (adjacent blocks see similar load)
        return statistics.median(x / y for x, y in zip(a, b))

    res.update(raw_steps_per_s=rate(r_raw), wrapper_steps_per_s=rate(r_wrap), wrapper_over_raw=paired(r_wrap, r_raw),
               fast_steps_per_s=rate(r_fast), default_gl_steps_per_s=rate(r_slow), fast_speedup=paired(r_fast, r_slow),
               blocks={"raw": r_raw, "wrapper": r_wrap, "fast": r_fast, "default_gl": r_slow})
    if not args.skip_reset:
        rt = reset_times(args.suite, args.task, args.size)
        res.update(reset_soft_s=rt["soft"], reset_hard_s=rt["hard"])
    res["load_avg_end"] = os.getloadavg()[0]
    res["wall_s"] = time.time() - t0

    print(f"LIBERO {args.suite} task {args.task}, agentview+wrist {args.size}x{args.size} RGB+depth, "
          f"{args.rounds} alternating blocks of {args.steps} steps (load avg {res['load_avg_start']:.1f})")
    print(f"  raw OffScreenRenderEnv (fast GL)  {res['raw_steps_per_s']:6.2f} steps/s   blocks {np.round(r_raw, 2)}")
    print(f"  policystack LiberoEnv (fast GL)   {res['wrapper_steps_per_s']:6.2f} steps/s   blocks {np.round(r_wrap, 2)}")
    print(f"  wrapper / raw (median per round)  {res['wrapper_over_raw']:6.3f}   (target >= 0.95)")
    print(f"  LiberoEnv, default GL             {res['default_gl_steps_per_s']:6.2f} steps/s   blocks {np.round(r_slow, 2)}")
    print(f"  fast GL speed-up (median/round)   {res['fast_speedup']:6.2f}x")
    if "reset_soft_s" in res:
        print(f"  reset (+{10} settle steps): soft {res['reset_soft_s']:.2f} s, hard {res['reset_hard_s']:.2f} s")
    print(f"  wall {res['wall_s']:.0f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
