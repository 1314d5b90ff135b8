"""Robo-MUTUAL policy (spec §2.3-2.7): FiLM-ResNet over the views + state, goal-conditioned by a
Collapsed (and, in training, Corrupted) DecisionNCE goal embedding, with a DDPM (25-step VP) or an
MSE action-chunk head; temporal ensembling (k = 0.25) when acting.

The goal enters only through FiLM. Goal embeddings come precomputed from the frozen encoder: the
training loop puts each sample's own goal under ``GOAL_EMBEDDING``; otherwise (and when acting) the
goal bank is looked up by the ``task`` string in the modality the config names.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policies.base import Policy, register_policy
from policies.common.augment import color_jitter
from policies.common.diffusion import DDPM, MLPResNet, TimeEmbedding
from policies.common.normalizer import Normalizer
from policies.robo_mutual.configuration_robo_mutual import GOAL_MODALITIES, RoboMutualConfig
from policies.robo_mutual.film_resnet import FiLMResNet
from policies.robo_mutual.modality_gap import ModalityGap, corrupt
from policystack import keys as K
from policystack.errors import ConfigError, SpecMismatchError

log = logging.getLogger(__name__)
GOAL_EMBEDDING = "robo_mutual.goal_embedding"   # (B, D) raw goal of each training sample
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def random_resized_crop_batch(x: torch.Tensor, scale: tuple[float, float],
                              generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample square random resized crop (area fraction ~ U[scale]) back to the input size."""
    B = x.shape[0]
    side = torch.sqrt(torch.empty(B, device=x.device).uniform_(*scale, generator=generator))
    tx = (torch.rand(B, device=x.device, generator=generator) * 2 - 1) * (1 - side)
    ty = (torch.rand(B, device=x.device, generator=generator) * 2 - 1) * (1 - side)
    theta = torch.zeros(B, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = side, side, tx, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@register_policy
class RoboMutualPolicy(Policy):
    name = "robo_mutual"
    config_class = RoboMutualConfig

    def __init__(self, config: RoboMutualConfig):
        super().__init__(config)
        spec = config.input_spec
        images = [f.key for f in spec if K.modality_of(f.key) == "images"]
        self.image_keys = list(config.image_keys) if config.image_keys is not None else images
        missing = [k for k in self.image_keys if k not in spec]
        if not self.image_keys or missing:
            raise SpecMismatchError(f"Robo-MUTUAL needs image keys {missing or '(none given)'}; inputs: {spec.keys()}")
        self.state_idx: list[int] = []
        if K.STATE in spec:
            n = spec[K.STATE].shape[-1]
            self.state_idx = list(range(n)) if config.state_indices is None else list(config.state_indices)
        A, T, D = config.action_dim, config.chunk_size, config.goal_dim
        self.gap = ModalityGap(D, config.delete_k)
        n_tasks = len(config.task_names)
        self.register_buffer("goal_text", torch.zeros(n_tasks, D))
        self.register_buffer("goal_image", torch.zeros(n_tasks, D))
        self._task_index = {t: i for i, t in enumerate(config.task_names)}
        self.backbone = FiLMResNet(self.gap.out_dim, config.backbone_layers, config.backbone_width)
        feat = self.backbone.out_dim * len(self.image_keys)
        shapes = {K.ACTION: (A,)}
        if self.state_idx:
            shapes[K.STATE] = (len(self.state_idx),)
        # actions min-max to [-1, 1] (sampling clips there); state z-scored
        self.action_norm = Normalizer({K.ACTION: (A,)}, mode="min_max")
        self.state_norm = Normalizer({K.STATE: shapes[K.STATE]}) if self.state_idx else None
        S = len(self.state_idx)
        if config.head == "ddpm":
            self.time_emb = TimeEmbedding(32, 256)
            self.decoder = MLPResNet(feat + 256 + T * A + S, T * A, config.decoder_hidden, config.decoder_blocks,
                                     config.dropout)
            self.diffusion = DDPM(config.diffusion_steps, config.beta_min, config.beta_max)
        else:
            self.decoder = MLPResNet(feat + S, T * A, config.decoder_hidden, config.decoder_blocks, config.dropout)
        self.register_buffer("img_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # ----- goals ----------------------------------------------------------------------------
    @torch.no_grad()
    def set_goal_bank(self, text: torch.Tensor, image: torch.Tensor) -> None:
        """Raw goals per task (rows follow ``config.task_names``): ψ(l) and φ(o_last) − φ(o_0)."""
        n = len(self.config.task_names)
        if text.shape != (n, self.config.goal_dim) or image.shape != (n, self.config.goal_dim):
            raise SpecMismatchError(f"goal bank must be ({n}, {self.config.goal_dim}) per modality, "
                                    f"got {tuple(text.shape)} and {tuple(image.shape)}")
        self.goal_text.copy_(text)
        self.goal_image.copy_(image)

    def set_goal_modality(self, modality: str) -> None:
        """Switch the goal modality used when acting (cross-modal evaluation)."""
        if modality not in GOAL_MODALITIES:
            raise ConfigError(f"goal modality must be one of {GOAL_MODALITIES}, got {modality!r}")
        self.config.goal_modality = modality
        self.reset()

    def lookup_goal(self, tasks: Sequence[str], modality: str) -> torch.Tensor:
        bad = [t for t in tasks if t not in self._task_index]
        if bad:
            raise SpecMismatchError(f"instruction {bad[0]!r} is not in this policy's goal bank "
                                    f"({len(self._task_index)} tasks: {list(self._task_index)[:5]}...)")
        idx = torch.tensor([self._task_index[t] for t in tasks], device=self.goal_text.device)
        return (self.goal_text if modality == "text" else self.goal_image)[idx]

    def goal_condition(self, raw: torch.Tensor, modality: str) -> torch.Tensor:
        """Collapse (if on), then Corrupt in training (if on) or normalise."""
        c = self.gap.collapse(raw.float(), modality, subtract_mean=self.config.collapse)
        if self.training and self.config.corrupt:
            return corrupt(c, lo=self.config.cos_noise, decay=self.config.cos_noise_decay)
        return F.normalize(c, dim=-1)

    # ----- networks -------------------------------------------------------------------------
    def set_stats(self, stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        self.action_norm.fit({K.ACTION: stats[K.ACTION]})
        if self.state_norm is not None:
            self.state_norm.fit({K.STATE: {k: np.asarray(v)[self.state_idx] for k, v in stats[K.STATE].items()}})

    def _encode(self, batch: Mapping[str, Any], cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        feats = []
        for k in self.image_keys:
            x = batch[k].to(self.device)
            x = x.movedim(-1, -3).float() / 255.0 if x.dtype == torch.uint8 else x.float()
            if self.training:
                x = random_resized_crop_batch(x, self.config.crop_scale)
                if self.config.color_jitter:
                    x = color_jitter(x, 0.2, 0.2, 0.2)
            feats.append(self.backbone((x - self.img_mean) / self.img_std, cond))
        state = None
        if self.state_norm is not None:
            state = self.state_norm.normalize(K.STATE, batch[K.STATE].to(self.device)[..., self.state_idx])
        return torch.cat(feats, -1), state

    def _decoder_in(self, feat, state, *extra) -> torch.Tensor:
        return torch.cat([feat, *extra] + ([state] if state is not None else []), dim=-1)

    def _raw_goal(self, batch: Mapping[str, Any], modality: str) -> torch.Tensor:
        if GOAL_EMBEDDING in batch:
            return batch[GOAL_EMBEDDING].to(self.device)
        return self.lookup_goal(list(batch[K.TASK]), modality)

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        cond = self.goal_condition(self._raw_goal(batch, cfg.train_goal_modality), cfg.train_goal_modality)
        feat, state = self._encode(batch, cond)
        x0 = self.action_norm.normalize(K.ACTION, batch[K.ACTION].to(self.device)).clamp(-1, 1).flatten(1)
        if cfg.head == "ddpm":
            loss = self.diffusion.loss(
                lambda xt, t: self.decoder(self._decoder_in(feat, state, self.time_emb(t), xt)), x0)
        else:
            loss = (self.decoder(self._decoder_in(feat, state)) - x0).pow(2).mean()
        return loss, {"loss": loss.item()}

    @torch.no_grad()
    def predict_action_chunk(self, batch: Mapping[str, Any]) -> torch.Tensor:
        cfg = self.config
        cond = self.goal_condition(self._raw_goal(batch, cfg.goal_modality), cfg.goal_modality)
        feat, state = self._encode(batch, cond)
        B, T, A = feat.shape[0], cfg.chunk_size, cfg.action_dim
        if cfg.head == "ddpm":
            x = self.diffusion.sample(lambda xt, t: self.decoder(self._decoder_in(feat, state, self.time_emb(t), xt)),
                                      (B, T * A), device=self.device)
        else:
            x = self.decoder(self._decoder_in(feat, state)).clamp(-1, 1)
        return self.action_norm.unnormalize(K.ACTION, x.view(B, T, A))
