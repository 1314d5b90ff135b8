from __future__ import annotations

import zlib
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policystack import keys as K
from policystack.errors import SpecMismatchError
from policies.base import Policy, register_policy
from policies.bc.configuration_bc import BCConfig
from policies.common.augment import random_shift
from policies.common.encoders import MLP
from policies.common.modality import ObservationEncoder
from policies.common.normalizer import Normalizer

_BUCKETS = 4096


def hashed_tokens(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stable (crc32) word hashing for EmbeddingBag: no vocabulary file, no download."""
    ids, offsets = [], []
    for t in texts:
        offsets.append(len(ids))
        words = t.lower().split() or [""]
        ids += [zlib.crc32(w.encode()) % _BUCKETS for w in words]
    return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)


@register_policy
class BCPolicy(Policy):
    name = "bc"
    config_class = BCConfig

    def __init__(self, config: BCConfig):
        super().__init__(config)
        spec = config.input_spec
        if not [f for f in spec if f.dtype != "str"]:
            raise SpecMismatchError(f"bc: no usable inputs for modalities {config.modalities} "
                                    f"in {list(config.input_features)}")
        self.obs_encoder = ObservationEncoder(spec, config.feature_dim,
                                              augment=(lambda x: random_shift(x, config.shift_pad))
                                              if config.shift_pad else None)
        self.float_keys = [f.key for f in spec if f.dtype != "str" and f.dtype != "uint8"
                           and K.modality_of(f.key) in ("state", "tactile")]
        norm_shapes = {k: spec[k].shape for k in self.float_keys}
        norm_shapes[K.ACTION] = config.action_feature.shape
        self.normalizer = Normalizer(norm_shapes, mode=config.normalization)
        in_dim = self.obs_encoder.out_dim * config.n_obs_steps
        self.text = nn.EmbeddingBag(_BUCKETS, config.feature_dim, mode="mean") if config.use_language else None
        if self.text is not None:
            in_dim += config.feature_dim
        self.head = nn.Sequential(
            nn.Dropout(config.dropout) if config.dropout else nn.Identity(),
            MLP(in_dim, config.hidden_dim, config.chunk_size * config.action_dim, layers=config.n_layers))

    def set_stats(self, stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        self.normalizer.fit(stats)

    def _features(self, batch: Mapping[str, Any]) -> torch.Tensor:
        cfg = self.config
        obs = {k: batch[k] for k in self.obs_encoder.keys}
        if cfg.n_obs_steps > 1:  # fold time into batch, encode, unfold and concatenate
            b, t = next(iter(obs.values())).shape[:2]
            feat = self.obs_encoder({k: v.flatten(0, 1) for k, v in obs.items()}, self.normalizer.normalize)
            feat = feat.view(b, t * feat.shape[-1])
        else:
            feat = self.obs_encoder(obs, self.normalizer.normalize)
        if self.text is not None:
            ids, offsets = hashed_tokens(list(batch[K.TASK]))
            feat = torch.cat([feat, self.text(ids.to(feat.device), offsets.to(feat.device))], dim=-1)
        return feat

    def _predict_normalized(self, batch: Mapping[str, Any]) -> torch.Tensor:
        out = self.head(self._features(batch))
        return out.view(out.shape[0], self.config.chunk_size, self.config.action_dim)

    def predict_action_chunk(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return self.normalizer.unnormalize(K.ACTION, self._predict_normalized(batch))

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        target = self.normalizer.normalize(K.ACTION, batch[K.ACTION].float())
        if target.dim() == 2:
            target = target.unsqueeze(1)
        pred = self._predict_normalized(batch)
        err = F.mse_loss(pred, target, reduction="none").mean(-1)
        pad = batch.get("action_is_pad")
        if pad is not None:
            mask = (~pad.bool()).float()
            loss = (err * mask).sum() / mask.sum().clamp(min=1)
        else:
            loss = err.mean()
        return loss, {"loss": float(loss.detach())}
