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


def color_jitter(x: torch.Tensor, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2,
                 value_range: tuple[float, float] | None = (0.0, 1.0),
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """torchvision-style ColorJitter on a batch, factors ~ U[max(0, 1 − v), 1 + v] drawn per sample.

    ``x`` is (N, C, H, W) float. Brightness scales, contrast blends with the sample's mean grey level
    (channel mean when C != 3), saturation blends with the per-pixel grey image (C == 3 only). With
    ``value_range`` the result is clipped after each step, as torchvision does for images in [0, 1];
    ``None`` leaves unbounded maps (normalised tactile pressure/shear) unclipped.
    """
    n = x.shape[0]

    def factor(v: float) -> torch.Tensor:
        u = torch.rand(n, 1, 1, 1, device=x.device, generator=generator)
        return max(0.0, 1.0 - v) + u * (1.0 + v - max(0.0, 1.0 - v))

    def clip(t: torch.Tensor) -> torch.Tensor:
        return t if value_range is None else t.clamp(*value_range)

    def grey(t: torch.Tensor) -> torch.Tensor:
        if t.shape[1] != 3:
            return t.mean(1, keepdim=True)
        return 0.299 * t[:, :1] + 0.587 * t[:, 1:2] + 0.114 * t[:, 2:3]

    if brightness > 0:
        x = clip(x * factor(brightness))
    if contrast > 0:
        mean = grey(x).mean((-3, -2, -1), keepdim=True)
        x = clip((x - mean) * factor(contrast) + mean)
    if saturation > 0 and x.shape[1] == 3:
        g = grey(x)
        x = clip((x - g) * factor(saturation) + g)
    return x
