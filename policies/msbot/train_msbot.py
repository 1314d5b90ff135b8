"""MS-Bot's training procedure (also trains the Concat / MULSA baselines on the same samples).

    warm-up epochs: CE only, the stage module is bypassed (z* = z)
    then:           E[s] <- mean state token of stage-s samples; CE + λ·mean(g ⊙ w) (+ balance)
    Adam, StepLR(step = 3 epochs, γ = 0.9) as the reference (lr 1e-3 here: no pretrained trunks)

Run layout (as ``policystack.training``): ``<out>/config.json``, ``metrics.jsonl``, ``loss.png``,
``checkpoints/last/{pretrained,train_state.pt}`` written atomically every epoch; ``resume=true``
continues after the last finished epoch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from policystack import config as cfgmod
from policystack import keys as K
from policystack.checkpoint import atomic_directory, atomic_torch_save, atomic_write_text, load_train_state
from policystack.dataset import compute_stats, features_of
from policystack.errors import ConfigError, DatasetError
from policies.base import PolicyConfig, make_policy
from policies.common.resnet import load_imagenet_into
from policies.msbot.configuration_msbot import MSBotConfig
from policies.msbot.data import MSBotDataset, executed_of, load_hdf5, load_rig_hdf5
from policies.msbot.tokens import INDEX_SUFFIX, primitives_from_actions

log = logging.getLogger(__name__)
FORMATS = ("hdf5", "rig", "msbot")


@dataclass
class MSBotTrainConfig:
    dataset: str = field(default="", metadata={"help": "HDF5 file, or an MS-Bot data folder (dataset_format=msbot)"})
    dataset_format: str = field(default="hdf5", metadata={"help": "hdf5 (ours) | rig (sensor recordings) | msbot"})
    msbot_task: str = field(default="peg", metadata={"help": "msbot format: pour | peg"})
    policy: PolicyConfig = field(default_factory=MSBotConfig, metadata={"registry": "policy"})
    output_dir: str = "runs/msbot"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    lr_step_epochs: int = 3
    lr_gamma: float = 0.9
    warmup_epochs: int = 1
    seed: int = 0
    max_episodes: int | None = None
    num_threads: int = 1
    grad_clip: float = 10.0
    audio_stats_samples: int = 256
    # speed: batches made of whole episodes, each frame / audio chunk encoded once per batch (same tokens)
    episode_batches: bool = True
    dedupe_frames: bool = True
    resume: bool = False
    # held-out episodes (same format as ``dataset``) scored after every epoch, as the reference's
    # valid(): overall action accuracy and CE; checkpoints/best_acc and best_loss keep the best epochs
    val_dataset: str = ""
    # torchvision's ImageNet resnet18 state dict, loaded into every ResNet-18 trunk before training
    # (the reference's init; needs policy.tokenizer.trunk=resnet18). Not read when resuming.
    trunk_weights: str = ""

    def __post_init__(self) -> None:
        if self.dataset_format not in FORMATS:
            raise ConfigError(f"dataset_format must be one of {FORMATS}, got {self.dataset_format!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("epochs, batch_size must be >= 1 and lr > 0")
        if self.warmup_epochs < 0 or self.warmup_epochs >= self.epochs and self.epochs > 1:
            raise ConfigError("warmup_epochs must be in [0, epochs)")


def load_samples(cfg: MSBotTrainConfig):
    """-> (episodes, stage labels or None) in our Episode form, whatever the on-disk format."""
    if not cfg.dataset:
        raise DatasetError("no dataset given: set dataset=<file.hdf5> (e.g. `policystack msbot demos`)")
    if cfg.dataset_format == "hdf5":
        return load_hdf5(cfg.dataset, limit=cfg.max_episodes)
    if cfg.dataset_format == "rig":
        return load_rig_hdf5(cfg.dataset, limit=cfg.max_episodes), None
    from policies.msbot.msbot_format import load_msbot_folder
    episodes = load_msbot_folder(cfg.dataset, task=cfg.msbot_task, limit=cfg.max_episodes)
    return episodes, [ep.attrs.pop("stages") for ep in episodes]


def _fit_audio_stats(policy, dataset: MSBotDataset, n: int, gen: torch.Generator) -> None:
    tok = policy.tokenizer
    audio = [k for k in tok.keys if tok.kinds[k] == "audio"]
    if not audio or n <= 0:
        return
    idx = torch.randint(len(dataset), (min(n, len(dataset)),), generator=gen).tolist()
    batch = dataset.get_batch(idx)
    with torch.no_grad():
        mels = torch.cat([tok.frontend.log_mel(batch[k]) if k + INDEX_SUFFIX in batch
                          else tok.frontend(tok.audio_window(tok._time_axis(batch[k], k))) for k in audio])
    tok.fit_audio_stats(mels)


def _batches(dataset: MSBotDataset, size: int, by_episode: bool, gen: torch.Generator) -> list[list[int]]:
    """Shuffled batches of sample indices; ``by_episode``: whole episodes until ``size`` samples are reached
    (neighbouring samples share history frames, which the de-duplicated batches encode once)."""
    if not by_episode:
        perm = torch.randperm(len(dataset), generator=gen).tolist()
        return [perm[i:i + size] for i in range(0, len(perm), size)]
    rows_of: dict[int, list[int]] = {}
    for i, (e, _) in enumerate(dataset.index):
        rows_of.setdefault(int(e), []).append(i)
    out, cur = [], []
    for e in torch.randperm(len(rows_of), generator=gen).tolist():
        cur += rows_of[e]
        if len(cur) >= size:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _validate(policy, val: MSBotDataset, batch: int = 128) -> dict[str, float]:
    """The reference's valid(): eval-mode action accuracy and mean CE over held-out samples."""
    policy.eval()
    hits, ce, n = 0, 0.0, 0
    with torch.no_grad():
        for i in range(0, len(val), batch):
            b = val.get_batch(np.arange(i, min(len(val), i + batch)))
            logits, _ = policy.action_logits(b)
            target = policy.targets(b)
            hits += int((logits.argmax(-1) == target).sum())
            ce += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
            n += len(target)
    policy.train()
    return {"val_acc": hits / n, "val_ce": ce / n}


