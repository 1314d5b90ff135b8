"""Shared fixtures: a tiny Meta-World RGB-D dataset (two tasks, rendered here) and tiny DI² configs."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

CAMERAS = ("corner2", "topview")
TASKS = ("button-press-topdown-v3", "drawer-close-v3")
IMAGE_SIZE = 32


def tiny_policy_config(**kw):
    from policies.di2 import DI2Config
    base = dict(cameras=CAMERAS, text_encoder="hash", window=3, dim=32, n_tokens=8, patch_grid=4,
                encoder_channels=8, resampler_depth=1, heads=2, fusion_depth=1, n_query_tokens=2,
                lstm_hidden=32, lstm_layers=1, codebook_size=32, dcm_depth=1)
    base.update(kw)
    return DI2Config(**base)


@pytest.fixture(scope="session")
def mw_rgbd_dataset(tmp_path_factory):
    """Two Meta-World tasks x 3 expert episodes with RGB + metric depth of two cameras at 32 px."""
    pytest.importorskip("metaworld")
    from policystack.demos import generate_metaworld_demos
    root = tmp_path_factory.mktemp("di2_data")
    paths = []
    for task in TASKS:
        p = root / f"{task}.hdf5"
        generate_metaworld_demos(task, 3, p, cameras=CAMERAS, image_size=IMAGE_SIZE, depth=True, progress=False)
        paths.append(str(p))
    return tuple(paths)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def write_toy_blocks(path, n_episodes: int = 12, steps: int = 30, size: int = IMAGE_SIZE, seed: int = 0) -> str:
    """The spec's synthetic toy: a coloured block on a plane 2 m away, its colour encoding its height,
    so depth is a (learnable) function of RGB; every frame is a new random block."""
    from policystack import keys as K
    from policystack.dataset import Episode, EpisodeWriter
    rng = np.random.default_rng(seed)
    with EpisodeWriter(path, language="stack the blocks") as w:
        for _ in range(n_episodes):
            obs = {}
            for cam in CAMERAS:
                rgb = np.full((steps, size, size, 3), 60, np.uint8)
                depth = np.full((steps, size, size), 2.0, np.float32)
                for t in range(steps):
                    h = rng.uniform(0.1, 0.9)
                    s = rng.integers(size // 3, size // 2 + 2)
                    y, x = rng.integers(0, size - s, 2)
                    rgb[t, y:y + s, x:x + s] = (int(255 * h), 255 - int(255 * h), 128)
                    depth[t, y:y + s, x:x + s] = 2.0 - h
                obs[K.image_key(cam)], obs[K.depth_key(cam)] = rgb, depth
            w.add(Episode(obs=obs, actions=rng.uniform(-1, 1, (steps, 4)).astype(np.float32),
                          rewards=np.zeros(steps, np.float32), dones=np.eye(1, steps, steps - 1, dtype=np.uint8)[0],
                          task="stack the blocks"))
    return str(path)


@pytest.fixture(scope="session")
def toy_blocks_dataset(tmp_path_factory):
    return write_toy_blocks(tmp_path_factory.mktemp("di2_toy") / "blocks.hdf5")
