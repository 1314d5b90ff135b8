"""DecisionNCE (Li et al., ICML 2024): trajectory-language representation by implicit preference.

Pieces: ``encoder.DualEncoder`` (CLIP RN50 or a small CPU config), ``losses`` (-P / -T symmetric
InfoNCE), ``data`` (segment sampler), ``train_decisionnce.pretrain`` (single process or torchrun
DDP), ``rewards`` and the frozen-encoder LCBC probe policy ``decisionnce``.
"""

from policies.decisionnce.configuration_decisionnce import DecisionNCEConfig, EncoderConfig, PretrainConfig  # noqa: F401
from policies.decisionnce.modeling_decisionnce import DecisionNCEPolicy  # noqa: F401
