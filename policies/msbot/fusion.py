"""Fusion blocks: MS-Bot's one-query dynamic cross-attention (with random attention blur) and the
MULSA self-attention used by the baseline."""

from __future__ import annotations

import torch
from torch import nn


class CrossAttentionFusion(nn.Module):
    """One query (the stage-injected state token) attends over all feature tokens.

    No qkv bias, scale head_dim^-0.5, no residual / LayerNorm (as the reference). Attention blur: in
    training, each sample's attention is replaced by the uniform distribution with probability p.
    ``token_keep`` (B, N) masks tokens out (OPM-style dropping at the token level).
    """

    def __init__(self, dim: int, n_heads: int, blur_p: float = 0.25):
        super().__init__()
        self.h, self.dh = n_heads, dim // n_heads
        self.scale = self.dh ** -0.5
        self.blur_p = blur_p
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor, token_keep: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, d), tokens (B, N, d) -> (u (B, d), attention (B, heads, N))."""
        b, n, d = tokens.shape
        q = self.q(query).view(b, self.h, 1, self.dh)
        k, v = self.kv(tokens).view(b, n, 2, self.h, self.dh).permute(2, 0, 3, 1, 4)
        logits = (q @ k.transpose(-1, -2)) * self.scale                 # (B, H, 1, N)
        if token_keep is not None:
            logits = logits.masked_fill(~token_keep.bool().view(b, 1, 1, n), float("-inf"))
        att = torch.softmax(logits, dim=-1)
        if self.training and self.blur_p > 0:
            blur = (torch.rand(b, generator=generator) < self.blur_p).to(att.device).view(b, 1, 1, 1)
            if token_keep is None:
                uniform = torch.full_like(att, 1.0 / n)
            else:
                kept = token_keep.float().view(b, 1, 1, n)
                uniform = (kept / kept.sum(-1, keepdim=True).clamp_min(1)).expand_as(att)
            att = torch.where(blur, uniform, att)
        att = torch.nan_to_num(att)                                       # all tokens masked -> zeros
        u = (att @ v).transpose(1, 2).reshape(b, d)
        return self.out(u), att.squeeze(2)


class SelfAttentionFusion(nn.Module):
    """MULSA: multi-head self-attention over all tokens plus a residual, then flattened."""

    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, n_heads, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, att = self.mha(tokens, tokens, tokens, need_weights=True, average_attn_weights=True)
        return out + tokens, att
