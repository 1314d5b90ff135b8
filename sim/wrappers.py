"""Composable env wrappers used by evaluation: fixed init-state schedules and episode videos."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import gymnasium as gym
import numpy as np

log = logging.getLogger(__name__)


def take_init_state_index(env, seed: int | None, options: dict | None) -> int:
    """The reset protocol every env family shares: ``reset(seed=...)`` rewinds to init state 0, each reset
    takes the next index unless ``options["init_state_index"]`` names one (kept in ``env._next_index``)."""
    if seed is not None:
        env._next_index = 0
    index = int((options or {}).get("init_state_index", env._next_index))
    if index < 0:
        raise ValueError(f"init_state_index must be >= 0, got {index}")
    env._next_index = index + 1
    return index


class InitStateSchedule(gym.Wrapper):
    """Reset k starts from init state ``indices[k]`` (then repeats the last), so a vector sub-env
    always plays the same fixed episodes whatever the other sub-envs do."""

    def __init__(self, env: gym.Env, indices: Sequence[int]):
        super().__init__(env)
        if not len(indices):
            raise ValueError("InitStateSchedule needs at least one index")
        self.indices = list(indices)
        self.k = 0

    def reset(self, *, seed=None, options=None):
        options = dict(options or {})
        options.setdefault("init_state_index", self.indices[min(self.k, len(self.indices) - 1)])
        self.k += 1
        return self.env.reset(seed=seed, options=options)


class EpisodeVideo(gym.Wrapper):
    """Write an mp4 of the episodes whose init-state index is in ``record`` (frames from env.render())."""

    def __init__(self, env: gym.Env, video_dir: str | Path, record: Sequence[int], fps: int = 30, prefix: str = ""):
        super().__init__(env)
        self.video_dir, self.record, self.fps, self.prefix = Path(video_dir), set(record), fps, prefix
        self.frames: list[np.ndarray] = []
        self.index = -1

    def reset(self, **kw):
        obs, info = self.env.reset(**kw)
        self.index = int(info.get("init_state_index", -1))
        self.frames = [self.env.render()] if self.index in self.record else []
        return obs, info

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        if self.frames:
            self.frames.append(self.env.render())
            if term or trunc:
                self._write(bool(info.get("is_success", False)))
        return obs, r, term, trunc, info

    def _write(self, success: bool) -> None:
        import imageio
        self.video_dir.mkdir(parents=True, exist_ok=True)
        path = self.video_dir / f"{self.prefix}episode_{self.index:03d}_{'success' if success else 'fail'}.mp4"
        imageio.mimsave(path, self.frames, fps=self.fps, macro_block_size=1)
        log.info("wrote %s", path)
        self.frames = []
