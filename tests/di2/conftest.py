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
