"""KOI: key-state guided online imitation with an optimal-transport reward (CoRL 2024); ROT when nu = uniform."""

from policies.koi.configuration_koi import KOIConfig  # noqa: F401
from policies.koi.modeling_koi import KOIPolicy  # noqa: F401
