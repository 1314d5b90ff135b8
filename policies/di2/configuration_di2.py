"""DI² config: a small RoboFlamingo-shaped RGB policy plus the depth branch, DCM and codebook.

Sizes follow the spec (specs/koi_di2.md §5.2) scaled to CPU: per-camera conv patch encoder ->
Perceiver resampler tokens, language + learned query tokens fused by gated cross-attention, an LSTM
over a window of frames, 6-d (here ``A-1``-d) tanh arm head + sigmoid gripper head, Huber + BCE.
"""

from __future__ import annotations

from dataclasses import dataclass

from policystack import keys as K
from policystack.config import ConfigError, register_config
from policystack.errors import SpecMismatchError
from policystack.spec import Spec
from policies.base import PolicyConfig

# where the depth tokens fed to the fusion come from (§2.5, §2.6):
#   none   : RGB tokens only (RGB-RF, or the RGB-D policy evaluated without depth)
#   gt     : depth_resampler(depth_encoder(GT depth))            (stage 0, RGB-D-RF)
#   gt_vq  : codebook(depth tokens from GT depth)                (stage 3 training, "Ours*")
#   dcm    : DCM(RGB tokens), not quantised                      ("DCM without DAC")
#   dcm_vq : codebook(DCM(RGB tokens))                           (DI² deployment, RGB only)
DEPTH_SOURCES = ("none", "gt", "gt_vq", "dcm", "dcm_vq")
NEEDS_DEPTH = ("gt", "gt_vq")
TEXT_ENCODERS = ("minilm", "hash")
# "pretrain" (optional) stands in for the pre-trained RoboFlamingo: an RGB policy trained on *other*
# tasks. With it, RGB-RF ("rgb") and RGB-D-RF ("rgbd") are both fine-tuned from it on the target
# data, as in the paper; without it, "rgb" is trained from scratch and "rgbd" continues from it.
STAGES = ("pretrain", "rgb", "rgbd", "dcm", "dac", "di2")


