"""MS-Bot: stage-guided dynamic multi-sensory fusion (Feng et al., "Play to the Score", CoRL 2024).

    tokens f_m (n_frames per modality) ── concat ──────────────────────────────┐ keys/values
    z  = Linear([f_m[-1] for m] ‖ LSTM(action history) ‖ proprio)   (state token)│
    g  = softmax(Linear(z.detach()))                                 (stage gate) │
    z* = β z + (1 − β) g E                                (stage-injected query)  ▼
    u  = CrossAttention(z*, F) with random attention blur ──► MLP([u ‖ proprio]) ──► action class
    L  = CE + λ · mean(g ⊙ w)   (w: soft stage boundaries)

E is zero during the warm-up and then set to the per-stage mean of z (``init_stage_tokens``).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from policies.base import register_policy
from policies.msbot.configuration_msbot import MSBotConfig
from policies.msbot.fusion import CrossAttentionFusion
from policies.msbot.multisensory_policy import STAGE_KEY, STAGE_WEIGHTS_KEY, MultiSensoryPolicy
from policies.msbot.stage import StageModule, gate_penalty


@register_policy
class MSBotPolicy(MultiSensoryPolicy):
    name = "msbot"
    config_class = MSBotConfig

    def __init__(self, config: MSBotConfig):
        super().__init__(config)
        d = config.tokenizer.token_dim
        m = len(self.modalities)
        cond = self.tokenizer.state_dim
        self.state_tokenizer = nn.Linear((m * d if config.state_from_tokens else 0) + d + cond, d)
        self.stage = StageModule(d, config.n_stages, config.beta)
        self.fusion = CrossAttentionFusion(d, config.n_heads, config.blur_p)
        n_tok = m * config.tokenizer.n_frames
        self.token_embedding = nn.Parameter(0.02 * torch.randn(n_tok, d)) if config.token_embeddings else None
        h = config.head_hidden
        self.head = nn.Sequential(nn.Linear(d + cond, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                  nn.Linear(h, self.codec.n_classes))

    def state_token(self, tokens: Mapping[str, torch.Tensor], cond, hist) -> torch.Tensor:
        parts = [tokens[k][:, -1] for k in self.modalities] if self.config.state_from_tokens else []
        parts.append(hist)
        if cond is not None:
            parts.append(cond)
        return self.state_tokenizer(torch.cat(parts, -1))

    def fuse(self, tokens, cond, hist, modality_keep, batch):
        b, t = next(iter(tokens.values())).shape[:2]
        z = self.state_token(tokens, cond, hist)
        z_star, g = self.stage(z)
        feats = torch.cat([tokens[k] for k in self.modalities], dim=1)          # (B, M*T, d)
        if self.token_embedding is not None:
            feats = feats + self.token_embedding
        token_keep = None
        if modality_keep is not None:   # OPM at the token level: dropped modalities leave the attention
            token_keep = torch.cat([modality_keep[k].view(b, 1).expand(b, t) for k in self.modalities], 1)
        u, att = self.fusion(z_star, feats, token_keep)
        head_in = u if cond is None else torch.cat([u, cond], -1)
        logits = self.head(head_in)
        mass = att.mean(1).view(b, len(self.modalities), t).sum(-1)              # (B, M)
        extras: dict[str, Any] = {"gate": g, "attention_mass": mass, "logs": {}}
        if g is not None and STAGE_WEIGHTS_KEY in batch and self.config.gate_lambda > 0:
            w = torch.as_tensor(batch[STAGE_WEIGHTS_KEY], device=g.device).float()
            lg = gate_penalty(g, w, self.config.gate_lambda)
            extras["loss"] = lg
            extras["logs"]["gate_loss"] = float(lg.detach())
            if STAGE_KEY in batch:
                s = torch.as_tensor(batch[STAGE_KEY], device=g.device)
                extras["logs"]["gate_acc"] = float((g.argmax(-1) == s).float().mean())
        return logits, extras

    @torch.no_grad()
    def state_tokens(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """z for a batch (eval mode: no shift augmentation, no blur)."""
        was = self.training
        self.eval()
        tokens, cond, hist, *_ = self._encode(batch, None)
        z = self.state_token(tokens, cond, hist)
        self.train(was)
        return z

    @torch.no_grad()
    def init_stage_tokens(self, batches) -> None:
        """After warm-up: E[s] = mean state token of the training samples of stage s (iterable of batches)."""
        zs, ss = [], []
        for batch in batches:
            zs.append(self.state_tokens(batch))
            ss.append(torch.as_tensor(batch[STAGE_KEY]))
        self.stage.init_tokens(torch.cat(zs), torch.cat(ss).to(zs[0].device))
