"""The DI² comparison (specs/koi_di2.md §5.2 item 7), sized for a CPU.

For each seed: train every stage once (``train_di2``), then evaluate RGB-only conditions from the
stage checkpoints, each with the same init states:

    rgb            RGB-RF: the base RGB policy
    rgbd_nodepth   RGB-D-RF evaluated without depth (depth tokens dropped; Table II's collapse)
    dcm_nodac      DCM without DAC: the RGB-D policy fed DCM-predicted depth tokens, unquantised
    di2            DI²: RGB -> DCM -> codebook -> the stage-3 policy
and, when asked, with ground-truth depth: ``rgbd_gt`` (RGB-D-RF) and ``di2_gt`` (DI² "Ours*"), and
``rgb_matched``: an RGB-only run trained for as many policy steps as DI² gets in total.

Beside closed-loop success, each condition gets an offline number that needs no simulator: the
action loss on held-out demo windows with that condition's depth source (the same split the stage
metrics use). Every (seed, condition, task) result is a JSON file, so an interrupted experiment
resumes where it stopped; ``summary_only`` tables what is cached without training or evaluating.
Every seed is trained (and scored offline) before any closed-loop evaluation, so a run cut short
still has the offline comparison over all seeds. Demos: Meta-World's scripted experts
(``policystack.demos``) or LIBERO's (``sim.libero_demos``), with RGB + metric depth of every camera.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from policystack.checkpoint import atomic_write_text
from policystack.config import ConfigError
from policystack.keys import TASK as K_TASK
from policies.di2.configuration_di2 import DI2Config
from policies.di2.train_di2 import DI2TrainConfig, train

log = logging.getLogger(__name__)

# condition -> (stage checkpoint, depth source at evaluation, label)
CONDITIONS = {
    "rgb": ("rgb", "none", "RGB-RF (RGB)"),
    "rgbd_nodepth": ("rgbd", "none", "RGB-D-RF, no depth at test"),
    "dcm_nodac": ("dcm", "dcm", "DCM w/o DAC (RGB)"),
    "di2": ("di2", "dcm_vq", "DI² (RGB)"),
    "rgbd_gt": ("rgbd", "gt", "RGB-D-RF with GT depth"),
    "di2_gt": ("di2", "gt_vq", "DI²* with GT depth"),
    # control: the RGB policy trained for as many policy steps as DI² gets (rgb + rgbd + di2)
    "rgb_matched": ("rgb", "none", "RGB-RF, matched steps"),
}
MAIN_CONDITIONS = ("rgb", "rgbd_nodepth", "dcm_nodac", "di2")


@dataclass
class DI2ExperimentConfig:
    benchmark: str = "metaworld"          # metaworld | libero
    # metaworld: task names; libero: "<suite>:<index>" (e.g. libero_object:0)
    tasks: tuple[str, ...] = ("button-press-topdown-v3", "drawer-close-v3", "window-open-v3")
    image_size: int = 64
    n_demos: int = 20                    # per task
    # other tasks whose RGB demos pretrain the base policy once (the paper's RoboFlamingo checkpoint);
    # RGB-RF and RGB-D-RF are then both fine-tuned from it. Empty: RGB-RF is trained from scratch
    # and RGB-D-RF continues from it
    pretrain_tasks: tuple[str, ...] = ()
    n_pretrain_demos: int = 10           # per pretraining task
    pretrain_seed: int = 0               # the one pretrain run every seed starts from
    demo_noise: float = 0.0              # Meta-World DART noise on executed actions (labels stay clean)
    seeds: tuple[int, ...] = (0, 1, 2)
    n_eval_episodes: int = 10            # per task; init states 0.. of the evaluation split (0: offline only)
    max_episode_steps: int = 150
    conditions: tuple[str, ...] = MAIN_CONDITIONS
    output_dir: str = "outputs/di2_experiment"
    data_dir: str = ""                   # default: <output_dir>/data
    train: DI2TrainConfig = field(default_factory=lambda: DI2TrainConfig(
        policy=DI2Config(cameras=("corner2", "gripperPOV"), window=4)))

    def __post_init__(self) -> None:
        if self.benchmark not in ("metaworld", "libero"):
            raise ConfigError(f"benchmark must be metaworld or libero, got {self.benchmark!r}")
        bad = [c for c in self.conditions if c not in CONDITIONS]
        if bad:
            raise ConfigError(f"unknown condition(s) {bad}; choose from {list(CONDITIONS)}")
        if self.n_eval_episodes < 0:
            raise ConfigError("n_eval_episodes must be >= 0 (0: offline comparison only)")
        if not self.tasks or not self.seeds:
            raise ConfigError("need at least one task and one seed")
        if set(self.pretrain_tasks) & set(self.tasks):
            raise ConfigError(f"pretrain_tasks must differ from tasks; both name "
                              f"{sorted(set(self.pretrain_tasks) & set(self.tasks))}")
        cams = tuple(self.train.policy.cameras)
        if self.benchmark == "metaworld" and {"agentview", "wrist"} & set(cams):
            raise ConfigError(f"Meta-World has no camera among {cams}; e.g. "
                              f"train.policy.cameras=corner2,gripperPOV (static + in-hand, as LIBERO's pair)")
        if self.benchmark == "libero" and not set(cams) <= {"agentview", "wrist"}:
            raise ConfigError(f"LIBERO cameras are agentview and wrist, got {cams}; "
                              f"set train.policy.cameras=agentview,wrist")
        if self.benchmark == "libero":
            for t in self.tasks:
                if ":" not in t:
                    raise ConfigError(f"LIBERO tasks are '<suite>:<index>', got {t!r}")


def _env_name(cfg: DI2ExperimentConfig, task: str) -> str:
    if cfg.benchmark == "metaworld":
        return f"policystack/MetaWorld-{task}"
    suite, index = task.split(":")
    return f"policystack/LIBERO-{suite}-{int(index)}"


def _env_kwargs(cfg: DI2ExperimentConfig, depth: bool) -> dict:
    kw = dict(cameras=tuple(cfg.train.policy.cameras), image_size=cfg.image_size, depth=depth,
              max_episode_steps=cfg.max_episode_steps)
    return kw


def make_demos(cfg: DI2ExperimentConfig, pretrain: bool = False) -> tuple[str, ...]:
    """Generate (once) the demo files the training reads; returns their paths. ``pretrain``: the
    RGB-only demos of ``pretrain_tasks`` (none when that is empty)."""
    tasks, n, depth = (cfg.pretrain_tasks, cfg.n_pretrain_demos, False) if pretrain else \
        (cfg.tasks, cfg.n_demos, True)
    data = Path(cfg.data_dir or Path(cfg.output_dir) / "data")
    data.mkdir(parents=True, exist_ok=True)
    cams = tuple(cfg.train.policy.cameras)
    paths = []
    if cfg.benchmark == "metaworld":
        from policystack.demos import generate_metaworld_demos
        for task in tasks:
            p = data / f"{task}_{cfg.image_size}px_{n}.hdf5"
            if not p.exists():
                tmp = p.with_suffix(".partial.hdf5")
                tmp.unlink(missing_ok=True)
                generate_metaworld_demos(task, n, tmp, cameras=cams, image_size=cfg.image_size,
                                         depth=depth, noise=cfg.demo_noise)
                tmp.rename(p)
            paths.append(str(p))
        return tuple(paths)
    from sim.libero_demos import generate_libero_demos
    by_suite: dict[str, list[int]] = {}
    for t in tasks:
        suite, index = t.split(":")
        by_suite.setdefault(suite, []).append(int(index))
    for suite, idx in by_suite.items():
        sub = data / f"{suite}_{'-'.join(map(str, idx))}_{cfg.image_size}px_{n}"
        p = sub / f"{suite}.hdf5"
        if not p.exists():
            generate_libero_demos(suite, sub, tasks=idx, n_episodes=n, cameras=cams,
                                  image_size=cfg.image_size, depth=depth, official=False)
        paths.append(str(p))
    return tuple(paths)


def shared_pretrain(cfg: DI2ExperimentConfig, datasets: tuple[str, ...], pretrain: tuple[str, ...]) -> Path:
    """Train the pretrain stage once (``pretrain_seed``) under ``<output_dir>/pretrain``: every seed
    fine-tunes the same base policy, as the paper's runs all start from one checkpoint."""
    run_dir = Path(cfg.output_dir) / "pretrain"
    if not (run_dir / "stages" / "pretrain" / "pretrained" / "metrics.json").is_file():
        train(dataclasses.replace(cfg.train, dataset=datasets, pretrain_dataset=pretrain, stages=("pretrain",),
                                  output_dir=str(run_dir), seed=cfg.pretrain_seed))
    return run_dir / "stages" / "pretrain"


