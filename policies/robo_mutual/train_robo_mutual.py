"""Robo-MUTUAL policy training (spec §2.8): goal embeddings from the frozen DecisionNCE encoder,
modality means fitted on *other* data, Adam 3e-4 with linear warm-up (from 0.1×) then cosine to 1e-6.

Each training sample carries its own demo's goal in the training modality: ψ(instruction) for text,
φ(o_last) − φ(o_0) of that demo (agent view) for image. The goal bank stored in the policy holds, per
task, ψ(l) and the image goal of one training demo chosen with ``image_goal_seed`` (used when acting).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from policies.base import make_policy
from policies.decisionnce.data import load_task_episodes
from policies.decisionnce.encoder import DualEncoder
from policies.decisionnce.rewards import embed_frames
from policies.robo_mutual.configuration_robo_mutual import RoboMutualConfig
from policies.robo_mutual.modeling_robo_mutual import GOAL_EMBEDDING, RoboMutualPolicy
from policystack import config as cfgmod
from policystack import keys as K
from policystack.checkpoint import atomic_directory, atomic_torch_save, load_train_state
from policystack.config import register_config
from policystack.dataset import Episode, compute_stats, features_of
from policystack.errors import CheckpointError, ConfigError, DatasetError
from policystack.train_data import ChunkDataset

log = logging.getLogger(__name__)


@register_config("train", "robo_mutual")
@dataclass
class MutualTrainConfig:
    data: tuple[str, ...] = ()               # the policy's demos (HDF5 files / folders)
    tasks: tuple[str, ...] | None = None     # task names or instructions to use from ``data`` (None = all)
    gap_data: tuple[str, ...] = ()           # other demos to fit the modality means on (never the policy's)
    encoder_path: str = ""                   # a saved DecisionNCE encoder directory
    goal_image_key: str = "observation.images.corner2"
    image_keys: tuple[str, ...] = ("observation.images.corner2", "observation.images.gripperPOV")
    policy: RoboMutualConfig = field(default_factory=RoboMutualConfig)
    steps: int = 1500                        # paper: 50k (text goals) / 100k (image goals)
    batch_size: int = 64
    image_goal_seed: int = 0
    seed: int = 0
    out_dir: str = "runs/robo_mutual"
    log_every: int = 50
    save_every: int = 500
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1:
            raise ConfigError("steps must be >= 0 and batch_size >= 1")


@torch.no_grad()
def goal_embeddings(encoder: DualEncoder, groups: Mapping[str, Sequence[Episode]], image_key: str
                    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """text[instruction] = ψ(l) (D,); image[instruction] = (n_demos, D) rows φ(o_last) − φ(o_0)."""
    encoder.eval()
    insts = sorted(groups)
    U = encoder.encode_text(insts)
    text = {t: U[i].cpu() for i, t in enumerate(insts)}
    image = {}
    for t in insts:
        ends = np.stack([np.stack([ep.obs[image_key][0], ep.obs[image_key][-1]]) for ep in groups[t]])
        f = embed_frames(encoder, ends.reshape(-1, *ends.shape[2:])).view(len(ends), 2, -1).cpu()
        image[t] = f[:, 1] - f[:, 0]
    return text, image


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LinearLR warm-up from 0.1× over ``warmup`` steps, then cosine from 1× down to ``min_ratio``."""
    if step < warmup:
        return 0.1 + 0.9 * step / max(1, warmup)
    p = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


class _GoalChunks(torch.utils.data.Dataset):
    def __init__(self, base: ChunkDataset, goals: torch.Tensor):
        self.base, self.goals = base, goals

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        item = self.base[i]
        item[GOAL_EMBEDDING] = self.goals[int(self.base.index[i][0])]
        return item


