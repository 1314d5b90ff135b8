"""Modality registry (robomimic style): how each kind of observation key is prepared and encoded.

A policy builds its per-key encoders from this registry, so a new sensor (tactile, audio) needs a
registration here, not a change to any policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn

from policystack import keys as K
from policystack.spec import Feature, Spec
from policies.common.encoders import MLP, Conv1dEncoder, ConvEncoder


@dataclass(frozen=True)
class Modality:
    name: str
    # raw batch tensor (B, ...) -> float tensor ready for the encoder
    prepare: Callable[[torch.Tensor], torch.Tensor]
    # (feature, out_dim) -> encoder module taking the prepared tensor
    encoder: Callable[[Feature, int], nn.Module]
    spatial: bool = False  # image-like: augmentations such as random shift apply


MODALITIES: dict[str, Modality] = {}


def register_modality(m: Modality) -> None:
    MODALITIES[m.name] = m


def modality_for(feature: Feature) -> Modality:
    name = K.modality_of(feature.key)
    if name == "tactile":  # vision-based tactile (uint8 HxWx3) encodes as an image; taxels as a vector
        name = "tactile_image" if feature.dtype == "uint8" and len(feature.shape) == 3 else "tactile_array"
    if name not in MODALITIES:
        raise KeyError(f"no modality registered for {feature.key!r} (modality {name!r}); "
                       f"registered: {sorted(MODALITIES)}")
    return MODALITIES[name]


def _prep_rgb(x: torch.Tensor) -> torch.Tensor:
    # (..., H, W, 3) uint8 -> (..., 3, H, W) float in [0, 1]
    return x.movedim(-1, -3).float() / 255.0


def _prep_depth(x: torch.Tensor, max_depth: float = 3.0) -> torch.Tensor:
    # (..., H, W) metres -> (..., 1, H, W) in [0, 1] (clipped at max_depth)
    return (x.float().clamp(0, max_depth) / max_depth).unsqueeze(-3)


def _rgb_encoder(f: Feature, out: int) -> nn.Module:
    return ConvEncoder(3, f.shape[0], f.shape[1], out)


def _depth_encoder(f: Feature, out: int) -> nn.Module:
    return ConvEncoder(1, f.shape[0], f.shape[1], out)


def _flat_encoder(f: Feature, out: int) -> nn.Module:
    n = 1
    for s in f.shape:
        n *= s
    return nn.Sequential(nn.Flatten(-len(f.shape)) if len(f.shape) > 1 else nn.Identity(),
                         MLP(n, 256, out, layers=2))


def _audio_encoder(f: Feature, out: int) -> nn.Module:
    return Conv1dEncoder(f.shape[0], out)


register_modality(Modality("images", _prep_rgb, _rgb_encoder, spatial=True))
register_modality(Modality("goal", _prep_rgb, _rgb_encoder, spatial=True))
register_modality(Modality("depth", _prep_depth, _depth_encoder, spatial=True))
register_modality(Modality("tactile_image", _prep_rgb, _rgb_encoder, spatial=True))
register_modality(Modality("state", lambda x: x.float(), _flat_encoder))
register_modality(Modality("tactile_array", lambda x: x.float(), _flat_encoder))
register_modality(Modality("audio", lambda x: x.float(), _audio_encoder))


class ObservationEncoder(nn.Module):
    """Encode every non-text key of a Spec with its registered encoder and concatenate.

    ``normalize`` (key, tensor) -> tensor is applied to float vector keys before encoding.
    """

    def __init__(self, spec: Spec, out_dim_per_key: int = 64,
                 augment: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__()
        self.keys = [f.key for f in spec if f.dtype != "str"]
        self.mods = {f.key: modality_for(f) for f in spec if f.dtype != "str"}
        self.encoders = nn.ModuleDict({k.replace(".", "__"): self.mods[k].encoder(spec[k], out_dim_per_key)
                                       for k in self.keys})
        self.augment = augment
        self.out_dim = out_dim_per_key * len(self.keys)

    def forward(self, batch: Mapping[str, torch.Tensor],
                normalize: Callable[[str, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        feats = []
        for k in self.keys:
            m = self.mods[k]
            x = m.prepare(batch[k])
            if normalize is not None and not m.spatial and m.name != "audio":
                x = normalize(k, x)
            if m.spatial and self.augment is not None and self.training:
                x = self.augment(x)
            feats.append(self.encoders[k.replace(".", "__")](x))
        return torch.cat(feats, dim=-1)
