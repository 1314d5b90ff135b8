"""Batched closed-loop evaluation on Meta-World: several envs stepped in lock-step, one batched
policy call per step (the model cost is paid once per step, not once per env), with the same action
queue / ACT temporal ensembling as ``Policy.select_action`` kept per env. Episode i starts from init
state ``start_index + i`` of the env's ``init_seed`` split (0 = evaluation split; demos use 1)."""

from __future__ import annotations

import collections
import logging
import os
from typing import Sequence

import numpy as np
import torch

from policystack import keys as K

log = logging.getLogger(__name__)


def _ensemble(buf: collections.deque, chunk: np.ndarray, coeff: float) -> np.ndarray:
    buf.append(list(chunk))
    preds = [c.pop(0) for c in buf]
    while buf and not buf[0]:
        buf.popleft()
    w = np.exp(-coeff * np.arange(len(preds)))
    return (np.stack(preds) * w[:, None]).sum(0) / w.sum()


@torch.no_grad()
def rollout_task(policy, task: str, n_episodes: int, cameras: Sequence[str], image_size: int = 64,
                 init_seed: int = 0, start_index: int = 0, max_steps: int = 200, n_envs: int = 10) -> list[dict]:
    """Run ``n_episodes`` of ``task``; returns [{init_state_index, success, length}]."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import sim
    policy.eval()
    keys = [k for k in policy.config.input_spec.keys()]
    coeff = policy.config.temporal_ensemble_coeff
    n_act = policy.config.n_action_steps
    envs = [sim.make_env(task, cameras=tuple(cameras), image_size=image_size, init_seed=init_seed,
                         max_episode_steps=max_steps) for _ in range(min(n_envs, n_episodes))]
    results = []
    try:
        for wave in range(0, n_episodes, len(envs)):
            idxs = list(range(wave, min(wave + len(envs), n_episodes)))
            obs = [envs[j].reset(options={"init_state_index": start_index + i})[0] for j, i in enumerate(idxs)]
            active = list(range(len(idxs)))
            success = [False] * len(idxs)
            length = [0] * len(idxs)
            queues = [collections.deque() for _ in idxs]      # action queue (no ensembling)
            ens = [collections.deque() for _ in idxs]         # chunk predictions (ensembling)
            fresh: dict[int, np.ndarray] = {}
            while active:
                need = [j for j in active if coeff is not None or not queues[j]]
                if need:
                    batch = {}
                    for k in keys:
                        if k == K.TASK:
                            batch[k] = [obs[j][k] for j in need]
                        else:
                            batch[k] = torch.from_numpy(np.stack([obs[j][k] for j in need])).to(policy.device)
                    chunks = policy.predict_action_chunk(batch).float().cpu().numpy()
                    for j, ch in zip(need, chunks):
                        if coeff is not None:
                            fresh[j] = ch
                        else:
                            queues[j].extend(ch[:n_act])
                still = []
                for j in active:
                    if coeff is not None:
                        a = _ensemble(ens[j], fresh.pop(j), coeff)
                    else:
                        a = queues[j].popleft()
                    obs[j], _, term, trunc, info = envs[j].step(np.asarray(a, np.float32))
                    length[j] += 1
                    success[j] = success[j] or bool(info["is_success"])
                    if not (term or trunc):
                        still.append(j)
                active = still
            results += [{"init_state_index": start_index + i, "success": success[j], "length": length[j]}
                        for j, i in enumerate(idxs)]
    finally:
        for e in envs:
            e.close()
    return results
