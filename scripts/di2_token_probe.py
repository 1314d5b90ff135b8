#!/usr/bin/env python
"""How much frame-specific information DI²'s tokens carry, and how much attention depth gets.

For a run's RGB-D stage, on its held-out windows: the across-frame variance of the encoder features
and of the resampled tokens, as a fraction of their mean square (about 0 = the same tokens for every
frame), for RGB and depth per camera; and the fusion's cross-attention mass per token stream.

    .venv/bin/python scripts/di2_token_probe.py outputs/di2_libero/exp_pretrain/seed_0 \
        outputs/di2_libero/data/libero_object_0-1_64px_10/libero_object.hdf5
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


def relative_variance(chunks: list[torch.Tensor]) -> float:
    x = torch.cat(chunks)
    return float(x.var(0).mean() / x.pow(2).mean())


def probe(run: str, data: list[str], stage: str = "rgbd", batches: int = 8, val_every: int = 5) -> dict:
    from policies.base import load_policy
    from policies.di2.data import WindowData, load_episodes, split_episodes
    pol = load_policy(f"{run}/stages/{stage}/pretrained").eval()
    cams = pol.config.cameras
    _, val = split_episodes(load_episodes(tuple(data), cams, with_depth=True), val_every)
    windows = WindowData(val, cams, pol.config.window, with_depth=True)
    feats = {f"{kind}_{c}": [] for kind in ("rgb_enc", "depth_enc", "rgb_tok", "depth_tok") for c in cams}
    mass = []
    fusion = pol.fusion

    def record(module, args, kwargs, output):          # forward hook on the fusion's x-attention
        mass.append(output[1])

    hooks = [xa["attn"].register_forward_hook(record, with_kwargs=True) for xa in fusion.xattn]
    for xa in fusion.xattn:                             # ask for the weights the fusion normally skips
        xa["attn"].forward = _with_weights(xa["attn"].forward)
    with torch.no_grad():
        for i, batch in enumerate(windows.iter_eval(32, stride=4)):
            for c, (rgb, depth) in zip(cams, pol._views(batch, with_depth=True, augment=False)):
                feats[f"rgb_enc_{c}"].append(pol.rgb_encoder(rgb))
                feats[f"depth_enc_{c}"].append(pol.depth_image_encoder(depth))
                feats[f"rgb_tok_{c}"].append(pol.rgb_tokens(rgb))
                feats[f"depth_tok_{c}"].append(pol.depth_tokens(depth))
            pol.action_loss(batch, "gt")
            if i + 1 >= batches:
                break
    for h in hooks:
        h.remove()
    n_tok = pol.config.n_tokens
    streams = [f"rgb_{c}" for c in cams] + [f"depth_{c}" for c in cams]
    # mass: (batch, queries, streams * n_tok) per call, layers interleaved
    per_call = np.array([[float(w[..., k * n_tok:(k + 1) * n_tok].sum(-1).mean()) for k in range(len(streams))]
                         for w in mass])
    n_layers = len(fusion.xattn)
    att = {f"layer_{layer}": dict(zip(streams, per_call[layer::n_layers].mean(0).round(3).tolist()))
           for layer in range(n_layers)}
    return {"relative_variance": {k: round(relative_variance(v), 5) for k, v in feats.items()},
            "attention_mass": att}


def _with_weights(forward):
    def call(*args, **kwargs):
        kwargs["need_weights"] = True
        return forward(*args, **kwargs)
    return call


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a DI² run directory (with stages/<stage>/pretrained)")
    p.add_argument("data", nargs="+", help="the run's target HDF5 files (RGB-D)")
    p.add_argument("--stage", default="rgbd")
    p.add_argument("--batches", type=int, default=8)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(json.dumps(probe(args.run, args.data, args.stage, args.batches), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
