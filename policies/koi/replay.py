"""Episodic replay with n-step returns (DrQ-v2 layout) and the expert buffer for BC.

An episode is stored whole: frames f_0..f_T (f_0 the reset frame), actions a_1..a_T (a_t produced f_t;
``actions[0]`` is a placeholder) and rewards r_0..r_T (r_t attached to the step that produced f_t; r_0
unused). A sample picks an episode uniformly, then idx in [1, T - n + 1]:

    obs      = stack(idx - 1)          action = a_idx
    reward   = sum_{i<n} gamma^i r_{idx+i}
    discount = gamma^n                  (time limits are not terminal)
    next_obs = stack(idx + n - 1)

Frames are stored once and stacked on sampling (the first frame repeats at the start).
Episodes can be written to disk (compressed ``.npz``) so a run resumes with its buffer.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from policystack.checkpoint import atomic_write_bytes


@dataclass
class StoredEpisode:
    frames: np.ndarray    # (T+1, H, W, 3) uint8
    actions: np.ndarray   # (T+1, A) float32
    rewards: np.ndarray   # (T+1,) float32

    def __len__(self) -> int:   # transitions
        return len(self.frames) - 1

    def save(self, path: Path) -> None:
        import io
        buf = io.BytesIO()
        np.savez_compressed(buf, frames=self.frames, actions=self.actions, rewards=self.rewards)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> "StoredEpisode":
        with np.load(path) as d:
            return cls(d["frames"], d["actions"], d["rewards"])


def stack_at(frames: np.ndarray, t: int, n: int) -> np.ndarray:
    """(3n, H, W) stack of frames t-n+1..t (indices below 0 repeat frame 0)."""
    idx = [max(t - k, 0) for k in range(n - 1, -1, -1)]
    return np.concatenate([np.moveaxis(frames[i], -1, 0) for i in idx], axis=0)


def nstep_return(rewards: np.ndarray, idx: int, nstep: int, gamma: float) -> tuple[float, float]:
    """(sum_{i<n} gamma^i r_{idx+i}, gamma^n)."""
    ret, disc = 0.0, 1.0
    for i in range(nstep):
        ret += disc * float(rewards[idx + i])
        disc *= gamma
    return ret, disc


class EpisodeReplay:
    def __init__(self, capacity: int, nstep: int = 3, gamma: float = 0.99, frame_stack: int = 3):
        if nstep < 1:
            raise ValueError("nstep must be >= 1")
        self.capacity, self.nstep, self.gamma, self.frame_stack = capacity, nstep, gamma, frame_stack
        self.episodes: collections.deque[StoredEpisode] = collections.deque()
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, ep: StoredEpisode) -> None:
        if len(ep) < self.nstep:
            raise ValueError(f"episode of {len(ep)} steps is shorter than nstep={self.nstep}")
        self.episodes.append(ep)
        self.size += len(ep)
        while self.size > self.capacity and len(self.episodes) > 1:
            self.size -= len(self.episodes.popleft())

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if not self.episodes:
            raise RuntimeError("replay buffer is empty")
        obs, act, rew, disc, nxt = [], [], [], [], []
        for e in rng.integers(0, len(self.episodes), size=batch_size):
            ep = self.episodes[e]
            idx = int(rng.integers(1, len(ep) - self.nstep + 2))
            r, d = nstep_return(ep.rewards, idx, self.nstep, self.gamma)
            obs.append(stack_at(ep.frames, idx - 1, self.frame_stack))
            act.append(ep.actions[idx])
            rew.append(r)
            disc.append(d)
            nxt.append(stack_at(ep.frames, idx + self.nstep - 1, self.frame_stack))
        return {"obs": np.stack(obs), "action": np.stack(act).astype(np.float32),
                "reward": np.asarray(rew, np.float32)[:, None], "discount": np.asarray(disc, np.float32)[:, None],
                "next_obs": np.stack(nxt)}


def sample_expert(demos: list, batch_size: int, frame_stack: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """BC batch from demos (``Demo``): one random demo, one random t >= 1; pairs stack(t-1) with a_t."""
    obs, act = [], []
    for e in rng.integers(0, len(demos), size=batch_size):
        d = demos[e]
        t = int(rng.integers(1, len(d)))
        obs.append(stack_at(d.frames, t - 1, frame_stack))
        act.append(d.actions[t])
    return {"obs": np.stack(obs), "action": np.stack(act).astype(np.float32)}
