"""KOI / ROT training: BC pretraining on the demo(s), then online DrQ-v2 with the OT reward.

``pretrain_bc(cfg, out_dir)`` writes ``demos.npz``, ``pretrained/`` (a loadable KOI policy) and
``bc_eval.json``. ``OnlineTrainer(cfg, run_dir).run()`` fine-tunes it online with the OT reward (KOI's
key-state nu, or uniform nu = ROT), evaluates every ``eval_every_frames`` env frames, checkpoints
atomically (policy + agent + replay episodes on disk) and resumes from ``<run_dir>/checkpoints/last``.
Frames are env steps (agent steps x action_repeat), as DrQ-v2/ROT/KOI count them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from policystack import config as cfgmod
from policystack import keys as K
from policystack.checkpoint import (TRAIN_STATE_NAME, atomic_directory, atomic_torch_save, atomic_write_text,
                                    load_train_state)
from policystack.errors import CheckpointError, ConfigError
from policies.base import make_policy
from policies.koi.agent import AgentConfig, DrQv2Agent
from policies.koi.configuration_koi import KOIConfig
from policies.koi.demos import demos_from_hdf5, generate_demos, load_demos, save_demos
from policies.koi.keystates import NuWeights, compute_key_states, make_semantic_provider, uniform_weighting
from policies.koi.modeling_koi import FrameStack, KOIPolicy
from policies.koi.replay import EpisodeReplay, StoredEpisode, sample_expert, stack_at
from policies.koi.rewards import OTRewarder

log = logging.getLogger(__name__)


@dataclass
class RewardConfig:
    nu: Literal["koi", "uniform"] = "koi"      # uniform = ROT
    semantic: str = "sim"                      # sim | manual | gripper (see keystates.py)
    keyidx: list[int] = field(default_factory=list)   # 1-based, for semantic=manual
    motion: bool = True                        # add Farneback motion key states
    eps: float = 0.01
    iters: int = 100
    cost: Literal["cosine", "euclidean"] = "cosine"
    auto_scale: bool = True
    auto_scale_factor: float = 10.0
    scale: float = 1.0                         # initial scale (overridden by auto-scaling)


@dataclass
class KOITrainConfig:
    task: str = "drawer-close-v3"
    camera: str = "corner2"
    image_size: int = 84
    episode_steps: int = 150                   # agent steps per episode (x action_repeat env steps)
    num_demos: int = 1
    demo_path: str | None = None               # HDF5 episodes instead of generating with the expert
    demo_init_seed: int = 1                    # init-state split of the demos
    demo_require_success: bool = True          # skip expert episodes that do not succeed in episode_steps
    train_init_seed: int = 1000                # + seed: split of the online episodes
    eval_init_seed: int = 0                    # split of the evaluation episodes
    eval_episodes: int = 50
    eval_every_frames: int = 10000
    num_train_frames: int = 510000
    num_seed_frames: int = 12000               # no updates before this (actions still come from BC)
    bc_steps: int = 20000
    bc_batch_size: int = 128
    bc_dir: str | None = None                  # reuse demos + BC weights from `policystack koi bc`
    replay_capacity: int = 150000
    save_every_frames: int = 10000
    seed: int = 2
    num_threads: int = 1
    policy: KOIConfig = field(default_factory=KOIConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        if self.episode_steps < self.agent.nstep + 1:
            raise ConfigError(f"episode_steps={self.episode_steps} must exceed nstep={self.agent.nstep}")
        if min(self.num_demos, self.eval_episodes, self.eval_every_frames, self.image_size) < 1:
            raise ConfigError("num_demos, eval_episodes, eval_every_frames and image_size must be >= 1")
        if self.reward.semantic == "manual" and not self.reward.keyidx:
            raise ConfigError("reward.semantic=manual needs reward.keyidx=[...]")
        if self.reward.nu not in ("koi", "uniform"):
            raise ConfigError(f"reward.nu must be koi or uniform, got {self.reward.nu!r}")

    @property
    def image_key(self) -> str:
        return K.image_key(self.camera)

    @property
    def action_repeat(self) -> int:
        return self.policy.action_repeat


def make_env(cfg: KOITrainConfig, init_seed: int, terminate_on_success: bool):
    import sim
    return sim.make_env(cfg.task, cameras=(cfg.camera,), image_size=cfg.image_size, init_seed=init_seed,
                        max_episode_steps=cfg.episode_steps * cfg.action_repeat,
                        terminate_on_success=terminate_on_success)


def _seed_all(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


# ----- evaluation -------------------------------------------------------------------------------
def evaluate_policy(policy: KOIPolicy, cfg: KOITrainConfig, n_episodes: int | None = None,
                    env: Any = None) -> dict[str, Any]:
    """Deterministic rollouts through ``select_action`` from eval init states 0..n-1; success at any step."""
    own = env is None
    env = env or make_env(cfg, cfg.eval_init_seed, terminate_on_success=True)
    n = n_episodes or cfg.eval_episodes
    results = []
    try:
        for i in range(n):
            obs, _ = env.reset(options={"init_state_index": i})
            policy.reset()
            success, steps = False, 0
            for steps in range(1, cfg.episode_steps * cfg.action_repeat + 1):
                obs, _, term, trunc, info = env.step(policy.select_action(obs))
                success |= bool(info["is_success"])
                if term or trunc:
                    break
            results.append({"init_state_index": i, "success": success, "length": steps})
    finally:
        if own:
            env.close()
    return {"success_rate": float(np.mean([r["success"] for r in results])), "episodes": results}


# ----- demos + BC -------------------------------------------------------------------------------
def prepare_demos(cfg: KOITrainConfig) -> list:
    if cfg.demo_path:
        return demos_from_hdf5(Path(cfg.demo_path), cfg.image_key, cfg.num_demos, cfg.action_repeat)
    env = make_env(cfg, cfg.demo_init_seed, terminate_on_success=False)
    try:
        return generate_demos(env, cfg.num_demos, cfg.episode_steps, cfg.action_repeat, cfg.image_key,
                              require_success=cfg.demo_require_success)
    finally:
        env.close()


def build_policy(cfg: KOITrainConfig) -> KOIPolicy:
    env = make_env(cfg, cfg.eval_init_seed, terminate_on_success=True)
    try:
        feats = env.unwrapped.spec_features
    finally:
        env.close()
    pcfg = dataclasses.replace(cfg.policy, camera=cfg.camera)
    return make_policy(pcfg, feats)


def pretrain_bc(cfg: KOITrainConfig, out_dir: Path, evaluate: bool = True, progress: bool = True):
    """Generate/load demos, train BC (or load it when ``out_dir/pretrained`` exists), evaluate it."""
    from tqdm import tqdm
    out_dir = Path(out_dir)
    torch.set_num_threads(cfg.num_threads)
    demo_file = out_dir / "demos.npz"
    if demo_file.is_file():
        demos = load_demos(demo_file)
    else:
        demos = prepare_demos(cfg)
        save_demos(demos, demo_file)
    if (out_dir / "pretrained" / "model.safetensors").is_file():
        return KOIPolicy.from_pretrained(out_dir / "pretrained"), demos
    _seed_all(cfg.seed)
    policy = build_policy(cfg)
    policy.train()
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.policy.bc_lr)
    rng = np.random.default_rng(cfg.seed)
    t0, logs = time.time(), {}
    bar = tqdm(range(cfg.bc_steps), desc=f"bc {cfg.task}", disable=not progress, mininterval=5)
    for step in bar:
        b = sample_expert(demos, cfg.bc_batch_size, cfg.policy.n_obs_steps, rng)
        loss, logs = policy({policy.image_key: _chw_to_hwc(b["obs"], cfg.policy.n_obs_steps), K.ACTION: b["action"]})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            bar.set_postfix(loss=f"{logs['bc_loss']:.3f}", mse=f"{logs['mse']:.4f}")
    policy.eval()
    policy.save_pretrained(out_dir / "pretrained")
    info = {"bc_steps": cfg.bc_steps, "final": logs, "wall_s": time.time() - t0}
    if evaluate:
        info["eval"] = evaluate_policy(policy, cfg)
        log.info("BC success %.2f", info["eval"]["success_rate"])
    atomic_write_text(out_dir / "bc_eval.json", json.dumps(info, indent=2))
    cfgmod.save_json(cfg, out_dir / "config.json")
    return policy, demos


def _chw_to_hwc(stacks: np.ndarray, n: int) -> np.ndarray:
    """(B, 3n, H, W) -> (B, n, H, W, 3), the layout the policy's forward takes."""
    b, _, h, w = stacks.shape
    return stacks.reshape(b, n, 3, h, w).transpose(0, 1, 3, 4, 2)


