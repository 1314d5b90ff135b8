"""Feature specs: what an env, a sensor rig or a policy provides or needs.

A mismatch is found at start-up, with a message naming the key, never deep inside a forward pass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from policystack.errors import SpecMismatchError


@dataclass(frozen=True)
class Feature:
    """One key's shape and dtype. ``None`` in ``shape`` matches any size on that axis."""

    key: str
    shape: tuple[int | None, ...]
    dtype: str
    names: tuple[str, ...] | None = None  # element names, e.g. of observation.state
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(self.shape))
        object.__setattr__(self, "dtype", str(np.dtype(self.dtype)) if self.dtype != "str" else "str")
        if self.names is not None:
            object.__setattr__(self, "names", tuple(self.names))
            if self.shape and self.shape[-1] is not None and len(self.names) != self.shape[-1]:
                raise SpecMismatchError(
                    f"feature {self.key!r}: {len(self.names)} names for last axis of size {self.shape[-1]}")

    def matches(self, other: "Feature") -> str | None:
        """Why ``other`` (provided) does not satisfy ``self`` (required), or None when it does."""
        if self.dtype != other.dtype:
            return f"dtype {other.dtype} provided, {self.dtype} required"
        if len(self.shape) != len(other.shape):
            return f"shape {other.shape} provided, {self.shape} required"
        for a, b in zip(self.shape, other.shape):
            if a is not None and b is not None and a != b:
                return f"shape {other.shape} provided, {self.shape} required"
        return None

    def check_value(self, value: Any) -> None:
        """Validate one runtime value (no batch axis) against this feature."""
        if self.dtype == "str":
            if not isinstance(value, str):
                raise SpecMismatchError(f"{self.key!r}: expected str, got {type(value).__name__}")
            return
        arr = np.asarray(value)
        if len(arr.shape) != len(self.shape) or any(
                s is not None and s != a for s, a in zip(self.shape, arr.shape)):
            raise SpecMismatchError(f"{self.key!r}: shape {arr.shape}, expected {self.shape}")
        if arr.dtype != np.dtype(self.dtype):
            raise SpecMismatchError(f"{self.key!r}: dtype {arr.dtype}, expected {self.dtype}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Feature":
        d = dict(d)
        d["shape"] = tuple(d["shape"])
        if d.get("names") is not None:
            d["names"] = tuple(d["names"])
        return cls(**d)


@dataclass
class Spec:
    """An ordered set of features, keyed by observation key."""

    features: dict[str, Feature] = field(default_factory=dict)

    @classmethod
    def of(cls, features: Iterable[Feature]) -> "Spec":
        return cls({f.key: f for f in features})

    def __contains__(self, key: str) -> bool:
        return key in self.features

    def __getitem__(self, key: str) -> Feature:
        return self.features[key]

    def __iter__(self):
        return iter(self.features.values())

    def keys(self) -> list[str]:
        return list(self.features)

    def to_dict(self) -> dict:
        return {k: f.to_dict() for k, f in self.features.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Spec":
        return cls({k: Feature.from_dict(v) for k, v in d.items()})

    def check_satisfies(self, required: "Spec", who: str = "policy", source: str = "env") -> None:
        """Raise naming every required key that ``self`` (what a source provides) lacks or mismatches."""
        problems = []
        for feat in required:
            if feat.key not in self.features:
                problems.append(f"{feat.key!r} is required by the {who} but the {source} does not provide it "
                                f"(provided: {', '.join(self.keys()) or 'nothing'})")
                continue
            why = feat.matches(self.features[feat.key])
            if why:
                problems.append(f"{feat.key!r}: {why} ({source} -> {who})")
        if problems:
            raise SpecMismatchError("; ".join(problems))

    def check_observation(self, obs: Mapping[str, Any]) -> None:
        """Validate a runtime observation dict (unbatched) against every feature of this spec."""
        for feat in self:
            if feat.key not in obs:
                raise SpecMismatchError(f"observation lacks {feat.key!r} (has: {', '.join(obs)})")
            feat.check_value(obs[feat.key])
