"""Windows of frames for DI² training, held in memory as flat arrays (fast batched indexing on CPU).

A sample is the window of ``window`` frames ending at step t of an episode (the first frame repeated
before the episode start, as ``Policy.select_action`` does at run time), with the action of every
frame and a ``valid`` mask that is False on the repeated padding frames.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from policystack import keys as K
from policystack.dataset import Episode, read_episodes
from policystack.errors import DatasetError

log = logging.getLogger(__name__)


def load_episodes(paths: Sequence[str | Path], cameras: Sequence[str], with_depth: bool = True,
                  limit: int | None = None) -> list[Episode]:
    keys = [K.image_key(c) for c in cameras] + ([K.depth_key(c) for c in cameras] if with_depth else [])
    episodes: list[Episode] = []
    for p in paths:
        eps = read_episodes(p, keys=keys, limit=limit)
        if any(not ep.task for ep in eps):
            raise DatasetError(f"{p}: episodes carry no instruction ('task' attribute); DI² is "
                               f"language-conditioned")
        episodes += eps
    if not episodes:
        raise DatasetError(f"no episodes in {list(map(str, paths))}")
    return episodes


def split_episodes(episodes: Sequence[Episode], val_every: int) -> tuple[list[Episode], list[Episode]]:
    """Hold out every ``val_every``-th episode of each task (0: no held-out set)."""
    if val_every <= 0:
        return list(episodes), []
    train, val, count = [], [], {}
    for ep in episodes:
        i = count.get(ep.task, 0)
        count[ep.task] = i + 1
        (val if i % val_every == val_every - 1 else train).append(ep)
    return train, val


class WindowData:
    """All frames of all episodes concatenated per key; ``batch(idx)`` gathers windows in one go."""

    def __init__(self, episodes: Sequence[Episode], cameras: Sequence[str], window: int, with_depth: bool):
        if not episodes:
            raise DatasetError("WindowData needs at least one episode")
        self.window = window
        self.keys = [K.image_key(c) for c in cameras] + ([K.depth_key(c) for c in cameras] if with_depth else [])
        self.arrays: dict[str, np.ndarray] = {}
        for k in self.keys:
            parts = [ep.obs[k] for ep in episodes]
            arr = np.concatenate(parts)
            # depth in metres as float16 halves memory; precision (~1e-3 m at 2 m) is far below the clip
            self.arrays[k] = arr.astype(np.float16) if K.modality_of(k) == "depth" else arr
        self.actions = np.concatenate([ep.actions for ep in episodes]).astype(np.float32)
        lengths = np.array([len(ep) for ep in episodes])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.tasks = [ep.task for ep in episodes]
        self.ep_of = np.repeat(np.arange(len(episodes)), lengths)
        self.t_of = np.concatenate([np.arange(n) for n in lengths])
        self.start_of = starts[self.ep_of]

    def __len__(self) -> int:
        return len(self.actions)

    def batch(self, idx: np.ndarray, window: int | None = None) -> dict:
        """Windows ending at global frame indices ``idx`` (B,) -> dict of (B, window, ...) tensors."""
        idx = np.asarray(idx)
        offs = np.arange(-(window or self.window) + 1, 1)
        rel = self.t_of[idx][:, None] + offs[None]              # time within the episode (may be < 0)
        gidx = self.start_of[idx][:, None] + np.maximum(rel, 0)
        out = {k: torch.from_numpy(self.arrays[k][gidx]) for k in self.keys}
        out[K.ACTION] = torch.from_numpy(self.actions[gidx])
        out["valid"] = torch.from_numpy(rel >= 0)
        out[K.TASK] = [self.tasks[e] for e in self.ep_of[idx]]
        return out

    def sample(self, batch_size: int, generator: torch.Generator) -> dict:
        idx = torch.randint(0, len(self), (batch_size,), generator=generator).numpy()
        return self.batch(idx)

    def iter_eval(self, batch_size: int, max_batches: int | None = None, stride: int = 1,
                  window: int | None = None):
        """Deterministic batches over every ``stride``-th frame (held-out metrics, token caches)."""
        idx = np.arange(0, len(self), stride)
        for n, s in enumerate(range(0, len(idx), batch_size)):
            if max_batches is not None and n >= max_batches:
                return
            yield self.batch(idx[s:s + batch_size], window)
