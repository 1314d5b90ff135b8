from __future__ import annotations

from dataclasses import dataclass

from policystack import keys as K
from policystack.config import ConfigError, register_config
from policystack.spec import Spec
from policies.base import PolicyConfig

_MODALITIES = ("state", "images", "depth", "tactile", "audio")


@register_config("policy", "bc")
@dataclass
class BCConfig(PolicyConfig):
    """Conv encoder per camera + state MLP (+ optional hashed instruction embedding) -> action chunk."""

    modalities: tuple[str, ...] = ("state", "images")  # which observation modalities to consume
    cameras: tuple[str, ...] = ()       # restrict images/depth to these cameras (empty: all)
    use_language: bool = False          # hashed bag-of-words instruction embedding (multi-task)
    feature_dim: int = 64               # per-key encoder output
    hidden_dim: int = 256
    n_layers: int = 3
    dropout: float = 0.0
    shift_pad: int = 4                  # DrQ random shift on images during training (0: off)
    normalization: str = "min_max"      # for state and action
    lr: float = 1e-3
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [m for m in self.modalities if m not in _MODALITIES]
        if bad:
            raise ConfigError(f"bc.modalities: unknown {bad}; choose from {_MODALITIES}")
        if self.normalization not in ("min_max", "mean_std"):
            raise ConfigError("bc.normalization must be 'min_max' or 'mean_std'")
        if self.n_layers < 1 or self.hidden_dim < 1 or self.feature_dim < 1:
            raise ConfigError("bc: n_layers, hidden_dim and feature_dim must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError("bc.dropout must be in [0, 1)")

    def wanted_inputs(self, available: Spec) -> Spec:
        feats = []
        for f in available:
            if f.key == K.ACTION:
                continue
            if f.key == K.TASK:
                if self.use_language:
                    feats.append(f)
                continue
            mod = K.modality_of(f.key)
            if mod not in self.modalities:
                continue
            if mod in ("images", "depth") and self.cameras and K.short_name(f.key) not in self.cameras:
                continue
            feats.append(f)
        return Spec.of(feats)
