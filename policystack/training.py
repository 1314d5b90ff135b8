"""Generic offline training: any registered policy, HDF5 episodes, atomic checkpoints, exact resume.

Layout of a run directory::

    <output_dir>/config.json                      the full TrainConfig (policy config inside)
    <output_dir>/metrics.jsonl                    one line per logged step
    <output_dir>/loss.png                         training curve
    <output_dir>/checkpoints/<step>/pretrained/   policy (weights + normaliser + config)
    <output_dir>/checkpoints/<step>/train_state.pt  optimiser, step, RNG states
    <output_dir>/checkpoints/last -> newest step (a directory copy, swapped atomically)

Batches are drawn with replacement from a seeded generator whose state is checkpointed, so
``resume=true`` continues exactly where an interrupted run stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from policystack import config as cfgmod
from policystack import keys as K
from policystack.checkpoint import atomic_directory, atomic_torch_save, atomic_write_text, load_train_state
from policystack.dataset import compute_stats, features_of, read_episodes
from policystack.errors import CheckpointError, ConfigError, DatasetError
from policystack.train_data import ChunkDataset
from policies.base import Policy, PolicyConfig, make_policy

log = logging.getLogger(__name__)


def _default_policy() -> PolicyConfig:
    return cfgmod.config_class("policy", "bc")()


@dataclass
class TrainConfig:
    dataset: str = field(default="", metadata={"help": "HDF5 episode file(s), comma-separated"})
    policy: PolicyConfig = field(default_factory=_default_policy,
                                 metadata={"registry": "policy", "help": "policy config (policy.type=...)"})
    output_dir: str = field(default="runs/train", metadata={"help": "run directory"})
    steps: int = field(default=5000, metadata={"help": "optimiser steps"})
    batch_size: int = 64
    seed: int = 0
    log_every: int = 100
    save_every: int = field(default=1000, metadata={"help": "checkpoint period in steps"})
    keep_checkpoints: int = field(default=2, metadata={"help": "step checkpoints kept besides 'last'"})
    max_episodes: int | None = field(default=None, metadata={"help": "use only the first N episodes per file"})
    resume: bool = field(default=False, metadata={"help": "continue from <output_dir>/checkpoints/last"})
    device: str = "cpu"
    num_threads: int = field(default=1, metadata={"help": "torch threads (0: torch default; 1 is fastest for small models on 2 cores)"})
    grad_clip: float = 10.0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("steps and batch_size must be >= 1")
        if self.save_every < 1 or self.log_every < 1:
            raise ConfigError("save_every and log_every must be >= 1")


def load_training_episodes(cfg: TrainConfig, keys: list[str] | None = None):
    paths = [p.strip() for p in cfg.dataset.split(",") if p.strip()]
    if not paths:
        raise DatasetError("no dataset given: set dataset=<file.hdf5> (make one with `policystack demos`)")
    episodes = []
    for p in paths:
        episodes += read_episodes(p, keys=keys, limit=cfg.max_episodes)
    return episodes


def _rng_state(gen: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "sampler": gen.get_state()}


def _set_rng_state(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    gen.set_state(state["sampler"])


def _plot_loss(metrics: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not metrics:
        return
    steps = [m["step"] for m in metrics]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [m["loss"] for m in metrics], label="train loss")
    ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_yscale("log"), ax.grid(alpha=0.3)
    ax.set_title(path.parent.name)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def save_checkpoint(out: Path, step: int, policy: Policy, optim: torch.optim.Optimizer,
                    gen: torch.Generator, keep: int) -> Path:
    ckpts = out / "checkpoints"
    target = ckpts / f"{step:07d}"
    with atomic_directory(target) as tmp:
        policy.save_pretrained(tmp / "pretrained")
        atomic_torch_save({"step": step, "optimizer": optim.state_dict(), "rng": _rng_state(gen)},
                          tmp / "train_state.pt")
    with atomic_directory(ckpts / "last") as tmp:
        shutil.copytree(target, tmp, dirs_exist_ok=True)
    old = sorted(p for p in ckpts.iterdir() if p.name.isdigit())[:-keep] if keep > 0 else []
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return target


def train(cfg: TrainConfig) -> Path:
    """Train ``cfg.policy`` on ``cfg.dataset``; returns the run directory."""
    out = Path(cfg.output_dir)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    last = out / "checkpoints" / "last"
    if not cfg.resume and last.exists():
        raise ConfigError(f"{out} already holds a run; pass resume=true to continue it or choose another output_dir")
    episodes = load_training_episodes(cfg)
    features = features_of(episodes)
    if K.ACTION not in features:
        raise DatasetError("dataset has no actions")
    torch.manual_seed(cfg.seed), np.random.seed(cfg.seed), random.seed(cfg.seed)
    policy = make_policy(cfg.policy, features=features)
    pcfg = policy.config
    in_keys = list(pcfg.input_spec.keys())
    features.check_satisfies(pcfg.input_spec, who=f"{policy.name} policy", source="dataset")
    policy.set_stats(compute_stats(episodes, [k for k in in_keys if k != K.TASK] + [K.ACTION]))
    policy.to(cfg.device).train()
    optim = policy.optimizer()
    gen = torch.Generator().manual_seed(cfg.seed)
    dataset = ChunkDataset(episodes, in_keys, pcfg.n_obs_steps, pcfg.chunk_size)
    start = 0
    metrics: list[dict] = []
    if cfg.resume and last.exists():
        state = load_train_state(last / "train_state.pt")
        loaded = type(policy).from_pretrained(last / "pretrained")
        policy.load_state_dict(loaded.state_dict())
        policy.train()
        optim.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"], gen)
        start = int(state["step"])
        mpath = out / "metrics.jsonl"
        if mpath.exists():
            metrics = [json.loads(line) for line in mpath.read_text().splitlines() if line.strip()]
            metrics = [m for m in metrics if m["step"] <= start]
        log.info("resumed %s at step %d", out, start)
    elif cfg.resume:
        log.info("resume requested but %s has no checkpoint; starting fresh", out)
    out.mkdir(parents=True, exist_ok=True)
    full = dataclasses.replace(cfg, policy=pcfg)
    cfgmod.save_json(full, out / "config.json")
    log.info("training %s on %d episodes (%d samples), inputs %s", policy.name, len(episodes), len(dataset), in_keys)

    t0 = time.time()
    window: list[float] = []
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"train {policy.name}",
               dynamic_ncols=True, disable=None)
    for step in bar:
        idx = torch.randint(len(dataset), (cfg.batch_size,), generator=gen).tolist()
        batch = dataset.get_batch(idx)
        batch = {k: v.to(cfg.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        loss, logs = policy(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate")
        optim.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(policy.optim_params(), cfg.grad_clip)
        optim.step()
        window.append(float(loss.detach()))
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            m = {"step": done, "loss": float(np.mean(window)), "time_s": round(time.time() - t0, 2),
                 **{k: v for k, v in logs.items() if k != "loss"}}
            metrics.append(m)
            window = []
            bar.set_postfix(loss=f"{m['loss']:.4f}")
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(m) + "\n")
        if done % cfg.save_every == 0 or done == cfg.steps:
            save_checkpoint(out, done, policy, optim, gen, cfg.keep_checkpoints)
            _plot_loss(metrics, out / "loss.png")
    bar.close()
    # metrics.jsonl is append-only; rewrite it without lines a crash may have left past the resume point
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics))
    log.info("done in %.1f s: %s", time.time() - t0, out / "checkpoints" / "last" / "pretrained")
    return out


def pretrained_path(run_dir: str | Path) -> Path:
    p = Path(run_dir) / "checkpoints" / "last" / "pretrained"
    if not p.exists():
        raise CheckpointError(f"{run_dir} has no checkpoints/last/pretrained")
    return p
