"""Shared DI² test helpers (a uniquely named module, so `pytest tests/di2 tests/<other>` never
resolves `conftest` to another area's file): constants, tiny configs, the synthetic toy data."""

from __future__ import annotations

import numpy as np

CAMERAS = ("corner2", "topview")
TASKS = ("button-press-topdown-v3", "drawer-close-v3")
IMAGE_SIZE = 32


def tiny_policy_config(**kw):
    from policies.di2 import DI2Config
    base = dict(cameras=CAMERAS, text_encoder="hash", window=3, dim=32, n_tokens=8, patch_grid=4,
                encoder_channels=8, resampler_depth=1, heads=2, fusion_depth=1, n_query_tokens=2,
                lstm_hidden=32, lstm_layers=1, codebook_size=32, dcm_depth=1)
    base.update(kw)
    return DI2Config(**base)


def tiny_overrides() -> list[str]:
    """``policy.<field>=<value>`` CLI overrides that reproduce ``tiny_policy_config()``."""
    cfg = tiny_policy_config()
    names = ("cameras", "text_encoder", "window", "dim", "n_tokens", "patch_grid", "encoder_channels",
             "resampler_depth", "heads", "fusion_depth", "n_query_tokens", "lstm_hidden", "lstm_layers",
             "codebook_size", "dcm_depth")
    out = []
    for n in names:
        v = getattr(cfg, n)
        out.append(f"policy.{n}={','.join(v) if isinstance(v, tuple) else v}")
    return out


def write_toy_blocks(path, n_episodes: int = 12, steps: int = 30, size: int = IMAGE_SIZE, seed: int = 0) -> str:
    """The spec's synthetic toy: a coloured block on a plane 2 m away, its colour encoding its height,
    so depth is a (learnable) function of RGB; every frame is a new random block."""
    from policystack import keys as K
    from policystack.dataset import Episode, EpisodeWriter
    rng = np.random.default_rng(seed)
    with EpisodeWriter(path, language="stack the blocks") as w:
        for _ in range(n_episodes):
            obs = {}
            for cam in CAMERAS:
                rgb = np.full((steps, size, size, 3), 60, np.uint8)
                depth = np.full((steps, size, size), 2.0, np.float32)
                for t in range(steps):
                    h = rng.uniform(0.1, 0.9)
                    s = rng.integers(size // 3, size // 2 + 2)
                    y, x = rng.integers(0, size - s, 2)
                    rgb[t, y:y + s, x:x + s] = (int(255 * h), 255 - int(255 * h), 128)
                    depth[t, y:y + s, x:x + s] = 2.0 - h
                obs[K.image_key(cam)], obs[K.depth_key(cam)] = rgb, depth
            w.add(Episode(obs=obs, actions=rng.uniform(-1, 1, (steps, 4)).astype(np.float32),
                          rewards=np.zeros(steps, np.float32), dones=np.eye(1, steps, steps - 1, dtype=np.uint8)[0],
                          task="stack the blocks"))
    return str(path)


def stage_weights(run, stage) -> dict:
    """The weights a finished stage of a DI² run dir saved."""
    from policystack.checkpoint import WEIGHTS_NAME, load_weights
    return load_weights(run / "stages" / stage / "pretrained" / WEIGHTS_NAME)


def changed_keys(a: dict, b: dict) -> set[str]:
    """Names of the tensors that differ between two state dicts."""
    import torch
    return {k for k in a if not torch.equal(a[k], b[k])}