def _seed_train_config(cfg: DI2ExperimentConfig, seed: int, datasets, pretrain, condition: str = ""):
    """The seed's training config; with a pretrain stage, its run dir gets a copy of the shared one."""
    import shutil
    run_dir = seed_run_dir(cfg, seed, condition)
    tcfg = dataclasses.replace(cfg.train, dataset=datasets, pretrain_dataset=pretrain, stages=(),
                               output_dir=str(run_dir), seed=seed)
    if pretrain:
        dest = run_dir / "stages" / "pretrain"
        if not (dest / "pretrained" / "metrics.json").is_file():
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(shared_pretrain(cfg, datasets, pretrain), dest)
    return tcfg


def seed_run_dir(cfg: DI2ExperimentConfig, seed: int, condition: str = "") -> Path:
    return Path(cfg.output_dir) / (f"seed_{seed}_rgb_matched" if condition == "rgb_matched" else f"seed_{seed}")


def evaluate_condition(cfg: DI2ExperimentConfig, seed: int, condition: str, task: str) -> dict:
    """Success of one condition on one task (cached as JSON)."""
    from policies.base import load_policy
    from policystack.evaluation import evaluate
    out = seed_run_dir(cfg, seed) / "eval" / condition / f"{task.replace(':', '-')}.json"
    if out.is_file():
        return json.loads(out.read_text())
    stage, source, _ = CONDITIONS[condition]
    policy = load_policy(seed_run_dir(cfg, seed, condition) / "stages" / stage / "pretrained")
    policy.set_depth_source(source)
    depth = policy.config.uses_depth_input
    report = evaluate(policy, _env_name(cfg, task), n_episodes=cfg.n_eval_episodes,
                      env_kwargs=_env_kwargs(cfg, depth), progress=False)
    res = {"seed": seed, "condition": condition, "task": task, "success_rate": report["success_rate"],
           "avg_length": report["avg_length"], "eval_s": report["eval_s"],
           "episodes": report["episodes"]}
    atomic_write_text(out, json.dumps(res, indent=1))
    log.info("seed %d %-13s %-28s success %.2f (%.0fs)", seed, condition, task, res["success_rate"],
             res["eval_s"])
    return res


