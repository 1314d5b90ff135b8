"""Closed-loop evaluation on gymnasium vector envs with fixed init-state indices.

Episode i starts from init state ``start_index + i``; sub-env k plays episodes k, k+n_envs, ...,
whatever the others do (no init-state drift under autoreset). Each sub-env has its own copy of the
policy (its own action queue). Output follows lerobot's eval_info: ``pc_success``, per-task results,
per-episode records and video paths, written as JSON when ``out_dir`` is given.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from policystack.checkpoint import atomic_write_text
from policies.base import Policy, load_policy

log = logging.getLogger(__name__)


def _make_sub_env(env_name: str, env_kwargs: Mapping[str, Any], indices: Sequence[int],
                  video_dir: str | None, record: Sequence[int], prefix: str) -> gym.Env:
    os.environ.setdefault("MUJOCO_GL", "egl")
    torch.set_num_threads(1)
    import sim
    from sim.wrappers import EpisodeVideo, InitStateSchedule
    env = sim.make_env(env_name, **dict(env_kwargs))
    if video_dir and record:
        env = EpisodeVideo(env, video_dir, record, prefix=prefix)
    return InitStateSchedule(env, indices)


def _unbatch(obs: Mapping[str, Any], i: int) -> dict[str, Any]:
    return {k: (v[i] if not isinstance(v, str) else v) for k, v in obs.items()}


def evaluate(policy: Policy | str | Path, env_name: str, n_episodes: int = 10,
             env_kwargs: Mapping[str, Any] | None = None, n_envs: int = 1, start_index: int = 0,
             video_dir: str | Path | None = None, max_videos: int = 2, out_dir: str | Path | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Run ``n_episodes`` of one env; returns (and optionally writes) the report."""
    if isinstance(policy, (str, Path)):
        policy = load_policy(policy)
    policy.eval()
    env_kwargs = dict(env_kwargs or {})
    n_envs = max(1, min(n_envs, n_episodes))
    indices = [start_index + i for i in range(n_episodes)]
    record = indices[:max_videos] if video_dir else []
    prefix = env_name.replace("/", "_") + "_"
    schedules = [indices[k::n_envs] for k in range(n_envs)]
    fns = [partial(_make_sub_env, env_name, env_kwargs, s, str(video_dir) if video_dir else None,
                   [i for i in record if i in s], prefix) for s in schedules]
    t0 = time.time()
    if n_envs == 1:  # same code path, no worker processes
        envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    else:
        envs = gym.vector.AsyncVectorEnv(fns, context="spawn", autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    env_spec = envs.get_attr("spec_features")[0]
    env_spec.check_satisfies(policy.config.input_spec, who=f"{policy.name} policy", source=f"env {env_name}")
    policies = [policy] + [copy.deepcopy(policy) for _ in range(n_envs - 1)]
    remaining = [list(s) for s in schedules]
    episodes: list[dict] = []
    try:
        obs, info = envs.reset()
        current = [r.pop(0) for r in remaining]
        active = np.ones(n_envs, bool)
        ret = np.zeros(n_envs)
        length = np.zeros(n_envs, int)
        success = np.zeros(n_envs, bool)
        for p in policies:
            p.reset()
        bar = tqdm(total=n_episodes, desc=f"eval {env_name}", disable=not progress or None, dynamic_ncols=True)
        while active.any():
            actions = np.stack([policies[k].select_action(_unbatch(obs, k)) if active[k]
                                else np.zeros(envs.single_action_space.shape, np.float32) for k in range(n_envs)])
            obs, rew, term, trunc, info = envs.step(actions)
            ret += rew
            length += 1
            success |= np.asarray(info.get("is_success", np.zeros(n_envs, bool)), bool)
            done = (term | trunc) & active
            if done.any():
                for k in np.flatnonzero(done):
                    episodes.append({"init_state_index": int(current[k]), "success": bool(success[k]),
                                     "length": int(length[k]), "sum_reward": float(ret[k])})
                    bar.update(1)
                    bar.set_postfix(success=f"{np.mean([e['success'] for e in episodes]):.2f}")
                    if remaining[k]:
                        current[k] = remaining[k].pop(0)
                        policies[k].reset()
                    else:
                        active[k] = False
                    ret[k], length[k], success[k] = 0.0, 0, False
                # reset every finished sub-env (also exhausted ones, so none is stepped past its end)
                obs_r, _ = envs.reset(options={"reset_mask": done})
                for key in obs:
                    if isinstance(obs[key], np.ndarray):
                        obs[key][done] = obs_r[key][done]
        bar.close()
    finally:
        envs.close()
    episodes.sort(key=lambda e: e["init_state_index"])
    elapsed = time.time() - t0
    report = {
        "env": env_name, "env_kwargs": env_kwargs, "n_episodes": len(episodes),
        "pc_success": 100.0 * float(np.mean([e["success"] for e in episodes])),
        "success_rate": float(np.mean([e["success"] for e in episodes])),
        "avg_length": float(np.mean([e["length"] for e in episodes])),
        "avg_sum_reward": float(np.mean([e["sum_reward"] for e in episodes])),
        "eval_s": round(elapsed, 2), "eval_ep_s": round(elapsed / max(1, len(episodes)), 3),
        "episodes": episodes,
        "videos": sorted(str(p) for p in Path(video_dir).glob(f"{prefix}*.mp4")) if video_dir else [],
    }
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out_dir) / "eval_info.json", json.dumps(report, indent=2))
    return report


def evaluate_tasks(policy: Policy | str | Path, env_names: Sequence[str], out_dir: str | Path | None = None,
                   **kw) -> dict[str, Any]:
    """Evaluate several envs (e.g. MT10) and aggregate per task."""
    if isinstance(policy, (str, Path)):
        policy = load_policy(policy)
    per_task = {}
    for name in env_names:
        per_task[name] = evaluate(policy, name, **kw)
    report = {
        "per_task": {k: {"success_rate": v["success_rate"], "avg_length": v["avg_length"],
                         "n_episodes": v["n_episodes"], "videos": v["videos"]} for k, v in per_task.items()},
        "success_rate": float(np.mean([v["success_rate"] for v in per_task.values()])),
        "n_episodes": int(sum(v["n_episodes"] for v in per_task.values())),
        "eval_s": round(sum(v["eval_s"] for v in per_task.values()), 2),
        "episodes": {k: v["episodes"] for k, v in per_task.items()},
    }
    report["pc_success"] = 100 * report["success_rate"]
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(out_dir) / "eval_info.json", json.dumps(report, indent=2))
    return report
