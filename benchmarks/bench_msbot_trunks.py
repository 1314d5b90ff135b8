"""What MS-Bot's reference encoders would cost here: fwd+bwd time per frame of a ResNet-18 trunk at the
reference's 96x128 input against the small CPU trunk the sim experiment uses (64x64), and the training
time each implies for the session-9 experiment (160 demos x ~26 steps, 40 epochs, 3 modalities).

    .venv/bin/python benchmarks/bench_msbot_trunks.py [--threads 2] [--batch 36]

ResNet-18 is ``policies.common.resnet.ResNet18Trunk`` (``policy.tokenizer.trunk=resnet18``) with random weights;
the reference starts all three trunks from ImageNet weights, which cannot be downloaded here.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from policies.msbot.tokens import FrameTrunk
from policies.common.resnet import ResNet18Trunk


def ms_per_frame(model: nn.Module, shape: tuple[int, ...], batch: int, iters: int) -> float:
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.randn(batch, *shape)
    times = []
    for _ in range(iters + 1):  # the first iteration warms up allocators
        t = time.perf_counter()
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return 1e3 * min(times[1:]) / batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=36, help="frames per step (2 samples x 3 modalities x 6 frames)")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--demos", type=int, default=160)
    ap.add_argument("--steps", type=int, default=26, help="control steps per demo")
    ap.add_argument("--epochs", type=int, default=40)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    small = ms_per_frame(FrameTrunk(3, 64, 64, 64), (3, 64, 64), a.batch, a.iters)
    big = ms_per_frame(ResNet18Trunk(3, 128), (3, 96, 128), a.batch, a.iters)
    once = a.demos * a.steps * 3 * a.epochs  # each frame encoded once per batch (our trainer)
    per_sample = a.demos * a.steps * 18 * a.epochs  # 6 frames x 3 modalities per sample (the reference)
    print(f"torch {torch.__version__}, {a.threads} threads, batch {a.batch} frames, fwd+bwd+Adam")
    print(f"{'trunk':34s} {'ms/frame':>9s} {'ratio':>6s} {'h, once/frame':>14s} {'h, per sample':>14s}")
    for name, ms in (("CPU trunk (CoordConv, 64x64)", small), ("ResNet-18 (96x128, reference)", big)):
        print(f"{name:34s} {ms:9.2f} {ms / small:6.1f} {once * ms / 3.6e6:14.2f} {per_sample * ms / 3.6e6:14.2f}")
    print(f"one seed x one method, {a.demos} demos x {a.steps} steps, {a.epochs} epochs, encoders only")


if __name__ == "__main__":
    main()