def offline_action_losses(cfg: DI2ExperimentConfig, seed: int, datasets: tuple[str, ...]) -> dict:
    """Held-out action loss (Huber arm + w*BCE), arm Huber and gripper accuracy of every condition,
    computed on the held-out demo windows with the condition's own depth source (cached as JSON)."""
    import torch

    from policies.base import load_policy
    from policies.di2.data import WindowData, load_episodes, split_episodes
    out = seed_run_dir(cfg, seed) / "offline_action_loss.json"
    done = json.loads(out.read_text()) if out.is_file() else {}
    todo = [c for c in cfg.conditions if c not in done
            and (seed_run_dir(cfg, seed, c) / "stages" / CONDITIONS[c][0] / "pretrained").is_dir()]
    if not todo:
        return done
    t = cfg.train
    episodes = load_episodes(datasets, t.policy.cameras, with_depth=True, limit=t.limit_episodes)
    _, val = split_episodes(episodes, t.val_every)
    if not val:
        return done
    data = WindowData(val, t.policy.cameras, t.policy.window, with_depth=True)
    torch.set_num_threads(t.num_threads)
    for cond in todo:
        stage, source, _ = CONDITIONS[cond]
        policy = load_policy(seed_run_dir(cfg, seed, cond) / "stages" / stage / "pretrained")
        policy.eval()
        logs = []
        with torch.no_grad():
            for batch in data.iter_eval(32, stride=2):
                logs.append((len(batch[K_TASK]), policy.action_loss(batch, source)[1]))
        n = sum(w for w, _ in logs)
        done[cond] = {k: sum(w * lg[k] for w, lg in logs) / n for k in ("loss", "arm", "grip_acc")}
        done[cond]["n_windows"] = n
        log.info("seed %d %-13s held-out action loss %.4f (arm %.4f, grip acc %.2f)", seed, cond,
                 done[cond]["loss"], done[cond]["arm"], done[cond]["grip_acc"])
    atomic_write_text(out, json.dumps(done, indent=1))
    return done


