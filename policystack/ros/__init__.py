"""ROS 2 deployment: thin rclpy shells over the same Policy / Env / Sensor objects.

Nothing here imports rclpy at module import time except the node modules themselves, so
``import policystack`` (and the pure parts: :mod:`policystack.ros.safety`, :mod:`policystack.ros.topics`,
:mod:`policystack.ros.minilaunch`) never need ROS. Node executables are listed in :data:`EXECUTABLES`;
the colcon package ``policystack_ros`` installs the same names as console scripts.
"""

from __future__ import annotations

# executable name -> "module:function"; the ament package's setup.py declares the same set
EXECUTABLES = {
    "policy_node": "policystack.ros.policy_node:main",
    "sim_node": "policystack.ros.sim_node:main",
    "arm_bridge": "policystack.ros.arm_bridge:main",
    "recorder": "policystack.ros.recorder:main",
    "sensor_node": "policystack.ros.sensor_node:main",
}
PACKAGE = "policystack_ros"


def have_rclpy() -> bool:
    import importlib.util
    return importlib.util.find_spec("rclpy") is not None
