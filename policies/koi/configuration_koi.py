"""Config of the KOI policy: the DrQ-v2 pixel encoder + actor that acts (spec §1.4).

The critic and the RL/OT hyperparameters live in ``train_koi.KOITrainConfig``; only what is needed to
act (and to be BC-pretrained) is here, so a checkpoint runs in ``policystack eval`` and the ROS node.
Defaults are KOI's Meta-World values; CPU experiments shrink ``hidden_dim`` and ``conv_strides``.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.base import PolicyConfig
from policystack import keys as K
from policystack.config import ConfigError, register_config
from policystack.errors import SpecMismatchError
from policystack.spec import Spec


@register_config("policy", "koi")
@dataclass
class KOIConfig(PolicyConfig):
    n_obs_steps: int = 3                    # frame stack (agent steps, i.e. every action_repeat env steps)
    camera: str | None = None               # which observation.images.<camera>; None = the first one
    action_repeat: int = 2                  # env steps per agent decision (the action is held)
    feature_dim: int = 50                   # trunk output (Linear -> LayerNorm -> Tanh); also the OT feature
    hidden_dim: int = 1024
    conv_channels: int = 32
    conv_strides: tuple[int, ...] = (2, 1, 1, 1)   # DrQ-v2: 4 convs 3x3, first with stride 2
    std: float = 0.1                        # fixed policy std (exploration and BC likelihood)
    std_clip: float = 0.3                   # clip of the sampled noise
    augment_pad: int = 4                    # random-shift pad (DrQ)
    bc_lr: float = 1e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.chunk_size != 1 or self.n_action_steps != 1 or self.temporal_ensemble_coeff is not None:
            raise ConfigError("koi predicts one action per step: chunk_size = n_action_steps = 1, no ensembling")
        if self.action_repeat < 1:
            raise ConfigError(f"action_repeat must be >= 1, got {self.action_repeat}")
        if self.std <= 0 or self.std_clip <= 0:
            raise ConfigError("std and std_clip must be > 0")
        if not self.conv_strides or any(s < 1 for s in self.conv_strides):
            raise ConfigError(f"conv_strides must be a non-empty list of positive ints, got {self.conv_strides}")
        if self.feature_dim < 1 or self.hidden_dim < 1 or self.conv_channels < 1:
            raise ConfigError("feature_dim, hidden_dim and conv_channels must be >= 1")

    @property
    def image_key(self) -> str:
        keys = [k for k in self.input_features if K.modality_of(k) == "images"]
        if not keys:
            raise SpecMismatchError("koi needs one camera image (observation.images.<cam>); features have none")
        return keys[0]

    def wanted_inputs(self, available: Spec) -> Spec:
        images = [f for f in available if K.modality_of(f.key) == "images"]
        if self.camera is not None:
            images = [f for f in images if f.key == K.image_key(self.camera)]
            if not images:
                raise SpecMismatchError(f"koi wants camera {self.camera!r} but the features offer "
                                        f"{[f.key for f in available if K.modality_of(f.key) == 'images']}")
        if not images:
            raise SpecMismatchError("koi needs a camera image (observation.images.<cam>); the env/dataset has none")
        if len(images[0].shape) != 3 or images[0].shape[-1] != 3 or None in images[0].shape:
            raise SpecMismatchError(f"{images[0].key}: koi needs fixed-size HxWx3 images, got {images[0].shape}")
        return Spec.of(images[:1])
