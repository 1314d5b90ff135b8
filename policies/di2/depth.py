"""Depth data path of DI² (specs/koi_di2.md §2.3): metric conversion, scaling, aligned augmentation."""

from __future__ import annotations

import numpy as np
import torch

from policies.common.augment import random_shift

# the frozen CLIP's input normalisation, applied to RGB and to the 3-channel depth image alike
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def buffer_to_metres(buf, near: float, far: float, reversed_z: bool = False):
    """OpenGL depth buffer in [0, 1] -> metric depth along the camera axis.

    Standard buffer (robosuite/DI² ``depthimg2Meters``, MuJoCo's default mjDEPTH_ZERONEAR map):
    ``z = near / (1 - d (1 - near/far))``. ``reversed_z`` is the mjDEPTH_ZEROFAR map that
    ``mujoco.Renderer`` reads (d = 1 at the near plane): the same formula on ``1 - d``.
    ``near``/``far`` are ``znear * extent`` and ``zfar * extent`` of the MuJoCo model.
    """
    if not 0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    d = np.asarray(buf, dtype=np.float64)
    if reversed_z:
        d = 1.0 - d
    return near / (1.0 - d * (1.0 - near / far))


def mujoco_near_far(model) -> tuple[float, float]:
    """Clip distances of a MuJoCo model in metres (as ``mujoco.Renderer`` and robosuite use them)."""
    extent = float(model.stat.extent)
    return float(model.vis.map.znear) * extent, float(model.vis.map.zfar) * extent


def scale_depth(depth_m: torch.Tensor, d_min: float = 0.01, d_max: float = 5.0) -> torch.Tensor:
    """(..., H, W) metres -> (..., H, W) in [d_min/d_max, 1]: clip to [d_min, d_max] m, divide by d_max."""
    return depth_m.float().clamp(d_min, d_max) / d_max


def _clip_normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def prepare_rgb(img: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float, [0, 1] then CLIP-normalised."""
    return _clip_normalize(img.movedim(-1, -3).float() / 255.0)


def prepare_depth(depth_m: torch.Tensor, d_min: float, d_max: float) -> torch.Tensor:
    """(N, H, W) metres -> (N, 3, H, W): scaled depth repeated to 3 channels, CLIP-normalised (§2.3)."""
    x = scale_depth(depth_m, d_min, d_max).unsqueeze(-3).expand(*depth_m.shape[:-2], 3, *depth_m.shape[-2:])
    return _clip_normalize(x)


def shared_random_shift(rgb: torch.Tensor, depth: torch.Tensor | None, pad: int,
                        generator: torch.Generator | None = None):
    """One DrQ shift per frame applied to an RGB frame *and* its depth, so edges stay pixel-aligned.

    ``rgb`` (N, C, H, W), ``depth`` (N, C', H, W) or None. Both are shifted through one
    ``random_shift`` call on their channel concatenation.
    """
    if pad <= 0:
        return rgb, depth
    if depth is None:
        return random_shift(rgb, pad, generator), None
    both = random_shift(torch.cat([rgb, depth], dim=1), pad, generator)
    return both[:, : rgb.shape[1]], both[:, rgb.shape[1]:]


def default_shift_pads(n_cameras: int, image_size: int) -> tuple[int, ...]:
    """Paper pads (10 px static camera, 4 px in-hand, at 128 px) scaled to ``image_size``."""
    static = max(1, round(10 * image_size / 128))
    hand = max(1, round(4 * image_size / 128))
    return (static,) + (hand,) * (n_cameras - 1)
