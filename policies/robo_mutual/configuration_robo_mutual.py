"""Robo-MUTUAL policy config (spec §2.3-2.8; paper values noted where the CPU default differs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from policies.base import PolicyConfig
from policystack.config import register_config
from policystack.errors import ConfigError

GOAL_MODALITIES = ("text", "image")


@register_config("policy", "robo_mutual")
@dataclass
class RoboMutualConfig(PolicyConfig):
    """A goal-conditioned policy that accepts text or image goals in one embedding space.

    The goal of each task in both modalities is stored in the policy (a goal bank over ``task_names``:
    g_L = ψ(instruction), g_V = φ(o_last) − φ(o_0) of a training demo), computed by the frozen
    DecisionNCE encoder; ``goal_modality`` picks which is used when acting.
    """

    chunk_size: int = 6
    n_action_steps: int = 1
    temporal_ensemble_coeff: float | None = 0.25
    image_keys: tuple[str, ...] | None = None     # default: every image key (the paper: agent view + wrist)
    state_indices: tuple[int, ...] | None = None  # subset of observation.state (None = all)
    task_names: tuple[str, ...] = ()              # instructions of the goal bank, in order
    goal_dim: int = 128                           # DecisionNCE D (1024 for RN50)
    train_goal_modality: Literal["text", "image"] = "text"
    goal_modality: Literal["text", "image"] = "text"   # used when acting
    collapse: bool = True                         # subtract the modality's mean goal
    delete_k: int = 0                             # Delete: drop top-k |μ_V − μ_L| dims (code ships 80; off in release)
    corrupt: bool = True                          # cosine-similarity noise during training
    cos_noise: float = 0.2
    cos_noise_decay: float = 0.8
    head: Literal["ddpm", "mse"] = "ddpm"
    backbone_layers: tuple[int, ...] = (1, 1, 1, 1)   # paper: ResNet34 (3, 4, 6, 3)
    backbone_width: int = 16                           # paper: 64
    diffusion_steps: int = 25
    beta_min: float = 0.1
    beta_max: float = 10.0
    decoder_hidden: int = 256
    decoder_blocks: int = 3
    dropout: float = 0.1
    crop_scale: tuple[float, float] = (0.75, 1.0)
    color_jitter: bool = True
    lr: float = 3e-4
    warmup_steps: int = 2000
    min_lr: float = 1e-6

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("train_goal_modality", "goal_modality"):
            if getattr(self, name) not in GOAL_MODALITIES:
                raise ConfigError(f"{name} must be one of {GOAL_MODALITIES}, got {getattr(self, name)!r}")
        if self.head not in ("ddpm", "mse"):
            raise ConfigError(f"head must be 'ddpm' or 'mse', got {self.head!r}")
        if not 0 <= self.delete_k < self.goal_dim:
            raise ConfigError(f"delete_k={self.delete_k} must be in [0, goal_dim={self.goal_dim})")
        if not 0 <= self.cos_noise <= 1 or self.cos_noise + self.cos_noise_decay > 1 + 1e-9:
            raise ConfigError("cos_noise and cos_noise + cos_noise_decay must lie in [0, 1]")
        if len(self.backbone_layers) != 4:
            raise ConfigError("backbone_layers needs 4 stage depths")
        if self.n_obs_steps != 1:
            raise ConfigError("Robo-MUTUAL sees one frame (n_obs_steps=1)")
        if len(set(self.task_names)) != len(self.task_names):
            raise ConfigError("task_names must be distinct")