# ----- online phase -----------------------------------------------------------------------------
class OnlineTrainer:
    def __init__(self, cfg: KOITrainConfig, run_dir: str | Path, resume: bool = False, progress: bool = True):
        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress
        torch.set_num_threads(cfg.num_threads)
        self.ckpt_dir = self.run_dir / "checkpoints" / "last"
        self.replay_dir = self.run_dir / "replay"
        resuming = resume and (self.ckpt_dir / TRAIN_STATE_NAME).is_file()
        if not resuming and (self.ckpt_dir / TRAIN_STATE_NAME).is_file():
            raise CheckpointError(f"{self.run_dir} already holds a run; pass --resume or use a new run dir")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        cfgmod.save_json(cfg, self.run_dir / "config.json")
        _seed_all(cfg.seed)
        bc_dir = Path(cfg.bc_dir) if cfg.bc_dir else self.run_dir / "bc"
        bc_policy, self.demos = pretrain_bc(cfg, bc_dir, progress=progress)
        self.bc_eval = _read_json(bc_dir / "bc_eval.json").get("eval", {})
        self.policy = KOIPolicy.from_pretrained(self.ckpt_dir / "pretrained") if resuming else bc_policy
        self.agent = DrQv2Agent(self.policy, cfg.agent)
        self.replay = EpisodeReplay(cfg.replay_capacity, cfg.agent.nstep, cfg.agent.gamma, cfg.policy.n_obs_steps)
        self.key_states = [self._key_states(d) for d in self.demos]
        nus = [ks["nu"] for ks in self.key_states]
        r = cfg.reward
        self.rewarder = OTRewarder(nus, r.eps, r.iters, r.scale, r.auto_scale, r.auto_scale_factor, r.cost)
        self.rng = np.random.default_rng(cfg.seed)
        self.step = self.episode = 0
        self.last_refresh = self.last_save = 0
        self.history: list[dict] = []      # eval points
        self.episodes_log: list[dict] = []
        self._expert_feats: tuple[int, list[torch.Tensor]] | None = None
        if resuming:
            self._load()
        else:
            self.policy.train()
            self.agent.reward_encoder.load_state_dict(self.policy.encoder.state_dict())
            self.agent.reward_trunk.load_state_dict(self.policy.actor.trunk.state_dict())

    @property
    def frames(self) -> int:
        return self.step * self.cfg.action_repeat

    def _key_states(self, demo) -> dict:
        if self.cfg.reward.nu == "uniform":
            return {"nu": uniform_weighting(len(demo)), "semantic": [], "motion": []}
        provider = make_semantic_provider(self.cfg.reward.semantic, self.cfg.reward.keyidx)
        ks = compute_key_states(demo, provider, NuWeights(), use_motion=self.cfg.reward.motion)
        return {"nu": ks.nu, **ks.to_dict()}

    def _demo_features(self) -> list[torch.Tensor]:
        if self._expert_feats is None or self._expert_feats[0] != self.agent.reward_version:
            n = self.cfg.policy.n_obs_steps
            feats = [self.agent.reward_features(np.stack([stack_at(d.frames, t, n) for t in range(len(d))]))
                     for d in self.demos]
            self._expert_feats = (self.agent.reward_version, feats)
        return self._expert_feats[1]

    # ----- one episode ----------------------------------------------------------------------------
    def _run_episode(self, env) -> dict:
        cfg = self.cfg
        obs, _ = env.reset(options={"init_state_index": self.episode})
        stack = FrameStack(cfg.policy.n_obs_steps)
        s = stack.reset(obs[cfg.image_key])
        frames = [obs[cfg.image_key]]
        actions = [np.zeros(self.policy.config.action_dim, np.float32)]
        success, logs = False, {}
        for _ in range(cfg.episode_steps):
            a = self.policy.act(s, explore=True)
            env_a = self.policy.to_env_action(torch.as_tensor(a)).numpy()
            for _ in range(cfg.action_repeat):
                obs, _, _, _, info = env.step(env_a)
                success |= bool(info["is_success"])
            s = stack.push(obs[cfg.image_key])
            frames.append(obs[cfg.image_key])
            actions.append(a)
            self.step += 1
            if (self.frames >= cfg.num_seed_frames and self.step % cfg.agent.update_every == 0
                    and len(self.replay) >= cfg.agent.batch_size):
                logs = self.agent.update(self.replay.sample(cfg.agent.batch_size, self.rng))
        frames_arr = np.stack(frames)
        n = cfg.policy.n_obs_steps
        agent_feats = self.agent.reward_features(np.stack([stack_at(frames_arr, t, n) for t in range(len(frames_arr))]))
        res = self.rewarder(agent_feats, self._demo_features())
        ep = StoredEpisode(frames_arr, np.stack(actions).astype(np.float32), res.rewards.astype(np.float32))
        self.replay.add(ep)
        ep.save(self.replay_dir / f"episode_{self.episode:06d}.npz")
        self.episode += 1
        if self.step - self.last_refresh >= cfg.agent.update_target_every:
            self.agent.refresh_reward_networks()
            self.last_refresh = self.step
        rec = {"episode": self.episode, "frames": self.frames, "ot_return": float(res.rewards.sum()),
               "success": success, "demo": res.demo_index, **{k: v for k, v in logs.items()}}
        self.episodes_log.append(rec)
        return rec

    def _evaluate(self) -> None:
        r = evaluate_policy(self.policy, self.cfg)
        self.policy.train()
        self.history.append({"frames": self.frames, "success_rate": r["success_rate"], "wall_s": time.time() - self.t0})
        log.info("eval at %d frames: success %.2f", self.frames, r["success_rate"])
        atomic_write_text(self.run_dir / "eval.json", json.dumps(self.history, indent=2))

    def run(self) -> Path:
        from tqdm import tqdm
        cfg = self.cfg
        self.t0 = time.time() - (self.history[-1]["wall_s"] if self.history else 0.0)
        if not self.history:
            self.history.append({"frames": 0, "success_rate": self.bc_eval.get("success_rate", float("nan")),
                                 "wall_s": 0.0})
        env = make_env(cfg, cfg.train_init_seed + cfg.seed, terminate_on_success=False)
        bar = tqdm(total=cfg.num_train_frames, initial=self.frames, unit="frame", disable=not self.progress,
                   desc=f"{cfg.reward.nu} {cfg.task} s{cfg.seed}", mininterval=10)
        try:
            while self.frames < cfg.num_train_frames:
                before = self.frames
                rec = self._run_episode(env)
                bar.update(self.frames - before)
                bar.set_postfix(ep=self.episode, succ=int(rec["success"]), ot=f"{rec['ot_return']:.1f}",
                                eval=f"{self.history[-1]['success_rate']:.2f}")
                if self.frames // cfg.eval_every_frames > self.history[-1]["frames"] // cfg.eval_every_frames:
                    self._evaluate()
                if self.frames - self.last_save >= cfg.save_every_frames:
                    self.save()
            if self.history[-1]["frames"] != self.frames:
                self._evaluate()
            self.save()
        finally:
            bar.close()
            env.close()
        plot_run(self.history, self.run_dir / "success_vs_frames.png", title=f"{cfg.reward.nu} {cfg.task}")
        return self.run_dir

    # ----- checkpoints ----------------------------------------------------------------------------
    def save(self) -> None:
        state = {"step": self.step, "episode": self.episode, "last_refresh": self.last_refresh,
                 "agent": self.agent.state_dict(), "rewarder": self.rewarder.state_dict(),
                 "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                 "history": self.history, "episodes_log": self.episodes_log}
        with atomic_directory(self.ckpt_dir) as tmp:
            self.policy.save_pretrained(tmp / "pretrained")
            atomic_torch_save(state, tmp / TRAIN_STATE_NAME)
        self.last_save = self.frames
        atomic_write_text(self.run_dir / "episodes.json", json.dumps(self.episodes_log))

    def _load(self) -> None:
        st = load_train_state(self.ckpt_dir / TRAIN_STATE_NAME)
        self.step, self.episode, self.last_refresh = st["step"], st["episode"], st["last_refresh"]
        self.agent.load_state_dict(st["agent"])
        self.rewarder.load_state_dict(st["rewarder"])
        self.rng.bit_generator.state = st["rng"]
        torch.set_rng_state(st["torch_rng"])
        self.history, self.episodes_log = st["history"], st["episodes_log"]
        self.last_save = self.frames
        files = sorted(self.replay_dir.glob("episode_*.npz"))[: self.episode]
        if len(files) < self.episode:
            raise CheckpointError(f"{self.replay_dir} holds {len(files)} episodes, the checkpoint needs {self.episode}")
        kept, total = [], 0
        for f in reversed(files):   # newest first, up to capacity
            if total >= self.cfg.replay_capacity:
                break
            ep = StoredEpisode.load(f)
            kept.append(ep)
            total += len(ep)
        for ep in reversed(kept):
            self.replay.add(ep)
        log.info("resumed at %d frames, episode %d, %d transitions in replay", self.frames, self.episode, len(self.replay))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def plot_run(history: list[dict], out: Path, title: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot([h["frames"] for h in history], [h["success_rate"] for h in history], marker="o")
    ax.set_xlabel("environment frames")
    ax.set_ylabel("eval success rate")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
