"""Fixtures for KOI tests; plain helpers live in koi_helpers.py (tests import them from there)."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from koi_helpers import tiny_features  # noqa: E402


@pytest.fixture
def tiny_policy():
    from policies.base import make_policy
    from policies.koi import KOIConfig
    torch.manual_seed(0)
    cfg = KOIConfig(hidden_dim=32, feature_dim=8, conv_channels=4, conv_strides=(2, 1), augment_pad=2)
    return make_policy(cfg, tiny_features())


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One thread for KOI tests (shared CI cores: avoids OpenMP spin-waits); restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
