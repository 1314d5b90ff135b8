"""KOI's acting network: DrQ-v2 pixel encoder + actor (spec §1.4), BC-pretrainable, Policy contract.

The policy owns what acts: the conv encoder and the actor (trunk Linear -> LayerNorm -> Tanh, then an
MLP with a tanh mean and a fixed-std truncated normal). The critic, target networks and the OT reward
live in ``agent.py``; the encoder is trained by the critic only during RL.

``select_action`` keeps its own frame stack at agent-step rate and holds each action for
``action_repeat`` env steps, so the same checkpoint behaves identically in training rollouts,
``policystack eval`` and the ROS node.
"""

from __future__ import annotations

import collections
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policystack import keys as K
from policystack.errors import SpecMismatchError
from policies.base import Policy, register_policy
from policies.common.augment import random_shift
from policies.koi.configuration_koi import KOIConfig


def weight_init(m: nn.Module) -> None:
    """DrQ-v2 init: orthogonal weights (conv gain relu), zero bias."""
    if isinstance(m, nn.Linear):
        nn.init.orthogonal_(m.weight.data)
        if m.bias is not None:
            m.bias.data.fill_(0.0)
    elif isinstance(m, nn.Conv2d):
        nn.init.orthogonal_(m.weight.data, nn.init.calculate_gain("relu"))
        if m.bias is not None:
            m.bias.data.fill_(0.0)


