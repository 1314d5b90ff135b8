"""Late-fusion baselines of MS-Bot: Concat (flatten all tokens -> MLP) and MULSA (self-attention)."""

from policies.concat_fusion.configuration_concat_fusion import ConcatFusionConfig  # noqa: F401
from policies.concat_fusion.modeling_concat_fusion import ConcatFusionPolicy  # noqa: F401
