"""Offline LIBERO demonstrations from the scripted experts.

Two stages, because rendering is the expensive part on a CPU (~7 frames/s against ~30 steps/s without
cameras): (1) roll the expert out state-only, keeping the flattened simulator state before every action;
(2) replay those states in parallel worker processes that each build their own camera env and GL
context, and render the observations. Only successful episodes are kept.

Output: one file per suite in our HDF5 contract (``<out>/<suite>.hdf5``; per-episode ``task``,
``task_index``, ``init_state_index``, ``states``) and, optionally, one file per task in the official
LIBERO layout (``<out>/official/<suite>/<task>_demo.hdf5``) for LIBERO's own tools.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from policystack import keys as K
from policystack.dataset import Episode, EpisodeWriter
from policystack.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Rollout:
    suite: str
    task_index: int
    init_state_index: int           # official index, or -1 for a sampled init state
    states: np.ndarray              # (T, S) simulator state before each action
    actions: np.ndarray             # (T, 7)
    proprio: np.ndarray             # (T, 15) observation.state before each action
    success: bool
    language: str = ""
    init_state: np.ndarray | None = None  # the state reset() started from (sampled init states)
    obs: dict[str, np.ndarray] = field(default_factory=dict)  # rendered camera obs, filled by render_rollouts


@dataclass
class TaskResult:
    suite: str
    task_index: int
    language: str
    covered: bool
    attempts: int = 0
    successes: int = 0
    rollouts: list[Rollout] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.successes / self.attempts if self.attempts else float("nan")


def collect_rollouts(suite: str, task_index: int, n_demos: int, init: str = "sampled", seed: int = 1,
                     start_index: int = 0, max_attempts: int | None = None, action_noise: float = 0.0,
                     on_episode: Callable[[Rollout], None] | None = None) -> TaskResult:
    """Run the expert state-only until ``n_demos`` successes or ``max_attempts`` (default 2 n + 2) tries.

    ``init``: 'sampled' draws fresh placements (seeded; disjoint from the evaluation states) or
    'official' uses the task's official init states from ``start_index`` on.
    ``action_noise``: std of Gaussian noise added to the *executed* motion (DART-style); the stored
    label is the expert's clean action, so the demos show how to recover from small drifts, which a
    cloned policy meets in closed loop and a perfect scripted expert never shows.
    """
    from sim.libero_env import LiberoEnv
    from sim.libero_experts import expert_for
    if init not in ("sampled", "official"):
        raise ConfigError(f"init must be 'sampled' or 'official', got {init!r}")
    if not 0 <= action_noise <= 1:
        raise ConfigError(f"action_noise must be in [0, 1] (a std on the [-1, 1] action), got {action_noise}")
    max_attempts = max_attempts or 2 * n_demos + 2
    env = LiberoEnv(suite, task_index, cameras=())
    try:
        env.reset(options={"init_state_index": start_index})
        expert = expert_for(env)
        res = TaskResult(suite, task_index, env.instruction, expert is not None)
        if expert is None:
            return res
        sampled = env.sample_init_states(max_attempts, seed) if init == "sampled" else None
        rng = np.random.default_rng([seed, task_index])
        scale = action_noise * np.array([1, 1, 1, 0.5, 0.5, 0.5, 0.0])
        while res.successes < n_demos and res.attempts < max_attempts:
            k = res.attempts
            if sampled is not None:
                obs, info = env.reset(options={"init_state": sampled[k]})
            else:
                obs, info = env.reset(options={"init_state_index": start_index + k})
            states, actions, proprio = [], [], []
            done = False
            while not done:
                a = expert(obs)
                states.append(env.get_sim_state())
                proprio.append(obs[K.STATE])
                actions.append(a)
                executed = np.clip(a + scale * rng.standard_normal(7), -1, 1) if action_noise else a
                obs, _, term, trunc, info = env.step(executed.astype(np.float32))
                done = term or trunc
            res.attempts += 1
            r = Rollout(suite, task_index, int(info["init_state_index"]), np.stack(states),
                        np.stack(actions).astype(np.float32), np.stack(proprio), bool(info["is_success"]),
                        env.instruction, None if sampled is None else sampled[k])
            if r.success:
                res.successes += 1
                res.rollouts.append(r)
            if on_episode is not None:
                on_episode(r)
        return res
    finally:
        env.close()


# ----- rendering by state replay in worker processes -----------------------------------------
_WORKER: dict = {}


def _worker_init(single_thread_gl: bool) -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    if single_thread_gl:
        os.environ["LP_NUM_THREADS"] = "1"  # llvmpipe: one thread per process when 2 processes render


def _render_job(job: tuple) -> dict[str, np.ndarray]:
    suite, task, cameras, image_size, depth, fast, reset_options, states = job
    key = (suite, task, cameras, image_size, depth, fast)
    if _WORKER.get("key") != key:
        if _WORKER.get("env") is not None:
            _WORKER["env"].close()
        from sim.libero_env import LiberoEnv
        env = LiberoEnv(suite, task, cameras=cameras, image_size=image_size, depth=depth, fast_render=fast)
        env.reset()  # builds the simulator and the GL context in this process
        _WORKER.update(key=key, env=env)
    env = _WORKER["env"]
    env.reset(options=reset_options)  # the same fixture placement as the rollout (not in the states)
    frames = [env.observe_state(s) for s in states]
    keys = [k for k in frames[0] if k.startswith((K.IMAGES + ".", K.DEPTH + "."))]
    return {k: np.stack([f[k] for f in frames]) for k in keys}


def render_rollouts(rollouts: Sequence[Rollout], cameras: Sequence[str] = ("agentview", "wrist"),
                    image_size: int = 128, depth: bool = False, workers: int = 2, fast_render: bool = True,
                    on_done: Callable[[Rollout], None] | None = None) -> None:
    """Fill ``rollout.obs`` with camera observations rendered from the stored states, in order.

    ``workers=0`` renders in this process; otherwise a spawn pool (each worker owns its GL context).
    """
    jobs = [(r.suite, r.task_index, tuple(cameras), int(image_size), bool(depth), fast_render,
             {"init_state": r.init_state} if r.init_state is not None else {"init_state_index": r.init_state_index},
             r.states) for r in rollouts]
    if workers <= 0:
        results = map(_render_job, jobs)
        pool = None
    else:
        import multiprocessing as mp
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                   initializer=_worker_init, initargs=(workers > 1,))
        results = pool.map(_render_job, jobs)
    try:
        for r, obs in zip(rollouts, results):
            r.obs = obs
            if on_done is not None:
                on_done(r)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        elif _WORKER.get("env") is not None:
            _WORKER.pop("env").close()
            _WORKER.clear()


# ----- writing ---------------------------------------------------------------------------------
def to_episode(r: Rollout) -> Episode:
    T = len(r.actions)
    rewards = np.zeros(T, np.float32)
    dones = np.zeros(T, np.uint8)
    rewards[-1] = float(r.success)
    dones[-1] = 1
    obs = {K.STATE: r.proprio.astype(np.float32), **r.obs}
    return Episode(obs=obs, actions=r.actions, rewards=rewards, dones=dones, task=r.language,
                   attrs={"suite": r.suite, "task_index": r.task_index, "init_state_index": r.init_state_index},
                   states=r.states)


def generate_libero_demos(suite: str, out_dir: str | os.PathLike, tasks: Sequence[int] | None = None,
                          n_episodes: int = 10, cameras: Sequence[str] = ("agentview", "wrist"),
                          image_size: int = 128, depth: bool = False, workers: int = 2, init: str = "sampled",
                          seed: int = 1, official: bool = True, max_attempts: int | None = None,
                          action_noise: float = 0.0, progress: bool = True) -> dict:
    """Roll out, render and write a suite's demos; returns a summary with per-task success."""
    from tqdm import tqdm

    from sim.libero_env import libero_spec
    from sim.libero_official import write_official_demos
    from sim.libero_suites import SUITE_SIZES, check_suite
    check_suite(suite)
    tasks = list(range(SUITE_SIZES[suite])) if tasks is None else list(tasks)
    out_dir = Path(out_dir)
    results: list[TaskResult] = []
    bar = tqdm(total=len(tasks) * n_episodes, desc=f"{suite} expert rollouts", unit="demo", disable=not progress)
    for t in tasks:
        res = collect_rollouts(suite, t, n_episodes, init=init, seed=seed, max_attempts=max_attempts,
                               action_noise=action_noise, on_episode=lambda r: bar.update(int(r.success)))
        bar.update(n_episodes - res.successes)  # keep the bar's total honest when a task falls short
        results.append(res)
        log.info("%s task %d: %d/%d expert successes%s", suite, t, res.successes, res.attempts,
                 "" if res.covered else " (no scripted expert)")
    bar.close()
    rollouts = [r for res in results for r in res.rollouts]
    paths: dict[str, str] = {}
    if rollouts:
        path = out_dir / f"{suite}.hdf5"
        tmp = path.with_suffix(".hdf5.tmp")
        tmp.unlink(missing_ok=True)
        env_args = {"env": "policystack/LIBERO", "suite": suite, "cameras": list(cameras), "image_size": image_size,
                    "depth": depth, "init": init, "seed": seed, "action_noise": action_noise}
        spec = libero_spec(cameras, image_size, depth and bool(cameras))
        rbar = tqdm(total=len(rollouts), desc=f"{suite} rendering", unit="demo", disable=not progress)
        remaining = {res.task_index: len(res.rollouts) for res in results}
        by_task = {res.task_index: res for res in results}
        with EpisodeWriter(tmp, env_args=env_args, features=spec) as w:
            def write(r: Rollout) -> None:
                w.add(to_episode(r))
                rbar.update(1)
                remaining[r.task_index] -= 1
                if remaining[r.task_index] == 0:  # the task's last demo: official file, then free its frames
                    done = by_task[r.task_index].rollouts
                    if official and cameras:
                        name = f"{suite}/{_task_name(suite, r.task_index)}_demo.hdf5"
                        p = write_official_demos(out_dir / "official" / name, [to_episode(x) for x in done],
                                                 suite, r.task_index,
                                                 {"camera_heights": image_size, "camera_widths": image_size})
                        paths[f"official_{r.task_index}"] = str(p)
                    for x in done:
                        x.obs = {}
            if cameras:
                render_rollouts(rollouts, cameras, image_size, depth, workers, on_done=write)
            else:
                for r in rollouts:
                    write(r)
        rbar.close()
        os.replace(tmp, path)
        paths["demos"] = str(path)
    return {"suite": suite, "paths": paths,
            "tasks": [{"task_index": r.task_index, "language": r.language, "covered": r.covered,
                       "attempts": r.attempts, "successes": r.successes,
                       "rate": r.rate if r.attempts else None} for r in results]}


def _task_name(suite: str, index: int) -> str:
    from sim.libero_suites import task_info
    return task_info(suite, index).name