class TruncatedNormal(torch.distributions.Normal):
    """Normal whose samples are clipped into (-1, 1) with a straight-through gradient (DrQ-v2)."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, low: float = -1.0, high: float = 1.0,
                 eps: float = 1e-6):
        super().__init__(loc, scale, validate_args=False)
        self.low, self.high, self.eps = low, high, eps

    def _clamp(self, x: torch.Tensor) -> torch.Tensor:
        clamped = torch.clamp(x, self.low + self.eps, self.high - self.eps)
        return x - x.detach() + clamped.detach()

    def sample(self, clip: float | None = None, sample_shape=torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device) * self.scale
        if clip is not None:
            eps = torch.clamp(eps, -clip, clip)
        return self._clamp(self.loc + eps)


class PixelEncoder(nn.Module):
    """Conv(C->32, 3, s) -> ReLU -> 3 x [Conv(32->32, 3, s_i) -> ReLU] -> flatten; pixels as x/255 - 0.5."""

    def __init__(self, in_channels: int, height: int, width: int, channels: int = 32,
                 strides: tuple[int, ...] = (2, 1, 1, 1)):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for s in strides:
            layers += [nn.Conv2d(c, channels, 3, stride=s), nn.ReLU()]
            c = channels
        self.convnet = nn.Sequential(*layers)
        with torch.no_grad():
            self.repr_dim = int(self.convnet(torch.zeros(1, in_channels, height, width)).numel())
        self.apply(weight_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.convnet(obs / 255.0 - 0.5).flatten(1)


def trunk(repr_dim: int, feature_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())


class Actor(nn.Module):
    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.trunk = trunk(repr_dim, feature_dim)
        self.policy = nn.Sequential(nn.Linear(feature_dim, hidden_dim), nn.ReLU(),
                                    nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                                    nn.Linear(hidden_dim, action_dim))
        self.apply(weight_init)

    def forward(self, h: torch.Tensor, std: float) -> TruncatedNormal:
        mu = torch.tanh(self.policy(self.trunk(h)))
        return TruncatedNormal(mu, torch.ones_like(mu) * std)


class Critic(nn.Module):
    """Own trunk, then two Q heads MLP(feature + A -> hidden -> hidden -> 1)."""

    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.trunk = trunk(repr_dim, feature_dim)

        def head() -> nn.Sequential:
            return nn.Sequential(nn.Linear(feature_dim + action_dim, hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1))
        self.Q1, self.Q2 = head(), head()
        self.apply(weight_init)

    def forward(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.trunk(h), action], dim=-1)
        return self.Q1(x), self.Q2(x)


class FrameStack:
    """The last ``n`` frames (HxWx3 uint8) as one (3n, H, W) array; the first frame fills the stack."""

    def __init__(self, n: int):
        self.n = n
        self.frames: collections.deque = collections.deque(maxlen=n)

    def reset(self, frame: np.ndarray) -> np.ndarray:
        self.frames.clear()
        self.frames.extend([frame] * self.n)
        return self.stacked()

    def push(self, frame: np.ndarray) -> np.ndarray:
        if not self.frames:
            return self.reset(frame)
        self.frames.append(frame)
        return self.stacked()

    def stacked(self) -> np.ndarray:
        return np.concatenate([np.moveaxis(f, -1, 0) for f in self.frames], axis=0)


def stack_history(frames: torch.Tensor) -> torch.Tensor:
    """(B, S, H, W, 3) or (B, H, W, 3) images -> (B, 3S, H, W), oldest frame first."""
    if frames.ndim == 4:
        frames = frames.unsqueeze(1)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise SpecMismatchError(f"koi expects images (B, S, H, W, 3), got {tuple(frames.shape)}")
    b, s, h, w, _ = frames.shape
    return frames.permute(0, 1, 4, 2, 3).reshape(b, s * 3, h, w)


@register_policy
class KOIPolicy(Policy):
    name = "koi"
    config_class = KOIConfig

    def __init__(self, config: KOIConfig):
        super().__init__(config)
        self.image_key = config.image_key
        h, w, _ = config.input_spec[self.image_key].shape
        self.encoder = PixelEncoder(3 * config.n_obs_steps, h, w, config.conv_channels, tuple(config.conv_strides))
        self.actor = Actor(self.encoder.repr_dim, config.action_dim, config.feature_dim, config.hidden_dim)
        act = config.action_feature
        low = -1.0 if act.low is None else act.low
        high = 1.0 if act.high is None else act.high
        # the actor works in [-1, 1]; these map it to the env's units (saved with the weights)
        self.register_buffer("action_low", torch.full((config.action_dim,), float(low)))
        self.register_buffer("action_high", torch.full((config.action_dim,), float(high)))
        self._stack = FrameStack(config.n_obs_steps)
        self._held: np.ndarray | None = None
        self._hold_left = 0

    # ----- action scaling ---------------------------------------------------------------------
    def to_env_action(self, a: torch.Tensor) -> torch.Tensor:
        return self.action_low + (a + 1.0) * 0.5 * (self.action_high - self.action_low)

    def to_unit_action(self, a: torch.Tensor) -> torch.Tensor:
        return 2.0 * (a - self.action_low) / (self.action_high - self.action_low) - 1.0

    # ----- networks ---------------------------------------------------------------------------
    def dist(self, pixels: torch.Tensor, std: float | None = None, augment: bool = False) -> TruncatedNormal:
        """Policy distribution (in [-1, 1] units) for stacked pixels (B, 3S, H, W) in 0..255."""
        x = pixels.float()
        if augment and self.config.augment_pad:
            x = random_shift(x, self.config.augment_pad)
        return self.actor(self.encoder(x), self.config.std if std is None else std)

    @torch.no_grad()
    def act(self, stacked: np.ndarray, explore: bool) -> np.ndarray:
        """One action in [-1, 1] for a (3S, H, W) uint8 stack: the mean, or a sample with clipped noise."""
        x = torch.as_tensor(stacked, device=self.device).unsqueeze(0)
        d = self.dist(x)
        a = d.sample(clip=None) if explore else d.mean
        return a[0].cpu().numpy().astype(np.float32)

    def predict_action_chunk(self, batch: Mapping[str, Any]) -> torch.Tensor:
        pixels = stack_history(torch.as_tensor(batch[self.image_key])).to(self.device)
        if pixels.shape[1] != 3 * self.config.n_obs_steps:
            raise SpecMismatchError(f"{self.image_key}: koi needs {self.config.n_obs_steps} stacked frames, "
                                    f"got {pixels.shape[1] // 3}")
        return self.to_env_action(self.dist(pixels).mean).unsqueeze(1)

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """BC loss: -mean_b sum_a log N(a | mu(o), std), on randomly shifted frames (spec §1.5)."""
        pixels = stack_history(torch.as_tensor(batch[self.image_key])).to(self.device)
        target = torch.as_tensor(batch[K.ACTION], device=self.device).float()
        if target.ndim == 3:
            target = target[:, 0]
        target = self.to_unit_action(target)
        d = self.dist(pixels, augment=self.training)
        loss = -torch.distributions.Normal(d.loc, d.scale).log_prob(target).sum(-1).mean()
        return loss, {"bc_loss": float(loss.detach()), "mse": float(F.mse_loss(d.loc.detach(), target))}

    # ----- runtime contract -------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self._stack = FrameStack(self.config.n_obs_steps)
        self._held, self._hold_left = None, 0

    @torch.no_grad()
    def select_action(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Deterministic action; a new decision every ``action_repeat`` calls (frames stacked at that rate)."""
        if self.training:
            self.eval()
        if self._held is not None and self._hold_left > 0:
            self._hold_left -= 1
            return self._held.copy()
        self.config.input_spec.check_observation(obs)
        stacked = self._stack.push(np.asarray(obs[self.image_key]))
        a = self.to_env_action(torch.as_tensor(self.act(stacked, explore=False), device=self.device))
        action = a.cpu().numpy().astype(np.float32)
        if not np.all(np.isfinite(action)):
            raise FloatingPointError(f"{self.name} produced a non-finite action {action}")
        self._held, self._hold_left = action, self.config.action_repeat - 1
        return action.copy()
