"""DI² training: the stages in order, one checkpoint per stage, resumable mid-stage.

    pretrain  (optional, with ``pretrain_dataset``) an RGB policy trained on *other* tasks: the
          stand-in for the pre-trained RoboFlamingo (CALVIN) checkpoint the paper starts from
    rgb   RGB-RF: with a pretrain stage, the pretrained policy fine-tuned on the target tasks with RGB
          (conv encoder and LM blocks frozen, as CLIP and MPT); without one, trained from scratch
    rgbd  stage 0: + depth branch, RGB-D fine-tune ("RGB-D-RF"); RGB conv encoder and LM blocks frozen.
          Starts from the pretrain stage when there is one (as the paper's RGB-D-RF starts from the
          RoboFlamingo checkpoint, not from RGB-RF), else from the rgb stage
    dcm   stage 1: Depth Completion Module, MSE to frozen depth tokens; only the DCM learns
    dac   stage 2: Depth-Aware Codebook fitted on frozen GT depth tokens; only the codebook learns
    di2   stage 3: fusion + LSTM head fine-tuned on quantised GT depth tokens; everything visual frozen

Layout: ``<run>/train_config.json``, ``<run>/stages/<stage>/pretrained`` (final, with
``metrics.json``), ``<run>/stages/<stage>/last/{pretrained,train_state.pt}`` (periodic, for resume).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from policystack import config as cfgmod
from policystack import keys as K
from policystack.checkpoint import (WEIGHTS_NAME, atomic_torch_save, atomic_write_text, load_train_state,
                                    load_weights)
from policystack.config import ConfigError
from policystack.dataset import compute_stats, features_of
from policystack.errors import CheckpointError
from policies.base import make_policy
from policies.di2 import modeling_di2 as M
from policies.di2.configuration_di2 import STAGES, DI2Config
from policies.di2.data import WindowData, load_episodes, split_episodes
from policies.di2.modeling_di2 import DI2Policy

log = logging.getLogger(__name__)

# per stage: trainable parameter prefixes, depth source used for training, depth source saved for use
ALL_RGB = M.RGB_ENCODER + M.RGB_RESAMPLER + M.LM_BLOCKS + M.POLICY_HEAD
STAGE_PLAN = {
    "pretrain": (ALL_RGB, "none", "none"),
    "rgb": (ALL_RGB, "none", "none"),                      # from scratch (no pretrain stage)
    "rgbd": (M.RGB_RESAMPLER + M.DEPTH_BRANCH + M.POLICY_HEAD, "gt", "gt"),
    "dcm": (M.DCM, None, "dcm"),
    "dac": (M.CODEBOOK, None, "gt_vq"),
    "di2": (M.POLICY_HEAD, "gt_vq", "dcm_vq"),
}
# RGB-RF fine-tuned from the pretrain stage: what RGB-D-RF trains, less the depth branch
FINETUNE_RGB = (M.RGB_RESAMPLER + M.POLICY_HEAD, "none", "none")


@dataclass
class DI2TrainConfig:
    dataset: tuple[str, ...] = ()        # HDF5 episode files (one per task is typical)
    # RGB episodes of *other* tasks for the pretrain stage (the paper's RoboFlamingo starts from a
    # CALVIN checkpoint); empty = no pretrain stage
    pretrain_dataset: tuple[str, ...] = ()
    output_dir: str = "outputs/di2"
    policy: DI2Config = field(default_factory=DI2Config)
    # a prefix of (pretrain,) rgb, rgbd, dcm, dac, di2; empty = all of them
    stages: tuple[str, ...] = ()
    seed: int = 0
    batch_size: int = 16
    steps_pretrain: int = 3000
    steps_rgb: int = 1500
    steps_rgbd: int = 1000
    steps_dcm: int = 3000
    steps_dac: int = 1000
    steps_di2: int = 600
    lr: float = 3e-4                     # AdamW, constant after warm-up (paper: 1e-4, warm-up 5000)
    warmup_steps: int = 100
    xattn_weight_decay: float = 0.1      # only on gated cross-attention weights, as the paper
    dac_lr: float = 3e-4                 # stage 2: Adam(amsgrad)
    grad_clip: float = 1.0
    # stages 1-2 learn on frozen tokens, so they read a cache: every training frame once unshifted and
    # ``token_copies`` times under a random shared RGB/depth shift; batches of frames from it
    token_copies: int = 2
    token_batch_size: int = 64
    val_every: int = 10                  # hold out every n-th episode per task for stage metrics
    eval_interval: int = 250             # held-out metric every n steps (dcm/dac stages)
    save_every: int = 200
    limit_episodes: int | None = None    # per file
    num_threads: int = 1

    def __post_init__(self) -> None:
        order = self.stage_order
        self.stages = tuple(self.stages) or order
        if self.stages != order[: len(self.stages)]:
            hint = "" if self.pretrain_dataset else " (the pretrain stage needs pretrain_dataset=...)"
            raise ConfigError(f"stages must be a non-empty prefix of {order}, got {self.stages}{hint}")
        if self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("batch_size must be >= 1 and lr > 0")
        for s in STAGES:
            if getattr(self, f"steps_{s}") < 0:
                raise ConfigError(f"steps_{s} must be >= 0")

    @property
    def stage_order(self) -> tuple[str, ...]:
        return STAGES if self.pretrain_dataset else STAGES[1:]

    def steps(self, stage: str) -> int:
        return int(getattr(self, f"steps_{stage}"))

    def plan(self, stage: str) -> tuple[tuple[str, ...], str | None, str]:
        """(trainable prefixes, depth source in training, depth source saved) of ``stage``."""
        return FINETUNE_RGB if stage == "rgb" and self.pretrain_dataset else STAGE_PLAN[stage]

    def parent(self, stage: str) -> str | None:
        """The stage whose weights ``stage`` starts from, when not the one just before it."""
        return "pretrain" if stage == "rgbd" and self.pretrain_dataset else None


def _optimizer(policy: DI2Policy, stage: str, cfg: DI2TrainConfig) -> torch.optim.Optimizer:
    params = [(n, p) for n, p in policy.named_parameters() if p.requires_grad]
    if stage == "dac":
        return torch.optim.Adam([p for _, p in params], lr=cfg.dac_lr, amsgrad=True)
    decay = [p for n, p in params if n.startswith("fusion.xattn") and p.dim() >= 2]
    other = [p for n, p in params if not (n.startswith("fusion.xattn") and p.dim() >= 2)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.xattn_weight_decay},
                              {"params": other, "weight_decay": 0.0}], lr=cfg.lr)


def _lr_at(step: int, cfg: DI2TrainConfig) -> float:
    return cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))


class StageRunner:
    """Trains one model through the stages; each stage starts from the weights the previous one left."""

    def __init__(self, cfg: DI2TrainConfig):
        if not cfg.dataset:
            raise ConfigError("di2 training needs dataset=<file.hdf5>[,<file2.hdf5>...]")
        self.cfg = cfg
        self.run_dir = Path(cfg.output_dir)
        torch.set_num_threads(cfg.num_threads)
        pcfg = cfg.policy
        episodes = load_episodes(cfg.dataset, pcfg.cameras, with_depth=True, limit=cfg.limit_episodes)
        train_eps, val_eps = split_episodes(episodes, cfg.val_every)
        log.info("di2: %d train / %d held-out episodes, %d frames", len(train_eps), len(val_eps),
                 sum(map(len, train_eps)))
        self.train = WindowData(train_eps, pcfg.cameras, pcfg.window, with_depth=True)
        self.val = WindowData(val_eps, pcfg.cameras, pcfg.window, with_depth=True) if val_eps else None
        features = features_of(episodes)
        pre_eps = []
        if cfg.pretrain_dataset:
            pre_eps = load_episodes(cfg.pretrain_dataset, pcfg.cameras, with_depth=False, limit=cfg.limit_episodes)
            overlap = {ep.task for ep in pre_eps} & {ep.task for ep in episodes}
            if overlap:
                raise ConfigError(f"pretrain_dataset must hold other tasks than dataset; both have {sorted(overlap)}")
            log.info("di2: %d pretraining episodes (%d frames) of %d other tasks", len(pre_eps),
                     sum(map(len, pre_eps)), len({ep.task for ep in pre_eps}))
        self.pretrain = WindowData(pre_eps, pcfg.cameras, pcfg.window, with_depth=False) if pre_eps else None
        # one action normaliser for every stage: the statistics of all training actions
        stats = compute_stats(train_eps + pre_eps, [K.ACTION])
        torch.manual_seed(cfg.seed)
        self.policy: DI2Policy = make_policy(dataclasses.replace(pcfg, depth_source="gt"), features, stats)

    # ----- persistence ------------------------------------------------------------------------
    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / "stages" / stage

    def _load_into_policy(self, pretrained: Path) -> None:
        state = load_weights(pretrained / WEIGHTS_NAME)
        missing, unexpected = self.policy.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{pretrained} does not fit this DI² model: missing {list(missing)[:4]}, "
                                  f"unexpected {list(unexpected)[:4]} (was it trained with another config?)")

    def _save_partial(self, stage: str, step: int, opt, gen: torch.Generator, history: list) -> None:
        d = self.stage_dir(stage) / "last"
        self.policy.save_pretrained(d / "pretrained")
        atomic_torch_save({"step": step, "optimizer": opt.state_dict(), "generator": gen.get_state(),
                           "torch_rng": torch.get_rng_state(), "history": history}, d / "train_state.pt")

    # ----- the loop -----------------------------------------------------------------------------
    def run(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        cfg_file = self.run_dir / "train_config.json"
        if cfg_file.exists():
            old = json.loads(cfg_file.read_text())
            old["policy"] = DI2Policy.upgrade_config_dict(old.get("policy", {}))
            new = cfgmod.to_dict(self.cfg)
            if {k: v for k, v in old.items() if k != "stages"} != {k: v for k, v in new.items() if k != "stages"}:
                raise ConfigError(f"{self.run_dir} holds a run with a different config; use another output_dir")
        cfgmod.save_json(self.cfg, cfg_file)
        for stage in self.cfg.stages:
            final = self.stage_dir(stage) / "pretrained"
            if (final / "metrics.json").is_file():
                log.info("di2: stage %s already done, loading %s", stage, final)
                self._load_into_policy(final)
                continue
            parent = self.cfg.parent(stage)
            if parent is not None:
                self._load_into_policy(self.stage_dir(parent) / "pretrained")
            self.run_stage(stage)
        plot_stages(self.run_dir)
        return self.run_dir

    def run_stage(self, stage: str) -> dict:
        cfg, policy = self.cfg, self.policy
        prefixes, train_source, saved_source = cfg.plan(stage)
        names = policy.set_trainable(prefixes)
        if train_source is not None:
            policy.set_depth_source(train_source, stage=stage)
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + STAGES.index(stage))
        opt = _optimizer(policy, stage, cfg)
        step, history = 0, []
        partial = self.stage_dir(stage) / "last"
        if (partial / "train_state.pt").is_file():
            self._load_into_policy(partial / "pretrained")
            st = load_train_state(partial / "train_state.pt")
            opt.load_state_dict(st["optimizer"])
            gen.set_state(st["generator"])
            torch.set_rng_state(st["torch_rng"])
            step, history = int(st["step"]), list(st["history"])
            log.info("di2: resuming stage %s at step %d", stage, step)
        n_steps = cfg.steps(stage)
        log.info("di2 stage %s: %d steps, %d trainable tensors", stage, n_steps, len(names))
        token_stage = stage in ("dcm", "dac")
        if token_stage:
            self._ensure_token_cache()
        baseline = self.mean_token_baseline() if stage == "dcm" and self.val is not None else None
        t0 = time.time()
        bar = tqdm(total=n_steps, initial=step, desc=f"di2 {stage}", leave=False, mininterval=5)
        while step < n_steps:
            policy.train()
            if token_stage:
                idx = torch.randint(0, len(self.tok_train[0]), (cfg.token_batch_size,), generator=gen)
                batch = (self.tok_train[0][idx].flatten(0, 1), self.tok_train[1][idx].flatten(0, 1))
            else:
                batch = (self.pretrain if stage == "pretrain" else self.train).sample(cfg.batch_size, gen)
            if stage != "dac":
                for g in opt.param_groups:
                    g["lr"] = _lr_at(step, cfg)
            loss, logs = self.objective(stage, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_([p for p in policy.parameters() if p.requires_grad], cfg.grad_clip)
            opt.step()
            step += 1
            bar.update(1)
            rec = {"step": step, **logs}
            if stage in ("dcm", "dac") and self.val is not None and (step % cfg.eval_interval == 0
                                                                       or step == n_steps):
                rec.update(self.heldout(stage))
            history.append(rec)
            if step % cfg.save_every == 0 and step < n_steps:
                self._save_partial(stage, step, opt, gen, history)
        bar.close()
        policy.set_trainable(())
        metrics = {"stage": stage, "steps": n_steps, "seconds": round(time.time() - t0, 1), "history": history}
        if baseline is not None:
            metrics["mean_token_baseline_mse"] = baseline
        if stage in ("pretrain", "rgb", "rgbd", "di2") and self.val is not None:
            metrics["heldout_action_loss"] = self.heldout_action_loss(train_source)
        policy.set_depth_source(saved_source, stage=stage)
        final = self.stage_dir(stage) / "pretrained"
        policy.save_pretrained(final)
        atomic_write_text(final / "metrics.json", json.dumps(metrics, indent=1))
        shutil.rmtree(partial, ignore_errors=True)  # the final checkpoint supersedes the periodic one
        log.info("di2 stage %s done in %.0fs: %s", stage, metrics["seconds"],
                 {k: v for k, v in history[-1].items() if k != "step"} if history else {})
        return metrics

    def objective(self, stage: str, batch):
        if stage == "dcm":
            return self.policy.dcm_loss(*batch)
        if stage == "dac":
            return self.policy.dac_loss(batch[1], update=True)
        return self.policy.action_loss(batch)

    # ----- frozen-token cache (stages 1 and 2) -------------------------------------------------
    @torch.no_grad()
    def _tokens(self, data: WindowData, copies: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, D) of shape (frames * (1 + copies), n_cameras, n_tokens, dim): copy 0 unshifted."""
        self.policy.eval()
        rs, ds = [], []
        for copy in range(1 + copies):
            for batch in data.iter_eval(256, window=1):  # one frame per sample
                pairs = self.policy.token_targets(batch, augment=copy > 0)
                rs.append(torch.stack([r for r, _ in pairs], 1))
                ds.append(torch.stack([d for _, d in pairs], 1))
        return torch.cat(rs), torch.cat(ds)

    def _ensure_token_cache(self) -> None:
        if getattr(self, "tok_train", None) is not None:
            return
        t0 = time.time()
        # the generator keeps the cache (hence resumed runs) reproducible
        state = torch.get_rng_state()
        torch.manual_seed(self.cfg.seed + 7919)
        self.tok_train = self._tokens(self.train, self.cfg.token_copies)
        self.tok_val = self._tokens(self.val, 0) if self.val is not None else None
        torch.set_rng_state(state)
        log.info("di2: token cache %s in %.0fs", tuple(self.tok_train[0].shape), time.time() - t0)

    # ----- held-out metrics ------------------------------------------------------------------
    @torch.no_grad()
    def mean_token_baseline(self) -> float:
        """Held-out MSE of predicting the training-set mean depth token (per camera and position)."""
        mean = self.tok_train[1][: len(self.train)].mean(0)   # unshifted training frames
        return float(F.mse_loss(mean.expand_as(self.tok_val[1]), self.tok_val[1]))

    @torch.no_grad()
    def heldout(self, stage: str) -> dict:
        """dcm: held-out MSE(DCM(R), D). dac: perplexity, MSE before/after quantisation, code agreement."""
        policy = self.policy
        policy.eval()
        r, d = (t.flatten(0, 1) for t in self.tok_val)
        pred = torch.cat([policy.dcm(c) for c in r.split(512)])
        out = {"val_dcm_mse": float(F.mse_loss(pred, d))}
        if stage == "dac":
            cb = policy.codebook
            qd, qp = cb.quantize(d), cb.quantize(pred)
            idx_d, _ = cb.lookup(d.reshape(-1, d.shape[-1]))
            idx_p, _ = cb.lookup(pred.reshape(-1, d.shape[-1]))
            out.update(val_before_error=float(F.mse_loss(pred, d)), val_after_error=float(F.mse_loss(qp, qd)),
                       val_quant_mse=float(F.mse_loss(qd, d)),
                       val_code_agreement=float((idx_d == idx_p).float().mean()),
                       val_perplexity=cb.perplexity_of(idx_d, cb.n_codes))
        return out

    @torch.no_grad()
    def heldout_action_loss(self, source: str) -> float:
        self.policy.eval()
        losses = [self.policy.action_loss(b, source)[1]["loss"]
                  for b in self.val.iter_eval(32, max_batches=10, stride=5)]
        return float(np.mean(losses)) if losses else math.nan