def stage_metrics(run_dir: Path) -> dict:
    """Offline numbers from the stage checkpoints: DCM vs predict-the-mean, codebook health, losses."""
    out = {}
    for stage in ("pretrain", "rgb", "rgbd", "dcm", "dac", "di2"):
        f = run_dir / "stages" / stage / "pretrained" / "metrics.json"
        if not f.is_file():
            continue
        m = json.loads(f.read_text())
        last = m["history"][-1] if m["history"] else {}
        evals = [h for h in m["history"] if any(k.startswith("val_") for k in h)]
        rec = {"seconds": m["seconds"], "steps": m["steps"]}
        if "heldout_action_loss" in m:
            rec["heldout_action_loss"] = m["heldout_action_loss"]
        if stage == "dcm" and evals:
            rec.update(val_dcm_mse_first=evals[0]["val_dcm_mse"], val_dcm_mse=evals[-1]["val_dcm_mse"],
                       mean_token_baseline_mse=m.get("mean_token_baseline_mse"))
        if stage == "dac" and evals:
            rec.update({k: evals[-1][k] for k in evals[-1] if k.startswith("val_")})
            rec["val_perplexity_first"] = evals[0].get("val_perplexity")
            rec["train_perplexity"] = last.get("perplexity")
        out[stage] = rec
    return out


def summarize(cfg: DI2ExperimentConfig, results: list[dict]) -> dict:
    table: dict[str, dict] = {}
    for cond in cfg.conditions:
        per_seed = []
        for seed in cfg.seeds:
            rs = [r["success_rate"] for r in results if r["condition"] == cond and r["seed"] == seed]
            if rs:
                per_seed.append(float(np.mean(rs)))
        per_task = {t: float(np.mean([r["success_rate"] for r in results
                                      if r["condition"] == cond and r["task"] == t] or [np.nan]))
                    for t in cfg.tasks}
        table[cond] = {"label": CONDITIONS[cond][2], "per_seed": per_seed,
                       "mean": float(np.mean(per_seed)) if per_seed else float("nan"),
                       "std": float(np.std(per_seed)) if per_seed else float("nan"), "per_task": per_task}
        losses = []
        for seed in cfg.seeds:
            f = seed_run_dir(cfg, seed) / "offline_action_loss.json"
            rec = json.loads(f.read_text()).get(cond) if f.is_file() else None
            if rec is not None:
                losses.append(rec["loss"])
        table[cond]["heldout_loss_per_seed"] = losses
        if losses:
            table[cond]["heldout_loss_mean"] = float(np.mean(losses))
            table[cond]["heldout_loss_std"] = float(np.std(losses))
    return {"conditions": table,
            "offline": {str(s): stage_metrics(seed_run_dir(cfg, s)) for s in cfg.seeds}}


