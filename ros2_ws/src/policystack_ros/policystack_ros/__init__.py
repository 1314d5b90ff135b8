"""ROS 2 entry points for policystack. The node code lives in ``policystack.ros`` (importable without a
colcon install, so `policystack ros launch` runs the same nodes); these modules only start it."""

import importlib


def load_main(executable: str):
    try:
        ros = importlib.import_module("policystack.ros")
    except ImportError as e:  # the Python running ROS cannot see the ML environment
        raise SystemExit(
            f"policystack_ros/{executable}: cannot import policystack ({e}). Install policystack into the "
            "Python that runs ROS (e.g. a venv created with --system-site-packages, then build the workspace "
            "with that venv's python -m colcon build); see docs/ros2.md.") from e
    module, func = ros.EXECUTABLES[executable].split(":")
    return getattr(importlib.import_module(module), func)