def plot_stages(run_dir: Path) -> Path | None:
    """One panel per finished stage: training loss, and the held-out DCM / codebook metrics."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [(s, json.loads((run_dir / "stages" / s / "pretrained" / "metrics.json").read_text()))
            for s in STAGES if (run_dir / "stages" / s / "pretrained" / "metrics.json").is_file()]
    if not done:
        return None
    fig, axes = plt.subplots(1, len(done), figsize=(3.2 * len(done), 2.8), dpi=90, squeeze=False)
    for ax, (stage, m) in zip(axes[0], done):
        h = m["history"]
        if h:
            loss = np.array([r["loss"] for r in h])
            k = max(1, len(loss) // 50)
            smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
            ax.plot(np.arange(len(smooth)) + k, smooth, label="train loss")
        ev = [r for r in h if "val_dcm_mse" in r]
        if stage == "dcm" and ev:
            ax.plot([r["step"] for r in ev], [r["val_dcm_mse"] for r in ev], "o-", label="held-out MSE")
            if "mean_token_baseline_mse" in m:
                ax.axhline(m["mean_token_baseline_mse"], color="r", ls="--", label="predict-the-mean")
        if stage == "dac" and h:
            ax2 = ax.twinx()
            ax2.plot([r["step"] for r in h], [r["perplexity"] for r in h], color="g", alpha=0.6)
            ax2.set_ylabel("perplexity", color="g")
        ax.set_yscale("log")
        ax.set_title(stage)
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = run_dir / "stages.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def train(cfg: DI2TrainConfig) -> Path:
    """Run every stage in ``cfg.stages`` (skipping finished ones, resuming a partial one)."""
    return StageRunner(cfg).run()