@register_config("policy", "di2")
@dataclass
class DI2Config(PolicyConfig):
    """DI² policy; ``window`` frames of history feed the LSTM (the base ``n_obs_steps`` follows it)."""

    cameras: tuple[str, ...] = ("agentview", "wrist")  # first = static camera, the rest in-hand
    window: int = 6                  # LSTM window (paper: 12)
    dim: int = 64                    # token width (paper: 1024)
    n_tokens: int = 16               # resampler latents per camera (paper: 64)
    patch_grid: int = 8              # the conv encoder ends at patch_grid x patch_grid patch tokens
    encoder_channels: int = 16     # first conv width, doubling per stride-2 layer up to dim
    resampler_depth: int = 2         # paper: 6
    heads: int = 4
    fusion_depth: int = 2            # gated x-attn + "LM" self-attention blocks
    n_query_tokens: int = 4          # learned text-side tokens beside the instruction token
    gate_init: float = 1.0           # tanh gates of the x-attention; OpenFlamingo uses 0 to protect a
                                     # pre-trained LM, which this from-scratch stand-in does not have
    lstm_hidden: int = 128           # paper: 1024
    lstm_layers: int = 2             # paper: 4
    dropout: float = 0.1
    text_encoder: str = "minilm"     # frozen offline all-MiniLM-L6-v2, or "hash" (fixed random code)
    # the depth image's encoder (§2.2): "shared" = the RGB encoder, frozen from the RGB-D stage on, as
    # the paper runs its frozen CLIP ViT on the 3-channel depth image (only the depth resampler is new);
    # "own" = a separate conv encoder trained from scratch in the RGB-D stage (sessions 1-4). A small
    # from-scratch encoder on near-black wrist depth (LIBERO: 0.04-0.37 m, /5) gave constant tokens.
    depth_encoder: str = "shared"
    # depth pre-processing (§2.3): clip to [min, max] metres, divide by max, repeat to 3 channels
    depth_min: float = 0.01
    depth_max: float = 5.0
    # per-camera far clip (one per camera; empty: depth_max everywhere). The paper's 5 m suits its static
    # camera; LIBERO's wrist camera sees 0.04-0.37 m, which /5 maps to an almost black image.
    depth_max_per_camera: tuple[float, ...] = ()
    # random shift pad per camera, same shift on an RGB frame and its depth (§2.3); empty: paper's
    # 10 px (static) / 4 px (in-hand) at 128 px, scaled to the image size
    shift_pads: tuple[int, ...] = ()
    # depth-aware codebook (§2.4)
    codebook_size: int = 128         # paper: 512
    commitment_beta: float = 0.25
    usage_decay: float = 0.99
    # DCM: a resampler with n_tokens learnable queries over the RGB tokens
    dcm_depth: int = 2
    # loss (§2.2): Huber(arm) + gripper_loss_weight * BCE(gripper)
    gripper_loss_weight: float = 0.01
    huber_delta: float = 1.0
    # which weights this checkpoint holds (a stage of train_di2), and where depth tokens come from
    stage: str = "rgb"
    depth_source: str = "none"

    def __post_init__(self) -> None:
        self.n_obs_steps = self.window  # derived: the base policy keeps this many frames of history
        super().__post_init__()
        if self.chunk_size != 1:
            raise ConfigError("di2 predicts one action per step (chunk_size must be 1)")
        if self.depth_source not in DEPTH_SOURCES:
            raise ConfigError(f"di2.depth_source {self.depth_source!r}: choose from {DEPTH_SOURCES}")
        if self.stage not in STAGES:
            raise ConfigError(f"di2.stage {self.stage!r}: choose from {STAGES}")
        if self.depth_encoder not in ("shared", "own"):
            raise ConfigError(f"di2.depth_encoder {self.depth_encoder!r}: choose 'shared' or 'own'")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ConfigError(f"di2.text_encoder {self.text_encoder!r}: choose from {TEXT_ENCODERS}")
        if not self.cameras:
            raise ConfigError("di2.cameras must name at least one camera")
        if self.dim % self.heads:
            raise ConfigError(f"di2.dim ({self.dim}) must be divisible by heads ({self.heads})")
        if not 0 < self.depth_min < self.depth_max:
            raise ConfigError("di2: need 0 < depth_min < depth_max")
        if self.depth_max_per_camera and (len(self.depth_max_per_camera) != len(self.cameras) or
                                          min(self.depth_max_per_camera) <= self.depth_min):
            raise ConfigError(f"di2.depth_max_per_camera needs one far clip > depth_min per camera {self.cameras}")
        if self.shift_pads and len(self.shift_pads) != len(self.cameras):
            raise ConfigError(f"di2.shift_pads needs one pad per camera {self.cameras}")
        if min(self.window, self.dim, self.n_tokens, self.patch_grid, self.codebook_size,
               self.resampler_depth, self.dcm_depth, self.fusion_depth, self.lstm_layers) < 1:
            raise ConfigError("di2: sizes must be >= 1")
        if not 0 < self.usage_decay < 1:
            raise ConfigError("di2.usage_decay must be in (0, 1)")

    def depth_far(self, camera: str) -> float:
        """The far clip (and divisor) of ``camera``'s depth image."""
        if self.depth_max_per_camera:
            return float(self.depth_max_per_camera[self.cameras.index(camera)])
        return self.depth_max

    @property
    def uses_depth_input(self) -> bool:
        return self.depth_source in NEEDS_DEPTH

    def wanted_inputs(self, available: Spec) -> Spec:
        """RGB of each camera + the instruction, and GT depth only when depth_source needs it."""
        want = [K.image_key(c) for c in self.cameras] + [K.TASK]
        if self.uses_depth_input:
            want += [K.depth_key(c) for c in self.cameras]
        missing = [k for k in want if k not in available]
        if missing:
            raise SpecMismatchError(f"di2 (depth_source={self.depth_source!r}) needs {missing}; "
                                    f"the source provides {available.keys()}")
        return Spec.of(available[k] for k in want)
