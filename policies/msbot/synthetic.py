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


def ogm_two_modality_toy(method: str, seed: int, steps: int = 1000, n_classes: int = 8, dim: int = 32,
                         alpha: float = 0.5) -> dict:
    """Spec §6.3's OGM toy: modality a is dominant (prototypes x1.0, noise 0.5), b weak (x0.4, noise 1.0);
    MLP encoders, concat -> linear head, SGD 0.05, batch 64. Returns the weak modality's carved-head
    test accuracy, the mean OGM coefficient of a, and the mean |grad a| / |grad b| of the first layers."""
    import torch
    import torch.nn.functional as F

    from policies.common.balance import apply_ogm, carve_unimodal_logits, ogm_coefficients, true_class_scores

    K, D = n_classes, dim
    g = torch.Generator().manual_seed(100 + seed)
    Pa, Pb = torch.randn(K, D, generator=g), torch.randn(K, D, generator=g)

    def sample(n):
        y = torch.randint(K, (n,), generator=g)
        return Pa[y] + 0.5 * torch.randn(n, D, generator=g), 0.4 * Pb[y] + torch.randn(n, D, generator=g), y

    torch.manual_seed(seed)
    enc = {m: torch.nn.Sequential(torch.nn.Linear(D, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU())
           for m in "ab"}
    head = torch.nn.Linear(64, K)
    opt = torch.optim.SGD([p for e in enc.values() for p in e.parameters()] + list(head.parameters()), lr=0.05)
    ks, ratio = [], []
    for _ in range(steps):
        xa, xb, y = sample(64)
        fa, fb = enc["a"](xa), enc["b"](xb)
        loss = F.cross_entropy(head(torch.cat([fa, fb], 1)), y)
        opt.zero_grad()
        loss.backward()
        if method != "none":
            uni = carve_unimodal_logits(head.weight, head.bias, {"a": fa.detach(), "b": fb.detach()}, [32, 32])
            k = ogm_coefficients(true_class_scores(uni, y), alpha)
            ks.append(k["a"])
            apply_ogm({m: list(e.parameters()) for m, e in enc.items()}, k, ge=method == "ogm_ge")
        ratio.append(float(enc["a"][0].weight.grad.norm() / enc["b"][0].weight.grad.norm()))
        opt.step()
    xa, xb, y = sample(4000)
    with torch.no_grad():
        uni = carve_unimodal_logits(head.weight, head.bias, {"a": enc["a"](xa), "b": enc["b"](xb)}, [32, 32])
    return {"weak_acc": float((uni["b"].argmax(1) == y).float().mean()),
            "k_dominant": float(np.mean(ks)) if ks else 1.0, "grad_ratio": float(np.mean(ratio))}
