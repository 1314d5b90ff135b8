"""HDF5 episodes in the robomimic/LIBERO layout (DESIGN.md "Dataset").

    data                      attrs: env_args (JSON), problem_info (JSON, language_instruction),
                                     features (JSON Spec of obs keys + action), total
    data/demo_<i>             attrs: num_samples, task, init_state_index (when known)
    data/demo_<i>/obs/<key>   (T, ...) one dataset per observation key
    data/demo_<i>/actions     (T, A) float32
    data/demo_<i>/rewards     (T,)   float32
    data/demo_<i>/dones       (T,)   uint8
    data/demo_<i>/states      (T, S) optional simulator states (replay / re-render)

Our files name obs datasets by their observation key (``observation.images.agentview``); files in
other layouts (official LIBERO) are read through a ``key_map`` from their names to ours.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from policystack import keys as K
from policystack.errors import DatasetError
from policystack.spec import Feature, Spec

log = logging.getLogger(__name__)


@dataclass
class Episode:
    obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    task: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    states: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.actions)

    def validate(self) -> None:
        T = len(self.actions)
        if self.actions.ndim != 2:
            raise DatasetError(f"actions must be (T, A), got shape {self.actions.shape}")
        for k, v in self.obs.items():
            if len(v) != T:
                raise DatasetError(f"obs {k!r} has {len(v)} steps but actions have {T}")
        if not np.all(np.isfinite(self.actions)):
            raise DatasetError("actions contain NaN or inf")


def _h5():
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a core dependency
        raise DatasetError("h5py is required for HDF5 episodes: pip install h5py") from e
    return h5py


class EpisodeWriter:
    """Append episodes to an HDF5 file; each episode is flushed, so an interruption loses at most one."""

    def __init__(self, path: str | os.PathLike, env_args: Mapping[str, Any] | None = None,
                 features: Spec | None = None, language: str | None = None, compress_images: bool = True):
        h5py = _h5()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = h5py.File(self.path, "a")
        self.data = self.f.require_group("data")
        if env_args is not None:
            self.data.attrs["env_args"] = json.dumps(dict(env_args))
        if features is not None:
            self.data.attrs["features"] = json.dumps(features.to_dict())
        if language is not None:
            self.data.attrs["problem_info"] = json.dumps({"language_instruction": language})
        self.compress_images = compress_images
        self.count = len([k for k in self.data.keys() if k.startswith("demo_")])

    def add(self, ep: Episode) -> str:
        ep.validate()
        name = f"demo_{self.count}"
        g = self.data.create_group(name)
        og = g.create_group("obs")
        for k, v in ep.obs.items():
            v = np.asarray(v)
            big = v.dtype == np.uint8 and v.ndim >= 3
            kw = dict(compression="lzf", chunks=(1,) + v.shape[1:]) if big and self.compress_images else {}
            og.create_dataset(k, data=v, **kw)
        g.create_dataset("actions", data=np.asarray(ep.actions, np.float32))
        g.create_dataset("rewards", data=np.asarray(ep.rewards, np.float32))
        g.create_dataset("dones", data=np.asarray(ep.dones, np.uint8))
        if ep.states is not None:
            g.create_dataset("states", data=np.asarray(ep.states))
        g.attrs["num_samples"] = len(ep)
        g.attrs["task"] = ep.task
        for k, v in ep.attrs.items():
            g.attrs[k] = v
        self.count += 1
        self.data.attrs["total"] = int(self.data.attrs.get("total", 0)) + len(ep)
        self.f.flush()
        return name

    def close(self) -> None:
        if self.f:
            self.f.close()
            self.f = None

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _demo_sort_key(name: str) -> tuple[int, str]:
    tail = name.rsplit("_", 1)[-1]
    return (int(tail), name) if tail.isdigit() else (1 << 30, name)


def read_file_attrs(path: str | os.PathLike) -> dict[str, Any]:
    h5py = _h5()
    path = _check_path(path)
    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise DatasetError(f"{path} is not an episode file: no 'data' group (robomimic/LIBERO layout)")
        out = {}
        for k, v in f["data"].attrs.items():
            if isinstance(v, bytes):
                v = v.decode()
            try:
                out[k] = json.loads(v) if isinstance(v, str) and v[:1] in "{[" else v
            except json.JSONDecodeError:
                out[k] = v
        return out


def _check_path(path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"dataset file {p} does not exist")
    return p


def read_episodes(path: str | os.PathLike, keys: Sequence[str] | None = None,
                  key_map: Mapping[str, str] | None = None, limit: int | None = None,
                  with_states: bool = False) -> list[Episode]:
    """Read episodes; ``key_map`` renames file obs names to observation keys, ``keys`` selects (after renaming).

    A requested key that an episode lacks is a DatasetError naming the key, the episode and what it has.
    """
    h5py = _h5()
    path = _check_path(path)
    key_map = dict(key_map or {})
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path} is not a readable HDF5 file: {e}") from e
    with f:
        if "data" not in f:
            raise DatasetError(f"{path} is not an episode file: no 'data' group (robomimic/LIBERO layout)")
        data = f["data"]
        language = ""
        if "problem_info" in data.attrs:
            try:
                language = json.loads(data.attrs["problem_info"]).get("language_instruction", "")
            except (json.JSONDecodeError, TypeError):
                language = ""
        names = sorted((n for n in data.keys() if n.startswith("demo")), key=_demo_sort_key)
        if not names:
            raise DatasetError(f"{path} holds no episodes (no data/demo_* groups)")
        episodes = []
        for name in names[:limit]:
            g = data[name]
            for req in ("actions", "obs"):
                if req not in g:
                    raise DatasetError(f"{path}:{name} lacks '{req}'")
            available = {key_map.get(k, k): k for k in g["obs"].keys()}
            want = list(keys) if keys is not None else list(available)
            missing = [k for k in want if k not in available]
            if missing:
                raise DatasetError(f"{path}:{name} lacks observation key(s) {missing}; "
                                   f"it has {sorted(available)}")
            obs = {k: g["obs"][available[k]][()] for k in want}
            T = g["actions"].shape[0]
            rewards = g["rewards"][()] if "rewards" in g else np.zeros(T, np.float32)
            dones = g["dones"][()] if "dones" in g else np.eye(1, T, T - 1, dtype=np.uint8)[0]
            task = g.attrs.get("task", language)
            if isinstance(task, bytes):
                task = task.decode()
            attrs = {k: (v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v) for k, v in g.attrs.items()}
            ep = Episode(obs=obs, actions=np.asarray(g["actions"][()], np.float32),
                         rewards=np.asarray(rewards, np.float32), dones=np.asarray(dones, np.uint8),
                         task=str(task or language), attrs=attrs,
                         states=g["states"][()] if with_states and "states" in g else None)
            ep.validate()
            episodes.append(ep)
        return episodes


def features_of(episodes: Sequence[Episode]) -> Spec:
    """The Spec (obs keys + action) these episodes provide."""
    ep = episodes[0]
    feats = [Feature(k, v.shape[1:], str(v.dtype)) for k, v in ep.obs.items()]
    feats.append(Feature(K.ACTION, ep.actions.shape[1:], "float32"))
    if ep.task:
        feats.append(Feature(K.TASK, (), "str"))
    return Spec.of(feats)


def file_features(path: str | os.PathLike) -> Spec | None:
    attrs = read_file_attrs(path)
    return Spec.from_dict(attrs["features"]) if isinstance(attrs.get("features"), dict) else None


def compute_stats(episodes: Sequence[Episode], keys: Iterable[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per-dimension mean/std/min/max of float features over all steps (images are scaled, not fitted)."""
    stats = {}
    for k in keys:
        arrs = [ep.actions if k == K.ACTION else ep.obs[k] for ep in episodes]
        if arrs[0].dtype == np.uint8:
            continue
        x = np.concatenate(arrs).astype(np.float64)
        x = x.reshape(len(x), -1) if x.ndim > 2 else x
        stats[k] = {"mean": x.mean(0).astype(np.float32), "std": x.std(0).astype(np.float32),
                    "min": x.min(0).astype(np.float32), "max": x.max(0).astype(np.float32)}
    return stats