def _improved(metrics: list[dict]) -> list[str]:
    """Which best checkpoints the newest epoch replaces (strictly better than every earlier epoch)."""
    *before, m = metrics
    out = []
    if "val_acc" in m and all(m["val_acc"] > b.get("val_acc", -1.0) for b in before):
        out.append("best_acc")
    if "val_ce" in m and all(m["val_ce"] < b.get("val_ce", float("inf")) for b in before):
        out.append("best_loss")
    return out


def _plot(metrics: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if not metrics:
        return
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ep = [m["epoch"] for m in metrics]
    ax[0].plot(ep, [m["loss"] for m in metrics], label="loss")
    ax[0].plot(ep, [m["ce"] for m in metrics], label="action CE")
    ax[0].set_yscale("log"), ax[0].legend(), ax[0].set_xlabel("epoch")
    for key in ("acc", "gate_acc", "val_acc"):
        if any(key in m for m in metrics):
            ax[1].plot([m["epoch"] for m in metrics if key in m], [m[key] for m in metrics if key in m], label=key)
    ax[1].set_ylim(0, 1), ax[1].legend(), ax[1].set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def train(cfg: MSBotTrainConfig, progress: bool = True) -> Path:
    out = Path(cfg.output_dir)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    last = out / "checkpoints" / "last"
    if not cfg.resume and last.exists():
        raise ConfigError(f"{out} already holds a run; pass resume=true or choose another output_dir")
    torch.manual_seed(cfg.seed), np.random.seed(cfg.seed), random.seed(cfg.seed)
    episodes, stages = load_samples(cfg)
    features = features_of(episodes)
    pcfg = cfg.policy
    if not pcfg.primitives:
        pcfg = dataclasses.replace(pcfg, primitives=primitives_from_actions(np.concatenate([e.actions for e in episodes])))
    policy = make_policy(pcfg, features=features)
    pcfg = policy.config
    features.check_satisfies(pcfg.input_spec, who=f"{policy.name} policy", source="dataset")
    in_keys = [k for k in pcfg.input_spec.keys() if k != K.TASK]
    n_stages = int(getattr(pcfg, "n_stages", 1))
    dataset = MSBotDataset(episodes, in_keys, pcfg.n_obs_steps, policy.codec.primitives.numpy(),
                           pcfg.tokenizer.history_len, stages, n_stages,
                           getattr(pcfg, "boundary_before", 0), getattr(pcfg, "boundary_after", 0),
                           layout=policy.tokenizer.layout() if cfg.dedupe_frames else None,
                           zero_pad_keys=policy.tokenizer.layout()["audio_keys"] if pcfg.tokenizer.audio_stream else (),
                           executed=executed_of(episodes))
    val = None
    if cfg.val_dataset:
        val_eps, val_stages = load_samples(dataclasses.replace(cfg, dataset=cfg.val_dataset, max_episodes=None))
        features_of(val_eps).check_satisfies(pcfg.input_spec, who=f"{policy.name} policy", source="val_dataset")
        val = MSBotDataset(val_eps, in_keys, pcfg.n_obs_steps, policy.codec.primitives.numpy(),
                           pcfg.tokenizer.history_len, val_stages, n_stages,
                           zero_pad_keys=sorted(dataset.zero_pad), executed=executed_of(val_eps))
        if len(val) == 0:
            raise DatasetError(f"val_dataset {cfg.val_dataset} holds no samples")
    gen = torch.Generator().manual_seed(cfg.seed)
    policy.set_stats(compute_stats(episodes, [k for k in in_keys if episodes[0].obs[k].dtype != np.uint8]))
    _fit_audio_stats(policy, dataset, cfg.audio_stats_samples, gen)
    policy.train()
    optim = torch.optim.Adam(policy.optim_params(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(optim, cfg.lr_step_epochs, cfg.lr_gamma)
    start, metrics = 0, []
    if cfg.trunk_weights and not (cfg.resume and last.exists()):
        n = load_imagenet_into(policy, cfg.trunk_weights)
        log.info("loaded ImageNet ResNet-18 weights %s into %d trunks", cfg.trunk_weights, n)
    if cfg.resume and last.exists():
        state = load_train_state(last / "train_state.pt")
        loaded = type(policy).from_pretrained(last / "pretrained")
        policy.load_state_dict(loaded.state_dict())
        policy.train()
        optim.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start = int(state["epoch"]) + 1
        metrics = [m for m in state.get("metrics", []) if m["epoch"] < start]
        log.info("resumed %s after epoch %d", out, start - 1)
    out.mkdir(parents=True, exist_ok=True)
    cfgmod.save_json(dataclasses.replace(cfg, policy=pcfg), out / "config.json")
    log.info("training %s on %d episodes / %d samples, inputs %s, %d action classes",
             policy.name, len(episodes), len(dataset), in_keys, policy.codec.n_classes)
    t0 = time.time()
    has_stage_module = hasattr(policy, "init_stage_tokens")
    for epoch in range(start, cfg.epochs):
        policy.balancer.epoch = epoch
        if has_stage_module and stages is not None and epoch >= cfg.warmup_epochs and not bool(policy.stage.ready):
            order = np.arange(len(dataset))
            policy.init_stage_tokens(dataset.get_batch(order[i:i + 128]) for i in range(0, len(order), 128))
            log.info("stage tokens initialised from per-stage mean state tokens (epoch %d)", epoch)
        batches = _batches(dataset, cfg.batch_size, cfg.episode_batches, gen)
        sums: dict[str, float] = {}
        n = 0
        bar = tqdm(batches, desc=f"{policy.name} epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress or None, dynamic_ncols=True, leave=False)
        for rows in bar:
            batch = dataset.get_batch(rows)
            loss, logs = policy(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {float(loss)} in epoch {epoch}; lower the learning rate")
            optim.zero_grad(set_to_none=True)
            loss.backward()
            policy.balancer.after_backward(policy.modality_parameters())
            if cfg.grad_clip:
                norm = torch.nn.utils.clip_grad_norm_(policy.optim_params(), cfg.grad_clip)
                if not torch.isfinite(norm):  # stepping would write NaN into every weight
                    raise FloatingPointError(f"gradient norm became {float(norm)} in epoch {epoch}; "
                                             f"lower the learning rate")
            optim.step()
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
            bar.set_postfix(loss=f"{sums['loss'] / n:.3f}", acc=f"{sums['acc'] / n:.2f}")
        sched.step()
        m = {"epoch": epoch, "time_s": round(time.time() - t0, 1), "lr": optim.param_groups[0]["lr"],
             **{k: v / max(1, n) for k, v in sums.items()}, **(_validate(policy, val) if val else {})}
        metrics.append(m)
        for name in _improved(metrics):      # a resumed run recomputes the epoch and saves it again
            with atomic_directory(out / "checkpoints" / name) as tmp:
                policy.save_pretrained(tmp / "pretrained")
                atomic_write_text(tmp / "epoch.txt", f"{epoch}\n")
        log.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in m.items() if isinstance(v, float)})
        with atomic_directory(last) as tmp:
            policy.save_pretrained(tmp / "pretrained")
            atomic_torch_save({"epoch": epoch, "optimizer": optim.state_dict(), "scheduler": sched.state_dict(),
                               "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                               "metrics": metrics}, tmp / "train_state.pt")
        atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(x) + "\n" for x in metrics))
        _plot(metrics, out / "loss.png")
    log.info("done in %.1f s: %s", time.time() - t0, last / "pretrained")
    return out
