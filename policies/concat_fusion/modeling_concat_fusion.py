"""Concat and MULSA baselines from MS-Bot's code: the same per-modality tokens, then
Concat: flatten all tokens (+ proprio) -> MLP -> action class;
MULSA ("See, Hear, and Feel", Li et al. 2022): self-attention over the tokens + residual, flatten -> MLP."""

from __future__ import annotations

import torch
from torch import nn

from policies.base import register_policy
from policies.concat_fusion.configuration_concat_fusion import ConcatFusionConfig
from policies.msbot.fusion import SelfAttentionFusion
from policies.msbot.multisensory_policy import MultiSensoryPolicy, apply_modality_keep


@register_policy
class ConcatFusionPolicy(MultiSensoryPolicy):
    name = "concat_fusion"
    config_class = ConcatFusionConfig

    def __init__(self, config: ConcatFusionConfig):
        self.uses_history = config.use_history
        super().__init__(config)
        d = config.tokenizer.token_dim
        n_tok = len(self.modalities) * config.tokenizer.n_frames
        extra = self.tokenizer.state_dim + (d if self.history is not None else 0)
        self.attn = SelfAttentionFusion(d, config.n_heads) if config.fusion == "mulsa" else None
        h = config.hidden
        self.mlp = nn.Sequential(nn.Linear(n_tok * d + extra, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                 nn.Linear(h, self.codec.n_classes))

    def fuse(self, tokens, cond, hist, modality_keep, batch):
        tokens = apply_modality_keep(tokens, modality_keep, self.modalities)
        feats = torch.cat([tokens[k] for k in self.modalities], dim=1)     # (B, M*T, d)
        extras = {"logs": {}}
        if self.attn is not None:
            feats, att = self.attn(feats)
            b, n = feats.shape[:2]
            t = n // len(self.modalities)
            extras["attention_mass"] = att.mean(1).view(b, len(self.modalities), t).sum(-1)
        parts = [feats.flatten(1)]
        if hist is not None:
            parts.append(hist)
        if cond is not None:
            parts.append(cond)
        return self.mlp(torch.cat(parts, -1)), extras
