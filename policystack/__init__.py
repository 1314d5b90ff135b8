"""policystack: a robot-learning policy stack with ROS 2 deployment.

The core shared by every area: observation keys, feature specs, typed configs,
HDF5 episodes, checkpoints and the `policystack` command line.
"""

__version__ = "0.1.0"
