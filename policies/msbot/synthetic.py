"""Synthetic multi-stage episodes (spec §6.1) that isolate MS-Bot's ideas from perception.

S = 3 stages with random boundaries (L = 60, b1 ∈ [15, 25], b2 ∈ [35, 45]); M = 3 vector modalities
(D = 16); the action c_t ∈ {0..K−1} is a sticky Markov chain. In stage s only modality s encodes c_t
(its class prototype + noise); the others encode a random *decoy* class; every modality carries a
weak stage cue. So the right modality to attend to changes with the stage, as in a real task.
Episodes are our :class:`~policystack.dataset.Episode` (keys ``observation.tactile.m<i>``) with
per-step stage labels, written to HDF5 so the real MS-Bot training pipeline runs on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from policystack import keys as K
from policystack.dataset import Episode, EpisodeWriter
from policystack.spec import Feature, Spec


def modality_keys(n_modalities: int = 3) -> list[str]:
    return [K.tactile_key(f"m{i}") for i in range(n_modalities)]


def synthetic_episodes(n: int, seed: int = 0, length: int = 60, n_classes: int = 3, dim: int = 16,
                       noise: float = 0.5, cue: float = 0.3, p_stay: float = 0.7,
                       n_modalities: int = 3) -> tuple[list[Episode], list[np.ndarray]]:
    world = np.random.default_rng(12345)                  # prototypes shared by every split
    protos = world.standard_normal((n_modalities, n_classes, dim)).astype(np.float32)
    cues = world.standard_normal((3, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    keys = modality_keys(n_modalities)
    episodes, stages = [], []
    for _ in range(n):
        b1, b2 = int(rng.integers(15, 26)), int(rng.integers(35, 46))
        st = np.array([0 if t < b1 else (1 if t < b2 else 2) for t in range(length)], np.int64)
        c = np.zeros(length, np.int64)
        c[0] = rng.integers(n_classes)
        for t in range(1, length):
            c[t] = c[t - 1] if rng.random() < p_stay else rng.integers(n_classes)
        obs = {}
        for m, k in enumerate(keys):
            cls = np.where(st == m % 3, c, rng.integers(n_classes, size=length))
            x = protos[m, cls] + noise * rng.standard_normal((length, dim)) + cue * cues[st]
            obs[k] = x.astype(np.float32)
        actions = np.eye(n_classes, dtype=np.float32)[c]
        episodes.append(Episode(obs=obs, actions=actions, rewards=np.zeros(length, np.float32),
                                dones=np.eye(1, length, length - 1, dtype=np.uint8)[0], task="synthetic"))
        stages.append(st)
    return episodes, stages


def write_synthetic(path: str | Path, n: int, seed: int = 0, **kw) -> Path:
    """Synthetic episodes as an HDF5 episode file with the per-step ``stage`` dataset."""
    from sim.multisensory_expert import STAGE_DATASET

    episodes, stages = synthetic_episodes(n, seed, **kw)
    ep = episodes[0]
    spec = Spec.of([Feature(k, v.shape[1:], "float32") for k, v in ep.obs.items()] +
                   [Feature(K.ACTION, ep.actions.shape[1:], "float32")])
    path = Path(path)
    if path.exists():
        path.unlink()
    with EpisodeWriter(path, features=spec, env_args={"env_name": "synthetic"}) as w:
        for e, s in zip(episodes, stages):
            name = w.add(e)
            w.data[name].create_dataset(STAGE_DATASET, data=s)
    return path