def plot(summary: dict, path: Path, title: str) -> None:
    """Bars of success (mean ± std over seeds, dots per seed); a second panel with the held-out
    action loss of each condition when the summary has it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    table = summary["conditions"]
    conds = list(table)
    panels = [("per_seed", "success rate", (0, 1))] if any(table[c]["per_seed"] for c in conds) else []
    if any(table[c].get("heldout_loss_per_seed") for c in conds) or not panels:
        panels.append(("heldout_loss_per_seed", "held-out action loss (RGB only unless GT)", None))
    fig, axes = plt.subplots(1, len(panels), figsize=((1.2 * len(conds) + 1.5) * len(panels), 3.4), dpi=100,
                             squeeze=False)
    for ax, (key, ylabel, ylim) in zip(axes[0], panels):
        vals = [table[c].get(key) or [] for c in conds]
        means = [float(np.mean(v)) if v else np.nan for v in vals]
        stds = [float(np.std(v)) if v else 0.0 for v in vals]
        ax.bar(range(len(conds)), means, yerr=stds, capsize=4, color="#6a9fd4")
        for i, v in enumerate(vals):
            ax.scatter([i] * len(v), v, color="k", s=10, zorder=3)
        ax.set_xticks(range(len(conds)))
        ax.set_xticklabels([table[c]["label"] for c in conds], rotation=25, ha="right", fontsize=7)
        ax.set_ylabel(ylabel, fontsize=8)
        if ylim:
            ax.set_ylim(*ylim)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def cached_results(cfg: DI2ExperimentConfig) -> list[dict]:
    """Every (seed, condition, task) success already evaluated under ``output_dir``."""
    results = []
    for seed in cfg.seeds if cfg.n_eval_episodes > 0 else ():
        for cond in cfg.conditions:
            for task in cfg.tasks:
                f = seed_run_dir(cfg, seed) / "eval" / cond / f"{task.replace(':', '-')}.json"
                if f.is_file():
                    results.append(json.loads(f.read_text()))
    return results


def _title(cfg: DI2ExperimentConfig, summary: dict) -> str:
    n_seeds = max((max(len(r["per_seed"]), len(r.get("heldout_loss_per_seed", [])))
                   for r in summary["conditions"].values()), default=0)
    loop = f"{cfg.n_eval_episodes} episodes/task" if cfg.n_eval_episodes > 0 else "offline only"
    return f"DI² on {cfg.benchmark} ({len(cfg.tasks)} tasks, {n_seeds} seed(s), {loop})"


def run_experiment(cfg: DI2ExperimentConfig, figure: str | Path | None = None, summary_only: bool = False) -> dict:
    """Train every seed, evaluate every condition, write summary.json (+ the figure).

    ``summary_only``: no training or evaluation; table the cached results (e.g. of seeds run by
    separate processes, or a run stopped early, whose missing seeds then simply do not appear)."""
    t0 = time.time()
    out = Path(cfg.output_dir)
    if summary_only:
        summary = summarize(cfg, cached_results(cfg))
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
        if figure:
            plot(summary, Path(figure), _title(cfg, summary))
        return summary
    out.mkdir(parents=True, exist_ok=True)
    from policystack import config as cfgmod
    cfgmod.save_json(cfg, out / "experiment_config.json")
    datasets, pretrain = make_demos(cfg), make_demos(cfg, pretrain=True)
    for seed in cfg.seeds:
        train(_seed_train_config(cfg, seed, datasets, pretrain))
        if "rgb_matched" in cfg.conditions:
            # as many policy updates on the target tasks as DI² gets (rgb + rgbd + di2, or rgbd + di2
            # after a shared pretrain stage, where RGB-RF and RGB-D-RF already get the same steps)
            t = cfg.train
            extra = t.steps_rgbd + t.steps_di2 if pretrain else t.steps_rgb + t.steps_rgbd + t.steps_di2
            mcfg = _seed_train_config(cfg, seed, datasets, pretrain, "rgb_matched")
            train(dataclasses.replace(mcfg, stages=mcfg.stage_order[: mcfg.stage_order.index("rgb") + 1],
                                      steps_rgb=extra))
        offline_action_losses(cfg, seed, datasets)
        atomic_write_text(out / "summary.json", json.dumps(summarize(cfg, cached_results(cfg)), indent=1))
    results = []
    for seed in cfg.seeds if cfg.n_eval_episodes > 0 else ():
        for cond in cfg.conditions:
            for task in cfg.tasks:
                results.append(evaluate_condition(cfg, seed, cond, task))
        summary = summarize(cfg, results)
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    summary = summarize(cfg, results)
    summary["wall_s"] = round(time.time() - t0, 1)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    if figure:
        plot(summary, Path(figure), _title(cfg, summary))
    return summary
