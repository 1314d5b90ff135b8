"""Robo-MUTUAL (Li et al., ICRA 2025): one policy for text or image goals, via a shared DecisionNCE
embedding space, Collapse (mean subtraction / Delete) and Corrupt (cosine-similarity noise)."""

from policies.robo_mutual.configuration_robo_mutual import RoboMutualConfig  # noqa: F401
from policies.robo_mutual.modeling_robo_mutual import RoboMutualPolicy  # noqa: F401
