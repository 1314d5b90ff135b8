"""Torch datasets over in-memory episodes: observation history + future action chunks."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from policystack import keys as K
from policystack.dataset import Episode


class ChunkDataset(torch.utils.data.Dataset):
    """Sample (t): obs at t-n_obs+1..t (first frame repeated at the start), actions t..t+chunk-1.

    Actions past the episode end repeat the last action and are flagged in ``action_is_pad``, so
    losses can mask them. With ``n_obs_steps == 1`` observations have no time axis.
    """

    def __init__(self, episodes: Sequence[Episode], obs_keys: Sequence[str], n_obs_steps: int = 1,
                 chunk_size: int = 1):
        self.episodes = list(episodes)
        self.obs_keys = [k for k in obs_keys if k != K.TASK]
        self.with_task = K.TASK in obs_keys
        self.n_obs, self.chunk = n_obs_steps, chunk_size
        self.index = np.array([(e, t) for e, ep in enumerate(self.episodes) for t in range(len(ep))],
                              dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        e, t = self.index[i]
        ep = self.episodes[e]
        T = len(ep)
        out = {}
        if self.n_obs == 1:
            for k in self.obs_keys:
                out[k] = torch.from_numpy(np.asarray(ep.obs[k][t]))
        else:
            idx = np.clip(np.arange(t - self.n_obs + 1, t + 1), 0, T - 1)
            for k in self.obs_keys:
                out[k] = torch.from_numpy(np.asarray(ep.obs[k][idx]))
        aidx = np.arange(t, t + self.chunk)
        out[K.ACTION] = torch.from_numpy(ep.actions[np.minimum(aidx, T - 1)])
        out["action_is_pad"] = torch.from_numpy(aidx >= T)
        if self.with_task:
            out[K.TASK] = ep.task
        return out

    def get_batch(self, indices) -> dict:
        """A collated batch by vectorised indexing (much faster than collating __getitem__ samples)."""
        idx = self.index[np.asarray(indices)]
        by_ep: dict[int, list[int]] = {}
        for row, e in enumerate(idx[:, 0]):
            by_ep.setdefault(int(e), []).append(row)
        n = len(idx)
        out: dict = {}
        pads = np.zeros((n, self.chunk), bool)
        tasks = [""] * n
        for e, rows in by_ep.items():
            ep = self.episodes[e]
            T = len(ep)
            t = idx[rows, 1]
            aidx = t[:, None] + np.arange(self.chunk)[None]
            pads[rows] = aidx >= T
            acts = ep.actions[np.minimum(aidx, T - 1)]
            if K.ACTION not in out:
                out[K.ACTION] = np.empty((n,) + acts.shape[1:], acts.dtype)
            out[K.ACTION][rows] = acts
            oidx = t if self.n_obs == 1 else np.clip(t[:, None] + np.arange(-self.n_obs + 1, 1)[None], 0, T - 1)
            for k in self.obs_keys:
                v = ep.obs[k][oidx]
                if k not in out:
                    out[k] = np.empty((n,) + v.shape[1:], v.dtype)
                out[k][rows] = v
            for r in rows:
                tasks[r] = ep.task
        batch = {k: torch.from_numpy(v) for k, v in out.items()}
        batch["action_is_pad"] = torch.from_numpy(pads)
        if self.with_task:
            batch[K.TASK] = tasks
        return batch
