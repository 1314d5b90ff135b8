"""Image augmentation used across policies."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ random shift: replicate-pad by ``pad`` and crop back at a random offset per sample.

    ``x`` is (B, C, H, W) float. Implemented with grid_sample (as DrQ-v2) so it is differentiable and
    batched. Several tensors that must share the shift (RGB + depth) should be concatenated on C first.
    """
    b, c, h, w = x.shape
    if pad == 0:
        return x
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    eps = 1.0 / (h + 2 * pad)
    arange = torch.linspace(-1.0 + eps, 1.0 - eps, h + 2 * pad, device=x.device, dtype=x.dtype)[:h]
    arange_w = torch.linspace(-1.0 + eps, 1.0 - eps, w + 2 * pad, device=x.device, dtype=x.dtype)[:w]
    gy, gx = torch.meshgrid(arange, arange_w, indexing="ij")
    base = torch.stack([gx, gy], dim=-1).unsqueeze(0).expand(b, h, w, 2)
    shift = torch.randint(0, 2 * pad + 1, (b, 1, 1, 2), device=x.device, generator=generator).to(x.dtype)
    shift = shift * 2.0 / torch.tensor([w + 2 * pad, h + 2 * pad], device=x.device, dtype=x.dtype)
    return F.grid_sample(x, base + shift, padding_mode="zeros", align_corners=False)
