"""MS-Bot (stage-guided multi-sensory fusion) for policystack; importing registers the policy."""

from policies.msbot.configuration_msbot import MSBotConfig  # noqa: F401
from policies.msbot.modeling_msbot import MSBotPolicy  # noqa: F401