def prepare(cfg: MutualTrainConfig) -> tuple[RoboMutualPolicy, list[Episode], torch.Tensor, dict]:
    """Load demos, compute goals with the frozen encoder, fit Collapse means on ``gap_data``, build the policy."""
    if not cfg.encoder_path:
        raise ConfigError("encoder_path must name a DecisionNCE encoder directory")
    encoder = DualEncoder.load(cfg.encoder_path)
    keys = list(dict.fromkeys(list(cfg.image_keys) + [cfg.goal_image_key, K.STATE]))
    groups = load_task_episodes(cfg.data, keys, include=cfg.tasks)
    if not groups:
        raise DatasetError(f"no episodes of tasks {cfg.tasks} in {cfg.data}")
    insts = sorted(groups)
    text, image = goal_embeddings(encoder, groups, cfg.goal_image_key)
    names = {groups[t][0].attrs.get("task_name") for t in insts}
    gap_groups = load_task_episodes(cfg.gap_data, [cfg.goal_image_key], exclude=tuple(insts) + tuple(names)) \
        if cfg.gap_data else {}
    overlap = set(gap_groups) & set(insts)
    if overlap:
        raise DatasetError(f"gap_data must not contain the policy's tasks: {sorted(overlap)}")
    episodes, goals = [], []
    for t in insts:
        for j, ep in enumerate(groups[t]):
            episodes.append(ep)
            goals.append(text[t] if cfg.policy.train_goal_modality == "text" else image[t][j])
    rng = np.random.default_rng(cfg.image_goal_seed)
    bank_img = torch.stack([image[t][int(rng.integers(len(image[t])))] for t in insts])
    bank_txt = torch.stack([text[t] for t in insts])
    features = features_of(episodes)
    pcfg = cfgmod.from_dict(RoboMutualConfig, {**cfgmod.to_dict(cfg.policy), "task_names": list(insts),
                                               "goal_dim": int(bank_txt.shape[1]), "image_keys": list(cfg.image_keys)})
    stats = compute_stats(episodes, [K.STATE, K.ACTION])
    policy = make_policy(pcfg, features, stats)
    policy.set_goal_bank(bank_txt, bank_img)
    info = {"tasks": insts, "n_episodes": len(episodes)}
    if gap_groups:
        gt, gi = goal_embeddings(encoder, gap_groups, cfg.goal_image_key)
        policy.gap.fit(torch.stack(list(gt.values())), torch.cat(list(gi.values())))
        info["gap_tasks"] = len(gt)
    elif cfg.policy.collapse or cfg.policy.delete_k:
        raise ConfigError("Collapse needs gap_data (other demos) to fit the modality means on")
    return policy, episodes, torch.stack(goals), info


def train(cfg: MutualTrainConfig, resume: bool = False) -> Path:
    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    last = out / "checkpoints" / "last"
    policy, episodes, goals, info = prepare(cfg)
    pc = policy.config
    ds = _GoalChunks(ChunkDataset(episodes, list(cfg.image_keys) + [K.STATE], 1, pc.chunk_size), goals)
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, drop_last=True, generator=gen)
    opt = torch.optim.Adam(policy.optim_params(), lr=pc.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, pc.warmup_steps, cfg.steps, pc.min_lr / pc.lr))
    step, history = 0, []
    if resume:
        if not (last / "train_state.pt").is_file():
            raise CheckpointError(f"--resume: no checkpoint at {last}")
        state = load_train_state(last / "train_state.pt")
        loaded = RoboMutualPolicy.from_pretrained(last / "pretrained")
        policy.load_state_dict(loaded.state_dict())
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, history = state["step"], state["history"]
        torch.manual_seed(cfg.seed + step)
    out.mkdir(parents=True, exist_ok=True)
    cfgmod.save_json(cfg, out / "train_config.json")
    log.info("robo_mutual: %d tasks, %d demos, %d samples; train goals=%s collapse=%s corrupt=%s head=%s",
             len(info["tasks"]), info["n_episodes"], len(ds), pc.train_goal_modality, pc.collapse, pc.corrupt, pc.head)

    def save() -> None:
        with atomic_directory(last) as tmp:
            policy.save_pretrained(tmp / "pretrained")
            atomic_torch_save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
                               "history": history}, tmp / "train_state.pt")

    from tqdm import tqdm
    bar = tqdm(total=cfg.steps, initial=step, desc="robo_mutual", mininterval=10)
    policy.train()
    t0 = time.time()
    while step < cfg.steps:
        for batch in loader:
            if step >= cfg.steps:
                break
            loss, logs = policy(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                history.append({"step": step, "loss": logs["loss"], "lr": sched.get_last_lr()[0],
                                "time": time.time() - t0})
                bar.set_postfix(loss=f"{logs['loss']:.3f}")
            if step % cfg.save_every == 0:
                save()
    bar.close()
    save()
    (out / "history.json").write_text(json.dumps(history))
    return out
