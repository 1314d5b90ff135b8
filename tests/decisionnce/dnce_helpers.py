"""Test helpers: tiny CLIP configs and synthetic trajectory files (no downloads, CPU only)."""

import numpy as np
import torch

from policies.common.clip import CLIPConfig
from policies.decisionnce.configuration_decisionnce import EncoderConfig
from policystack import keys as K
from policystack.dataset import Episode, EpisodeWriter
from policystack.spec import Feature, Spec

IMG = K.image_key("corner2")


def tiny_clip(res: int = 32, D: int = 32) -> CLIPConfig:
    return CLIPConfig(embed_dim=D, image_resolution=res, vision_layers=(1, 1, 1, 1), vision_width=8,
                      context_length=12, vocab_size=256, transformer_width=64, transformer_heads=1,
                      transformer_layers=1)


def synthetic_world(n_tasks: int, n_eps: int, T: int = 12, res: int = 32, latent: int = 8, seed: int = 0,
                    camera_seed: int = 123):
    """Instruction k <-> latent direction d_k; x_t = x_0 + (t/T) d_k + noise, seen through a fixed
    random linear 'camera' as uint8 images (spec §4.2 synthetic world)."""
    cam = np.random.default_rng(camera_seed)
    # a spatially smooth camera (each latent axis paints a low-frequency pattern), so crops keep meaning
    coarse = torch.from_numpy(cam.normal(size=(latent, 3, 4, 4))).float()
    W = torch.nn.functional.interpolate(coarse, size=(res, res), mode="bilinear", align_corners=False)
    W = W.permute(0, 2, 3, 1).reshape(latent, -1).T.numpy() / np.sqrt(latent)
    dirs = np.linalg.qr(cam.normal(size=(latent, latent)))[0][:, :n_tasks].T * 3.0
    rng = np.random.default_rng(seed)
    groups = {}
    for k in range(n_tasks):
        eps = []
        for _ in range(n_eps):
            x0 = rng.normal(size=latent) * 0.3
            ts = np.arange(T)[:, None] / (T - 1)
            x = x0 + ts * dirs[k] + rng.normal(size=(T, latent)) * 0.005
            img = np.clip(0.5 + 0.25 * (x @ W.T), 0, 1).reshape(T, res, res, 3)
            img = (img * 255).astype(np.uint8)
            acts = np.zeros((T, 4), np.float32)
            eps.append(Episode(obs={IMG: img, K.STATE: x.astype(np.float32)}, actions=acts,
                               rewards=np.zeros(T, np.float32), dones=np.eye(1, T, T - 1, dtype=np.uint8)[0],
                               task=f"task number {k} goes {['left', 'right', 'up', 'down', 'in', 'out', 'round', 'back'][k % 8]}"))
        groups[eps[0].task] = eps
    return groups


def write_groups(groups, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for i, (task, eps) in enumerate(sorted(groups.items())):
        ep = eps[0]
        feats = Spec.of([Feature(IMG, ep.obs[IMG].shape[1:], "uint8"), Feature(K.STATE, ep.obs[K.STATE].shape[1:], "float32"),
                         Feature(K.TASK, (), "str"), Feature(K.ACTION, (4,), "float32")])
        with EpisodeWriter(folder / f"task{i}.hdf5", features=feats, language=task) as w:
            for e in eps:
                w.add(e)
    return folder
