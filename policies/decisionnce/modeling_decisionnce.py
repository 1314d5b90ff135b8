"""The LCBC probe (spec §1.7): a 256-256 MLP on frozen DecisionNCE features [φ(o_t), ψ(l), state].

The encoder is frozen and stays in eval mode (BatchNorm statistics never move), it is part of the
state dict so a checkpoint acts on its own. Features go through a parameter-free LayerNorm so the
probe sees pretrained and randomly initialised encoders at the same scale.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policies.base import Policy, register_policy
from policies.common.normalizer import Normalizer
from policies.decisionnce.configuration_decisionnce import DecisionNCEConfig
from policies.decisionnce.encoder import DualEncoder, load_encoder
from policystack import keys as K
from policystack.errors import SpecMismatchError

log = logging.getLogger(__name__)
IMAGE_FEATURE = "decisionnce.image_feature"  # optional precomputed φ(o_t) in a batch (frozen encoder)
TEXT_FEATURE = "decisionnce.text_feature"    # optional precomputed ψ(l)
_FROM_CHECKPOINT = contextvars.ContextVar("decisionnce_from_checkpoint", default=False)


def frozen_encoder(path: str | None, cfg, seed: int) -> DualEncoder:
    """The saved encoder at ``path``, or one randomly initialised with ``seed`` (the probe's baseline)."""
    if path and not _FROM_CHECKPOINT.get():
        enc = load_encoder(path)
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            enc = DualEncoder(cfg)
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc.eval()


@register_policy
class DecisionNCEPolicy(Policy):
    name = "decisionnce"
    config_class = DecisionNCEConfig

    def __init__(self, config: DecisionNCEConfig):
        enc = frozen_encoder(config.encoder_path, config.encoder, config.encoder_seed)
        config = dataclasses.replace(config, encoder=enc.cfg)
        super().__init__(config)
        self.encoder = enc
        spec = config.input_spec
        images = [f.key for f in spec if K.modality_of(f.key) == "images"]
        self.image_key = config.image_key or (images[0] if images else None)
        if self.image_key is None or self.image_key not in spec:
            raise SpecMismatchError(f"the DecisionNCE probe needs an image key; input features have {spec.keys()}")
        if K.TASK not in spec:
            raise SpecMismatchError("the DecisionNCE probe needs the 'task' instruction in its input features")
        self.state_idx: list[int] = []
        if K.STATE in spec:
            n = spec[K.STATE].shape[-1]
            self.state_idx = list(range(n)) if config.state_indices is None else list(config.state_indices)
            if any(i < 0 or i >= n for i in self.state_idx):
                raise SpecMismatchError(f"state_indices {config.state_indices} out of range for state size {n}")
        A, D = config.action_dim, enc.embed_dim
        shapes = {K.ACTION: (A,)}
        if self.state_idx:
            shapes[K.STATE] = (len(self.state_idx),)
        self.normalizer = Normalizer(shapes)
        layers: list[nn.Module] = []
        d = 2 * D + len(self.state_idx)
        for h in config.hidden_dims:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, config.chunk_size * A))
        self.head = nn.Sequential(*layers)
        self._text_cache: dict[str, torch.Tensor] = {}

    def train(self, mode: bool = True) -> "DecisionNCEPolicy":
        super().train(mode)
        self.encoder.eval()  # frozen: BatchNorm statistics never update
        return self

    def set_stats(self, stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        sel = {K.ACTION: stats[K.ACTION]}
        if self.state_idx:
            sel[K.STATE] = {k: np.asarray(v)[self.state_idx] for k, v in stats[K.STATE].items()}
        self.normalizer.fit(sel)

    def optim_params(self):
        return [p for n, p in self.named_parameters() if p.requires_grad and not n.startswith("encoder.")]

    @classmethod
    def from_pretrained(cls, directory, map_location: str = "cpu"):
        token = _FROM_CHECKPOINT.set(True)  # the encoder weights come from the checkpoint itself
        try:
            return super().from_pretrained(directory, map_location)
        finally:
            _FROM_CHECKPOINT.reset(token)

    # ----- features -------------------------------------------------------------------------
    @torch.no_grad()
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode_image(images)

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> torch.Tensor:
        new = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if new:
            for t, e in zip(new, self.encoder.encode_text(new)):
                self._text_cache[t] = e
        return torch.stack([self._text_cache[t] for t in texts])

    def _head_input(self, batch: Mapping[str, Any]) -> torch.Tensor:
        img = batch[IMAGE_FEATURE] if IMAGE_FEATURE in batch else self.image_features(batch[self.image_key])
        txt = batch[TEXT_FEATURE] if TEXT_FEATURE in batch else self.text_features(list(batch[K.TASK]))
        parts = [F.layer_norm(img.float(), img.shape[-1:]), F.layer_norm(txt.float(), txt.shape[-1:])]
        if self.state_idx:
            parts.append(self.normalizer.normalize(K.STATE, batch[K.STATE][..., self.state_idx]))
        return torch.cat([p.to(self.device) for p in parts], dim=-1)

    def predict_action_chunk(self, batch: Mapping[str, Any]) -> torch.Tensor:
        out = self.head(self._head_input(batch)).view(-1, self.config.chunk_size, self.config.action_dim)
        return self.normalizer.unnormalize(K.ACTION, out)

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        pred = self.head(self._head_input(batch)).view(-1, self.config.chunk_size, self.config.action_dim)
        target = self.normalizer.normalize(K.ACTION, batch[K.ACTION].to(self.device))
        if target.dim() == 2:
            target = target.unsqueeze(1)
        err = (pred - target).pow(2).mean(-1)
        if "action_is_pad" in batch:
            keep = (~batch["action_is_pad"].to(self.device).view_as(err)).float()
            loss = (err * keep).sum() / keep.sum().clamp(min=1)
        else:
            loss = err.mean()
        return loss, {"loss": loss.item()}
