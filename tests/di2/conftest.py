"""DI² fixtures: a tiny Meta-World RGB-D dataset (two tasks, rendered here) and the synthetic toy.
Plain helpers live in di2_helpers.py (a unique module name; never `from conftest import`)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from di2_helpers import CAMERAS, IMAGE_SIZE, TASKS, write_toy_blocks  # noqa: E402


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


@pytest.fixture(scope="session")
def toy_blocks_dataset(tmp_path_factory):
    return write_toy_blocks(tmp_path_factory.mktemp("di2_toy") / "blocks.hdf5")
