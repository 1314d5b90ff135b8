"""The Policy contract (DESIGN.md): a torch Module with a typed, registered config.

``select_action(obs)`` takes one unbatched observation dict and returns one action; it runs the model
only when its action queue is empty, and keeps the observation history, so chunking, ensembling and
frame stacking never leak into runners (rollout, ROS node). ``forward(batch)`` returns
``(loss, logs)`` for training. Checkpoints carry the normaliser inside the weights.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import logging
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from policystack import config as cfgmod
from policystack import keys as K
from policystack.checkpoint import (CONFIG_NAME, SPEC_NAME, WEIGHTS_NAME, atomic_directory,
                                    load_weights, read_json, resolve_pretrained_dir, save_weights)
from policystack.errors import CheckpointError, SpecMismatchError, UnknownNameError
from policystack.spec import Feature, Spec

log = logging.getLogger(__name__)

_POLICIES: dict[str, type["Policy"]] = {}


def _import_policy_module(name: str) -> None:
    try:
        importlib.import_module(f"policies.{name}")
    except ModuleNotFoundError as e:
        if e.name in (f"policies.{name}",):
            raise UnknownNameError(f"unknown policy {name!r}; available: {', '.join(available_policies())}") from e
        raise


cfgmod.set_resolver("policy", _import_policy_module)


@dataclass
class PolicyConfig:
    """Fields every policy shares: I/O features (filled from the env/dataset) and execution shape."""

    n_obs_steps: int = 1            # frames of history the model sees
    chunk_size: int = 1             # actions predicted per model call
    n_action_steps: int = 1         # actions executed from each chunk before re-planning
    temporal_ensemble_coeff: float | None = None  # ACT-style ensembling (needs n_action_steps == 1)
    input_features: dict = field(default_factory=dict)   # key -> Feature dict
    output_features: dict = field(default_factory=dict)  # "action" -> Feature dict

    def __post_init__(self) -> None:
        if self.n_obs_steps < 1 or self.chunk_size < 1:
            raise cfgmod.ConfigError("n_obs_steps and chunk_size must be >= 1")
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise cfgmod.ConfigError(
                f"n_action_steps={self.n_action_steps} must be in [1, chunk_size={self.chunk_size}]")
        if self.temporal_ensemble_coeff is not None and self.n_action_steps != 1:
            raise cfgmod.ConfigError("temporal ensembling needs n_action_steps == 1")

    @property
    def input_spec(self) -> Spec:
        return Spec.from_dict(self.input_features)

    @property
    def action_feature(self) -> Feature:
        if K.ACTION not in self.output_features:
            raise SpecMismatchError("policy config has no 'action' output feature; build it with "
                                    "features from an env or dataset (make_policy(..., features=...))")
        return Feature.from_dict(self.output_features[K.ACTION])

    @property
    def action_dim(self) -> int:
        return int(self.action_feature.shape[-1])

    def wanted_inputs(self, available: Spec) -> Spec:
        """Which of ``available`` this policy consumes; override to select modalities."""
        return Spec.of(f for f in available if f.key != K.ACTION)


def register_policy(cls: type["Policy"]) -> type["Policy"]:
    if not getattr(cls, "name", None) or not getattr(cls, "config_class", None):
        raise TypeError(f"{cls.__name__} must set class attributes 'name' and 'config_class'")
    _POLICIES[cls.name] = cls
    return cls


def available_policies() -> list[str]:
    import policies
    return sorted(m.name for m in pkgutil.iter_modules(policies.__path__)
                  if m.ispkg and m.name != "common")


def get_policy_class(name: str) -> type["Policy"]:
    if name not in _POLICIES:
        _import_policy_module(name)
    if name not in _POLICIES:
        raise UnknownNameError(f"policies.{name} registers no policy named {name!r}")
    return _POLICIES[name]


def make_policy(cfg: PolicyConfig, features: Spec | None = None, stats: Mapping | None = None) -> "Policy":
    """Build a policy from its config; ``features`` (env/dataset spec, incl. 'action') fill its I/O."""
    cls = get_policy_class(type(cfg).type_name)
    if features is not None:
        action = features[K.ACTION] if K.ACTION in features else None
        if action is None:
            raise SpecMismatchError("features passed to make_policy lack 'action'")
        cfg = dataclasses.replace(
            cfg, input_features=cfg.wanted_inputs(features).to_dict(),
            output_features={K.ACTION: action.to_dict()})
    policy = cls(cfg)
    if stats is not None:
        policy.set_stats(stats)
    return policy


def load_policy(path: str | Path, map_location: str = "cpu") -> "Policy":
    """Load any policy checkpoint by the ``type`` in its config.json."""
    d = resolve_pretrained_dir(path)
    raw = read_json(d / CONFIG_NAME)
    if "type" not in raw:
        raise CheckpointError(f"{d / CONFIG_NAME} has no 'type' field naming the policy")
    return get_policy_class(raw["type"]).from_pretrained(d, map_location=map_location)


def obs_to_batch(obs: Mapping[str, Any], device: torch.device | str = "cpu") -> dict[str, Any]:
    """One unbatched observation dict -> batch of one (tensors with a leading axis, strings in lists)."""
    out: dict[str, Any] = {}
    for k, v in obs.items():
        if isinstance(v, str):
            out[k] = [v]
        elif isinstance(v, torch.Tensor):
            out[k] = v.unsqueeze(0).to(device)
        else:
            out[k] = torch.from_numpy(np.ascontiguousarray(v)).unsqueeze(0).to(device)
    return out


class Policy(nn.Module):
    """Base of every policy. Subclasses implement ``predict_action_chunk`` and ``forward``."""

    name: ClassVar[str]
    config_class: ClassVar[type[PolicyConfig]]
    # config fields added after checkpoints were written, whose new default would change what an older
    # checkpoint means: the value those checkpoints were trained with (filled in when a saved config lacks it)
    legacy_config_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def upgrade_config_dict(cls, raw: dict) -> dict:
        """A saved config dict with ``legacy_config_defaults`` filled in where it lacks them."""
        return {**cls.legacy_config_defaults, **raw}

    def __init__(self, config: PolicyConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self._obs_history: dict[str, collections.deque] = {}
        self._action_queue: collections.deque = collections.deque()
        self._ensemble = None

    # ----- the runtime contract -------------------------------------------------------------
    def reset(self) -> None:
        """Forget history and queued actions (call at every episode start or instruction change)."""
        self._obs_history.clear()
        self._action_queue.clear()
        self._ensemble = None

    @torch.no_grad()
    def select_action(self, obs: Mapping[str, Any]) -> np.ndarray:
        """One step: returns a float32 (A,) action for an unbatched observation dict."""
        if self.training:
            self.eval()
        spec = self.config.input_spec
        spec.check_observation(obs)
        batch = self._stack_history({k: obs[k] for k in spec.keys()})
        coeff = self.config.temporal_ensemble_coeff
        if coeff is not None:
            chunk = self.predict_action_chunk(batch)[0].float().cpu().numpy()
            action = self._ensembled(chunk, coeff)
        else:
            if not self._action_queue:
                chunk = self.predict_action_chunk(batch)[0].float().cpu().numpy()
                self._action_queue.extend(chunk[: self.config.n_action_steps])
            action = self._action_queue.popleft()
        action = np.asarray(action, dtype=np.float32)
        if not np.all(np.isfinite(action)):
            raise FloatingPointError(f"{self.name} produced a non-finite action {action}")
        return action

    def _stack_history(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        n = self.config.n_obs_steps
        batch = obs_to_batch(obs, self.device)
        if n == 1:
            return batch
        out = {}
        for k, v in batch.items():
            dq = self._obs_history.setdefault(k, collections.deque(maxlen=n))
            if not dq:  # first step: repeat the first observation, as diffusion_policy does
                dq.extend([v] * n)
            else:
                dq.append(v)
            out[k] = v if isinstance(v, list) else torch.stack(list(dq), dim=1)
        return out

    def _ensembled(self, chunk: np.ndarray, coeff: float) -> np.ndarray:
        """ACT temporal ensembling: weights exp(-coeff * i), i = 0 for the oldest prediction."""
        if self._ensemble is None:
            self._ensemble = collections.deque()
        self._ensemble.append(list(chunk))
        preds = [c.pop(0) for c in self._ensemble]
        while self._ensemble and not self._ensemble[0]:
            self._ensemble.popleft()
        w = np.exp(-coeff * np.arange(len(preds)))
        return (np.stack(preds) * w[:, None]).sum(0) / w.sum()

    def predict_action_chunk(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """(B, chunk_size, A) un-normalised actions for a batch of observations."""
        raise NotImplementedError

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def set_stats(self, stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Fill normalisation buffers from dataset statistics (policies with a normaliser override)."""

    def optim_params(self):
        return [p for p in self.parameters() if p.requires_grad]

    def optimizer(self) -> torch.optim.Optimizer:
        """The optimiser the generic trainer uses; policies override for param groups or schedules."""
        return torch.optim.AdamW(self.optim_params(), lr=float(getattr(self.config, "lr", 1e-4)),
                                 weight_decay=float(getattr(self.config, "weight_decay", 0.0)))

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    # ----- persistence ----------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        directory = Path(directory)
        data = cfgmod.to_dict(self.config)
        data["type"] = self.name
        import json
        with atomic_directory(directory) as tmp:
            (tmp / CONFIG_NAME).write_text(json.dumps(data, indent=2))
            (tmp / SPEC_NAME).write_text(json.dumps(self.config.input_features, indent=2))
            save_weights(self.state_dict(), tmp / WEIGHTS_NAME)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> "Policy":
        d = resolve_pretrained_dir(directory)
        raw = read_json(d / CONFIG_NAME)
        if raw.get("type") != cls.name:
            raise CheckpointError(f"{d} holds a {raw.get('type')!r} policy, not {cls.name!r}")
        raw.pop("type")
        raw = cls.upgrade_config_dict(raw)
        try:
            config = cfgmod.from_dict(cls.config_class, raw)
        except cfgmod.ConfigError as e:
            raise CheckpointError(f"{d / CONFIG_NAME} does not match {cls.config_class.__name__}: {e}") from e
        policy = cls(config)
        state = load_weights(d / WEIGHTS_NAME)
        try:
            missing, unexpected = policy.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise CheckpointError(f"{d / WEIGHTS_NAME} does not fit {cls.__name__} built from its config: "
                                  f"{str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e}") from e
        if missing or unexpected:
            raise CheckpointError(f"{d / WEIGHTS_NAME} does not fit {cls.__name__}: "
                                  f"missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}")
        policy.to(map_location)
        policy.eval()
        return policy
