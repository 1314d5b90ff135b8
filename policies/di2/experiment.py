"""The DI² comparison (specs/koi_di2.md §5.2 item 7), sized for a CPU.

For each seed: train every stage once (``train_di2``), then evaluate RGB-only conditions from the
stage checkpoints, each with the same init states:

    rgb            RGB-RF: the base RGB policy
    rgbd_nodepth   RGB-D-RF evaluated without depth (depth tokens dropped; Table II's collapse)
    dcm_nodac      DCM without DAC: the RGB-D policy fed DCM-predicted depth tokens, unquantised
    di2            DI²: RGB -> DCM -> codebook -> the stage-3 policy
and, when asked, with ground-truth depth: ``rgbd_gt`` (RGB-D-RF) and ``di2_gt`` (DI² "Ours*"), and
``rgb_matched``: an RGB-only run trained for as many policy steps as DI² gets in total.

Every (seed, condition, task) result is a JSON file, so an interrupted experiment resumes where it
stopped. Demos: Meta-World's scripted experts (``policystack.demos``) or LIBERO's
(``sim.libero_demos``), with RGB + metric depth of every camera.
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
    demo_noise: float = 0.0              # Meta-World DART noise on executed actions (labels stay clean)
    seeds: tuple[int, ...] = (0, 1, 2)
    n_eval_episodes: int = 10            # per task; init states 0.. of the evaluation split
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
        if not self.tasks or not self.seeds:
            raise ConfigError("need at least one task and one seed")
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


def make_demos(cfg: DI2ExperimentConfig) -> tuple[str, ...]:
    """Generate (once) the demo files the training reads; returns their paths."""
    data = Path(cfg.data_dir or Path(cfg.output_dir) / "data")
    data.mkdir(parents=True, exist_ok=True)
    cams = tuple(cfg.train.policy.cameras)
    paths = []
    if cfg.benchmark == "metaworld":
        from policystack.demos import generate_metaworld_demos
        for task in cfg.tasks:
            p = data / f"{task}_{cfg.image_size}px_{cfg.n_demos}.hdf5"
            if not p.exists():
                tmp = p.with_suffix(".partial.hdf5")
                tmp.unlink(missing_ok=True)
                generate_metaworld_demos(task, cfg.n_demos, tmp, cameras=cams, image_size=cfg.image_size,
                                         depth=True, noise=cfg.demo_noise)
                tmp.rename(p)
            paths.append(str(p))
        return tuple(paths)
    from sim.libero_demos import generate_libero_demos
    by_suite: dict[str, list[int]] = {}
    for t in cfg.tasks:
        suite, index = t.split(":")
        by_suite.setdefault(suite, []).append(int(index))
    for suite, idx in by_suite.items():
        sub = data / f"{suite}_{'-'.join(map(str, idx))}_{cfg.image_size}px_{cfg.n_demos}"
        p = sub / f"{suite}.hdf5"
        if not p.exists():
            generate_libero_demos(suite, sub, tasks=idx, n_episodes=cfg.n_demos, cameras=cams,
                                  image_size=cfg.image_size, depth=True, official=False)
        paths.append(str(p))
    return tuple(paths)


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


def stage_metrics(run_dir: Path) -> dict:
    """Offline numbers from the stage checkpoints: DCM vs predict-the-mean, codebook health, losses."""
    out = {}
    for stage in ("rgb", "rgbd", "dcm", "dac", "di2"):
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
    return {"conditions": table,
            "offline": {str(s): stage_metrics(seed_run_dir(cfg, s)) for s in cfg.seeds}}


def plot(summary: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    conds = list(summary["conditions"])
    means = [summary["conditions"][c]["mean"] for c in conds]
    stds = [summary["conditions"][c]["std"] for c in conds]
    fig, ax = plt.subplots(figsize=(1.4 * len(conds) + 1.5, 3.2), dpi=100)
    ax.bar(range(len(conds)), means, yerr=stds, capsize=4, color="#6a9fd4")
    for i, c in enumerate(conds):
        ax.scatter([i] * len(summary["conditions"][c]["per_seed"]), summary["conditions"][c]["per_seed"],
                   color="k", s=10, zorder=3)
    ax.set_xticks(range(len(conds)))
    ax.set_xticklabels([summary["conditions"][c]["label"] for c in conds], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def run_experiment(cfg: DI2ExperimentConfig, figure: str | Path | None = None) -> dict:
    t0 = time.time()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    from policystack import config as cfgmod
    cfgmod.save_json(cfg, out / "experiment_config.json")
    datasets = make_demos(cfg)
    results = []
    for seed in cfg.seeds:
        tcfg = dataclasses.replace(cfg.train, dataset=datasets, output_dir=str(seed_run_dir(cfg, seed)), seed=seed)
        train(tcfg)
        if "rgb_matched" in cfg.conditions:
            t = cfg.train
            train(dataclasses.replace(tcfg, output_dir=str(seed_run_dir(cfg, seed, "rgb_matched")), stages=("rgb",),
                                      steps_rgb=t.steps_rgb + t.steps_rgbd + t.steps_di2))
        for cond in cfg.conditions:
            for task in cfg.tasks:
                results.append(evaluate_condition(cfg, seed, cond, task))
        summary = summarize(cfg, results)
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    summary["wall_s"] = round(time.time() - t0, 1)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    if figure:
        plot(summary, Path(figure), f"DI² on {cfg.benchmark} ({len(cfg.tasks)} tasks, {len(cfg.seeds)} seeds, "
                                    f"{cfg.n_eval_episodes} episodes/task)")
    return summary
