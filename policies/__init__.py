"""Policies: the contract (policies.base) and one folder per policy, found by convention.

``policies/<name>/`` must define, in ``configuration_<name>.py``, a config dataclass decorated with
``@register_config("policy", "<name>")`` and, in ``modeling_<name>.py``, a ``Policy`` subclass decorated
with ``@register_policy``. Nothing here names a specific policy: ``get_policy_class("x")`` imports
``policies.x`` on first use.
"""

from policies.base import (  # noqa: F401
    Policy,
    PolicyConfig,
    available_policies,
    get_policy_class,
    load_policy,
    make_policy,
    register_policy,
)
