"""Normaliser that lives in the policy's state_dict (diffusion_policy style): a checkpoint can always act."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from policystack.errors import SpecMismatchError


def _bufname(key: str) -> str:
    return key.replace(".", "__")


class Normalizer(nn.Module):
    """Per-key affine normalisation. mode 'mean_std' -> (x-mean)/std; 'min_max' -> [-1, 1]."""

    def __init__(self, shapes: Mapping[str, Sequence[int]], mode: str = "mean_std", eps: float = 1e-6):
        super().__init__()
        if mode not in ("mean_std", "min_max"):
            raise ValueError(f"unknown normalisation mode {mode!r}")
        self.mode, self.eps = mode, eps
        self.keys = list(shapes)
        for k, shape in shapes.items():
            n = int(np.prod(shape)) if len(shape) else 1
            self.register_buffer(_bufname(k) + "__offset", torch.zeros(n))
            self.register_buffer(_bufname(k) + "__scale", torch.ones(n))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit(self, stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        for k in self.keys:
            if k not in stats:
                raise SpecMismatchError(f"normaliser needs statistics for {k!r}; have {sorted(stats)}")
            s = stats[k]
            if self.mode == "mean_std":
                offset, scale = np.asarray(s["mean"]), np.maximum(np.asarray(s["std"]), self.eps)
            else:
                lo, hi = np.asarray(s["min"]), np.asarray(s["max"])
                offset, scale = (hi + lo) / 2, np.maximum((hi - lo) / 2, self.eps)
            getattr(self, _bufname(k) + "__offset").copy_(torch.as_tensor(offset, dtype=torch.float32).flatten())
            getattr(self, _bufname(k) + "__scale").copy_(torch.as_tensor(scale, dtype=torch.float32).flatten())
        self.fitted.fill_(True)

    def _params(self, key: str, x: torch.Tensor):
        o = getattr(self, _bufname(key) + "__offset")
        s = getattr(self, _bufname(key) + "__scale")
        if x.shape[-1] != o.numel():
            raise SpecMismatchError(f"{key!r}: last axis {x.shape[-1]} != normaliser size {o.numel()}")
        return o, s

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        o, s = self._params(key, x)
        return (x.float() - o) / s

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        o, s = self._params(key, x)
        return x * s + o
