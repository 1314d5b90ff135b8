"""Behaviour cloning: the reference baseline every other policy is compared with."""

from policies.bc.configuration_bc import BCConfig  # noqa: F401
from policies.bc.modeling_bc import BCPolicy  # noqa: F401
