"""The safety stage between a policy and the action topic (pure numpy, no ROS).

Whatever the policy or the inputs do, what leaves this stage is finite, inside the action space and,
when a change limit is set, within ``max_delta`` of the previous published action. Every intervention
comes back as a reason string, so the node can log it and put it on its status topic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from policystack.errors import ConfigError

log = logging.getLogger(__name__)

HOLD_MODES = ("zero", "last")


@dataclass
class SafetyConfig:
    """How to limit and what to publish when holding.

    ``hold="zero"`` suits velocity/delta action spaces (stop moving), with ``keep_dims`` kept at their
    last value (e.g. a gripper that should stay closed); ``hold="last"`` suits position targets.
    """

    low: Sequence[float] | float | None = None
    high: Sequence[float] | float | None = None
    max_delta: Sequence[float] | float = 0.0     # per-step change limit; 0 disables
    hold: str = "zero"
    keep_dims: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.hold not in HOLD_MODES:
            raise ConfigError(f"safety.hold={self.hold!r}; choose one of {HOLD_MODES}")
        if np.any(np.asarray(self.max_delta, dtype=float) < 0):
            raise ConfigError(f"safety.max_delta must be >= 0, got {self.max_delta}")
        self.keep_dims = tuple(int(d) for d in self.keep_dims)


@dataclass
class SafetyResult:
    action: np.ndarray              # float64 (A,), always finite and in range
    held: bool                      # True when the safe action was published instead of the policy's
    reasons: list[str] = field(default_factory=list)


class SafetyStage:
    def __init__(self, dim: int, cfg: SafetyConfig | None = None):
        cfg = cfg or SafetyConfig()
        self.dim = int(dim)
        self.cfg = cfg
        self.low = self._vec(cfg.low, -np.inf, "low")
        self.high = self._vec(cfg.high, np.inf, "high")
        if np.any(self.low > self.high):
            raise ConfigError(f"safety: low {self.low} above high {self.high}")
        self.max_delta = self._vec(cfg.max_delta, 0.0, "max_delta")
        bad = [d for d in cfg.keep_dims if not 0 <= d < self.dim]
        if bad:
            raise ConfigError(f"safety.keep_dims {bad} outside an action of size {self.dim}")
        self.last: np.ndarray | None = None

    def _vec(self, value, default: float, name: str) -> np.ndarray:
        if value is None:
            return np.full(self.dim, default, np.float64)
        v = np.asarray(value, np.float64).reshape(-1)
        if v.size == 1:
            v = np.full(self.dim, float(v[0]))
        if v.shape != (self.dim,):
            raise ConfigError(f"safety.{name} has {v.size} values for an action of size {self.dim}")
        if np.any(np.isnan(v)):
            raise ConfigError(f"safety.{name} contains NaN")
        return v

    def reset(self, last: np.ndarray | None = None) -> None:
        """Forget the previous action (episode start); ``last`` seeds the change limit, e.g. the arm's pose."""
        self.last = None if last is None else self._clamp(np.asarray(last, np.float64))

    def _clamp(self, a: np.ndarray) -> np.ndarray:
        return np.clip(a, self.low, self.high)

    def safe_action(self) -> np.ndarray:
        if self.cfg.hold == "last" and self.last is not None:
            return self.last.copy()
        a = self._clamp(np.zeros(self.dim))
        if self.last is not None:
            for d in self.cfg.keep_dims:
                a[d] = self.last[d]
        return a

    def filter(self, action) -> SafetyResult:
        """The policy's action made safe; a non-finite or wrongly sized action is replaced by the safe action."""
        reasons: list[str] = []
        try:
            a = np.asarray(action, np.float64).reshape(-1)
        except (TypeError, ValueError):
            return self.hold(f"policy output is not numeric: {action!r}")
        if a.shape != (self.dim,):
            return self.hold(f"policy output has size {a.size}, expected {self.dim}")
        if not np.all(np.isfinite(a)):
            bad = np.flatnonzero(~np.isfinite(a)).tolist()
            return self.hold(f"policy output non-finite in dims {bad}")
        clamped = self._clamp(a)
        if not np.array_equal(clamped, a):
            dims = np.flatnonzero(clamped != a).tolist()
            reasons.append(f"clamped dims {dims} to the action space")
        a = clamped
        if self.last is not None and np.any(self.max_delta > 0):
            lim = np.where(self.max_delta > 0, self.max_delta, np.inf)
            step = np.clip(a - self.last, -lim, lim)
            limited = self.last + step
            if not np.allclose(limited, a):
                dims = np.flatnonzero(~np.isclose(limited, a)).tolist()
                reasons.append(f"change limited in dims {dims} (max_delta)")
            a = self._clamp(limited)
        self.last = a.copy()
        return SafetyResult(a, held=False, reasons=reasons)

    def hold(self, reason: str) -> SafetyResult:
        a = self.safe_action()
        if not np.all(np.isfinite(a)):  # unreachable with finite bounds; never publish NaN regardless
            a = np.zeros(self.dim)
        self.last = a.copy()
        return SafetyResult(a, held=True, reasons=[f"hold: {reason}"])

    def safe_stop(self, reason: str) -> SafetyResult:
        return self.hold(f"safe stop ({reason})")
