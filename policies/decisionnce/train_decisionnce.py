"""DecisionNCE pretraining loop: single process, or DDP under ``torchrun`` (gloo on CPU, nccl on GPU).

Negatives are the other items of each process's own batch (no all-gather), as in the release.
Checkpoints are atomic (``<out>/checkpoints/last/{encoder/, train_state.pt}``) and a run resumes
from ``last`` when asked. Adam with coupled L2 weight decay on weights only (biases and norm
parameters excluded, as timm's ``create_optimizer`` does), optional linear warm-up, constant lr.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from policies.decisionnce.configuration_decisionnce import PretrainConfig
from policies.decisionnce.data import (SegmentDataset, UniqueInstructionBatchSampler, collate_segments,
                                       load_task_episodes)
from policies.decisionnce.encoder import DualEncoder, load_encoder
from policies.decisionnce.losses import decisionnce_loss
from policystack import config as cfgmod
from policystack.checkpoint import atomic_directory, atomic_torch_save, atomic_write_text, load_train_state
from policystack.errors import CheckpointError

log = logging.getLogger(__name__)


def param_groups(model: nn.Module, weight_decay: float, lr: float, special: dict[int, float] | None = None
                 ) -> list[dict]:
    """Decay / no-decay groups, split again by learning rate (``special``: id(param) -> lr). Each group
    keeps its ``base_lr`` so that the warm-up scales every group from its own rate."""
    special = special or {}
    groups: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (p.ndim <= 1 or name.endswith(".bias"))
        groups.setdefault((decay, special.get(id(p), lr)), []).append(p)
    # decay groups first, as before per-group rates existed, so older optimiser states still load
    return [{"params": groups[key], "weight_decay": weight_decay if key[0] else 0.0, "lr": key[1], "base_lr": key[1]}
            for key in sorted(groups, key=lambda k: (not k[0], k[1] != lr))]


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def build_encoder(cfg: PretrainConfig) -> DualEncoder:
    if cfg.init_from:
        enc = load_encoder(cfg.init_from, cfg.encoder)
        enc.cfg = cfg.encoder if not Path(cfg.init_from).is_dir() else enc.cfg
        return enc.train()
    return DualEncoder(cfg.encoder)


def pretrain(cfg: PretrainConfig, resume: bool = False) -> Path:
    """Train the dual encoder; returns the run directory (encoder at ``checkpoints/last/encoder``)."""
    torch.set_num_threads(cfg.num_threads)
    world, rank, local_rank = _dist_info()
    distributed = world > 1
    device = torch.device("cpu")
    if distributed:
        import torch.distributed as dist
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend)
        if backend == "nccl":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    out = Path(cfg.out_dir)
    last = out / "checkpoints" / "last"

    groups = load_task_episodes(cfg.data, [cfg.image_key], exclude=(*cfg.holdout, *cfg.exclude),
                                limit=cfg.episodes_per_task, strict=True)
    enc = build_encoder(cfg).to(device)
    if cfg.freeze_text:
        for p in enc.text_parameters():
            p.requires_grad_(False)
    ds = SegmentDataset(groups, cfg.image_key, cfg.num_frames, enc.resolution, cfg.crop_scale, cfg.brightness,
                        augment=True, seed=cfg.seed * 1000 + rank)
    sampler = UniqueInstructionBatchSampler(len(ds), cfg.batch_size, seed=cfg.seed, rank=rank, world_size=world)
    text_lr = {id(p): cfg.text_lr for p in enc.pretrained_text_parameters()} if cfg.text_lr else None
    opt = torch.optim.Adam(param_groups(enc, cfg.weight_decay, cfg.lr, text_lr), lr=cfg.lr, eps=cfg.adam_eps)
    step, epoch, history = 0, 0, []
    if resume and (last / "train_state.pt").is_file():
        state = load_train_state(last / "train_state.pt")
        loaded = DualEncoder.load(last / "encoder")
        enc.load_state_dict(loaded.state_dict())
        opt.load_state_dict(state["optimizer"])
        for g in opt.param_groups:      # states saved before per-group rates: one rate, cfg.lr
            g.setdefault("base_lr", cfg.lr)
        step, epoch, history = state["step"], state["epoch"], state["history"]
        ds.rng = np.random.default_rng([cfg.seed * 1000 + rank, step])
        log.info("resumed from %s at step %d", last, step)
    elif resume:
        raise CheckpointError(f"--resume: no checkpoint at {last}")
    model: nn.Module = enc
    if distributed:
        model = nn.parallel.DistributedDataParallel(enc, device_ids=[local_rank] if device.type == "cuda" else None)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        cfgmod.save_json(cfg, out / "pretrain_config.json")
        log.info("%d training instructions, %d episodes; %d batches/epoch/process; logit scale %.2f", len(ds),
                 sum(len(g) for g in groups.values()), len(sampler), cfg.scale)

    def save() -> None:
        if rank != 0:
            return
        with atomic_directory(last) as tmp:
            enc.save(tmp / "encoder")
            atomic_torch_save({"optimizer": opt.state_dict(), "step": step, "epoch": epoch,
                               "history": history}, tmp / "train_state.pt")
        atomic_write_text(out / "history.json", json.dumps(history))

    from tqdm import tqdm
    bar = tqdm(total=cfg.steps, initial=step, disable=rank != 0, desc="decisionnce", mininterval=5)
    t0 = time.time()
    enc.train()
    while step < cfg.steps:
        sampler.set_epoch(epoch)
        for idx in sampler:
            if step >= cfg.steps:
                break
            batch = collate_segments([ds[i] for i in idx])
            if cfg.warmup_steps:
                for g in opt.param_groups:
                    g["lr"] = g["base_lr"] * min(1.0, (step + 1) / cfg.warmup_steps)
            v, u = model(batch["frames"].to(device), batch["task"])
            loss, logs = decisionnce_loss(v, u, cfg.variant, cfg.scale, cfg.reverse_negatives)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                logs.update(step=step, epoch=epoch, time=time.time() - t0)
                history.append(logs)
                bar.set_postfix(loss=f"{logs['loss']:.3f}", acc=f"{logs['acc']:.2f}")
            if step % cfg.save_every == 0:
                save()
        epoch += 1
    bar.close()
    save()
    if distributed:
        import torch.distributed as dist
        dist.barrier()
    if rank == 0:
        plot_history(history, out / "loss.png")
    return out


def plot_history(history: list[dict], path: Path) -> None:
    if not history:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    steps = [h["step"] for h in history]
    ax[0].plot(steps, [h["loss"] for h in history])
    ax[0].set_title("DecisionNCE loss")
    ax[1].plot(steps, [h["acc"] for h in history])
    ax[1].set_title("in-batch matching accuracy")
    for a in ax:
        a.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
