"""Configuration of the Concat / MULSA baselines (same tokens as MS-Bot, no stage module)."""

from __future__ import annotations

from dataclasses import dataclass, field

from policystack import keys as K
from policystack.config import ConfigError, register_config
from policystack.spec import Spec
from policies.base import PolicyConfig
from policies.common.balance import BalanceConfig
from policies.msbot.configuration_msbot import TOKEN_MODALITIES, TokenizerConfig

FUSIONS = ("concat", "mulsa")


@register_config("policy", "concat_fusion")
@dataclass
class ConcatFusionConfig(PolicyConfig):
    n_obs_steps: int = 15
    fusion: str = "concat"         # concat: flatten tokens -> MLP; mulsa: self-attention + residual first
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    n_heads: int = 4
    hidden: int = 256              # paper: 1024
    use_history: bool = False      # the reference Concat/MULSA ignore the action history
    n_stages: int = 3              # only for per-stage balance
    lr: float = 1e-3               # used by the generic trainer (train_msbot has its own)
    aux_heads: bool = True
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    primitives: list = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.chunk_size != 1 or self.n_action_steps != 1:
            raise ConfigError("concat_fusion predicts one discrete action per step: chunk_size = 1")
        if self.tokenizer.token_dim % self.n_heads:
            raise ConfigError("token_dim must be divisible by n_heads")
        if self.tokenizer.n_frames > self.n_obs_steps:
            raise ConfigError("tokenizer.n_frames cannot exceed n_obs_steps")

    def wanted_inputs(self, available: Spec) -> Spec:
        keep = [f for f in available if f.key != K.ACTION and f.key != K.TASK and
                (f.key == K.STATE and self.tokenizer.use_state or K.modality_of(f.key) in TOKEN_MODALITIES)]
        return Spec.of(keep)
