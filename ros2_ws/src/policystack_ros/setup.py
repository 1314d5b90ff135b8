"""ament_python package: console scripts for the nodes + the launch files and params YAML.

The launch files live in the repository's top-level launch/ folder (usable by path); they are
installed to share/policystack_ros/launch/ so `ros2 launch policystack_ros sim.launch.py` works.
"""

from glob import glob
import os

from setuptools import setup

PACKAGE = "policystack_ros"
HERE = os.path.dirname(os.path.abspath(__file__))
# relative to this file: setuptools refuses absolute data_files sources
LAUNCH_DIR = os.path.relpath(os.path.join(HERE, "..", "..", "..", "launch"), HERE)
EXECUTABLES = ["policy_node", "sim_node", "arm_bridge", "recorder", "sensor_node"]


def _launch_files(pattern):
    os.chdir(HERE)
    return sorted(glob(os.path.join(LAUNCH_DIR, pattern)))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", _launch_files("*.launch.py") + _launch_files("*.yaml")
         + _launch_files("*.xml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="policystack",
    maintainer_email="policystack@example.com",
    description="ROS 2 nodes wrapping policystack policies, envs and sensors",
    license="MIT",
    extras_require={"test": ["pytest"]},
    entry_points={"console_scripts": [f"{exe} = {PACKAGE}.{exe}:main" for exe in EXECUTABLES]},
)
