"""Shared fixtures for KOI tests: tiny policies (16x16 images) so the suite runs in seconds on a busy CPU."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from policystack.spec import Feature, Spec  # noqa: E402

CAM = "observation.images.corner2"


def tiny_features(size: int = 16) -> Spec:
    return Spec.of([Feature(CAM, (size, size, 3), "uint8"),
                    Feature("observation.state", (39,), "float32"),
                    Feature("task", (), "str"),
                    Feature("action", (4,), "float32", low=-1, high=1)])


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
