"""DI² (Depth Helps, IROS 2024): inject depth into an RGB policy that deploys with RGB only."""

from policies.di2.configuration_di2 import DI2Config  # noqa: F401
from policies.di2.modeling_di2 import DI2Policy  # noqa: F401
