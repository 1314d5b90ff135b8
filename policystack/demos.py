"""Scripted-expert demonstrations written as HDF5 episodes (only successful episodes are kept)."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from policystack import keys as K
from policystack.dataset import Episode, EpisodeWriter

log = logging.getLogger(__name__)


def rollout_expert(env, index: int, noise: float = 0.0, rng: np.random.Generator | None = None) -> tuple[Episode, bool]:
    """One expert episode from init state ``index``. With ``noise`` > 0 the executed action is perturbed
    but the recorded label is the expert's clean action (DART), so BC sees recoveries."""
    expert = env.unwrapped.expert()
    obs, info = env.reset(options={"init_state_index": index})
    rng = rng or np.random.default_rng(index)
    frames: dict[str, list] = {k: [] for k in obs if k != K.TASK}
    actions, rewards = [], []
    success = False
    while True:
        a = expert(env.unwrapped.expert_state)
        for k in frames:
            frames[k].append(obs[k])
        actions.append(a)
        executed = np.clip(a + noise * rng.standard_normal(a.shape).astype(np.float32), -1, 1) if noise else a
        obs, r, term, trunc, info = env.step(executed)
        rewards.append(r)
        success = success or bool(info["is_success"])
        if term or trunc:
            break
    T = len(actions)
    dones = np.zeros(T, np.uint8)
    dones[-1] = 1
    ep = Episode(obs={k: np.stack(v) for k, v in frames.items()}, actions=np.stack(actions).astype(np.float32),
                 rewards=np.asarray(rewards, np.float32), dones=dones, task=obs[K.TASK],
                 attrs={"init_state_index": index, "success": success})
    return ep, success


def _worker(task: str, indices: Sequence[int], env_kwargs: dict, noise: float) -> list[tuple[int, Any, bool]]:
    os.environ.setdefault("MUJOCO_GL", "egl")
    import sim
    env = sim.make_env(task, **env_kwargs)
    out = []
    for i in indices:
        ep, ok = rollout_expert(env, i, noise)
        out.append((i, ep if ok else None, ok))
    env.close()
    return out


def generate_metaworld_demos(task: str, n_episodes: int, out_path: str | os.PathLike, cameras: Sequence[str] = (),
                             image_size: int = 84, depth: bool = False, init_seed: int = 1, noise: float = 0.0,
                             state: str = "full",
                             n_workers: int = 1, max_attempts_factor: float = 2.0, progress: bool = True) -> Path:
    """Write ``n_episodes`` successful expert episodes of a Meta-World task (appending to ``out_path``).

    Init states come from the ``init_seed`` split (1 by default, disjoint from evaluation's 0).
    """
    import sim
    from sim.metaworld_tasks import INSTRUCTIONS, resolve_tasks
    (task,) = resolve_tasks(task)
    env_kwargs = dict(task=task, cameras=tuple(cameras), image_size=image_size, depth=depth, init_seed=init_seed,
                      state=state)
    probe = sim.make_env(task, **{k: v for k, v in env_kwargs.items() if k != "task"})
    features = probe.unwrapped.spec_features
    probe.close()
    out_path = Path(out_path)
    kept, tried, index = 0, 0, 0
    max_tries = int(np.ceil(n_episodes * max_attempts_factor)) + 2
    bar = tqdm(total=n_episodes, desc=f"demos {task}", disable=not progress or None, dynamic_ncols=True)
    env_kwargs.pop("task")
    with EpisodeWriter(out_path, env_args={"env_name": f"policystack/MetaWorld-{task}", **env_kwargs,
                                           "cameras": list(cameras)},
                       features=features, language=INSTRUCTIONS[task]) as w:
        pool = ProcessPoolExecutor(n_workers, mp_context=__import__("multiprocessing").get_context("spawn")) \
            if n_workers > 1 else None
        try:
            while kept < n_episodes and tried < max_tries:
                need = n_episodes - kept
                batch = list(range(index, index + need))
                index += need
                tried += need
                if pool:
                    chunks = [batch[k::n_workers] for k in range(n_workers)]
                    results = [r for f in [pool.submit(_worker, task, c, env_kwargs, noise) for c in chunks if c]
                               for r in f.result()]
                else:
                    results = _worker(task, batch, env_kwargs, noise)
                for i, ep, ok in sorted(results, key=lambda r: r[0]):
                    if ok and kept < n_episodes:
                        w.add(ep)
                        kept += 1
                        bar.update(1)
        finally:
            if pool:
                pool.shutdown()
    bar.close()
    if kept < n_episodes:
        log.warning("%s: only %d/%d successful expert episodes in %d tries", task, kept, n_episodes, tried)
    log.info("%s: %d demos (%d tried) -> %s", task, kept, tried, out_path)
    return out_path
