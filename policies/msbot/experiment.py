"""The MS-Bot experiment on the simulated peg-in-keyway task: MS-Bot vs Concat (and MULSA), clean and
with distractors per modality, over seeds; attention mass per modality per stage.

Everything lands in one directory; each piece (demos, a training run, an evaluation) is skipped when
its result already exists, so an interrupted experiment resumes by re-running the same command.

    <out>/demos.hdf5                        expert demonstrations (init_seed 1)
    <out>/runs/<method>_s<seed>/            training runs (train_msbot layout)
    <out>/evals/<method>_s<seed>_<cond>.json  rollouts (init_seed 0, disjoint from the demos)
    <out>/summary.json, <out>/summary.md    success rates mean ± std over seeds
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from policystack.checkpoint import atomic_write_text
from policystack.config import ConfigError, apply_overrides
from policies.base import Policy, load_policy
from policies.common.stats import paired_record

log = logging.getLogger(__name__)

CONDITIONS: dict[str, dict[str, Any]] = {
    "clean": {},
    # the paper's Table 3 tests recolouring ("Color") and clutter ("Mess") separately; "visual" is both
    "color": {"visual_distractor": "color"},
    "mess": {"visual_distractor": "mess"},
    "visual": {"visual_distractor": "both"},
    "audio": {"audio_distractor": "noise"},
    "tactile": {"tactile_distractor": "noise"},
    "all": {"visual_distractor": "both", "audio_distractor": "noise", "tactile_distractor": "noise"},
}
CHECKPOINTS = ("last", "best_acc", "best_loss")
METHODS: dict[str, list[str]] = {
    "msbot": ["policy.type=msbot"],
    "concat": ["policy.type=concat_fusion", "policy.fusion=concat"],
    "mulsa": ["policy.type=concat_fusion", "policy.fusion=mulsa"],
    # variants (documented deviations / add-ons)
    "msbot_pos": ["policy.type=msbot", "policy.token_embeddings=true"],
    "msbot_notok": ["policy.type=msbot", "policy.state_from_tokens=false"],   # query from history + proprio
    "msbot_ogm": ["policy.type=msbot", "policy.balance.method=ogm", "policy.balance.per_stage=true"],
    "concat_ogm": ["policy.type=concat_fusion", "policy.fusion=concat", "policy.balance.method=ogm",
                   "policy.balance.per_stage=true"],
}
ENV_KWARGS = {"audio_window_s": 0.2, "image_size": 64}      # sim demos store the stream in 0.2-s chunks
STAGE_LABELS = ("align (vision)", "keyway (touch)", "insert (audio)")


@dataclass
class ExperimentConfig:
    out: str = "runs/msbot_experiment"
    methods: list = field(default_factory=lambda: ["msbot", "concat"])
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    conditions: list = field(default_factory=lambda: list(CONDITIONS))
    n_demos: int = 80
    dart: float = 0.3                # DART-style lateral perturbations while aligning (recovery data)
    n_eval: int = 30
    # session 1 used 15: MS-Bot's one-query attention had not converged (train CE still falling,
    # 0.88 train accuracy in the align stage vs Concat's 0.99); both methods get the same budget
    epochs: int = 40
    # natural variation of the unneeded senses in demos *and* in every evaluation (the env's
    # ``nuisance``); 0 = the noiseless sim of sessions 1-5. Distractors are applied on top of it.
    nuisance: float = 0.0
    overrides: list = field(default_factory=lambda: ["policy.tokenizer.channels=16"])
    # which checkpoint is evaluated: last (sessions 1-7) or, as the reference deploys, the epoch with the
    # best accuracy (best_acc) or CE (best_loss) on 20 validation demos (init_seed 2, disjoint from the
    # training demos and from the evaluation's init states)
    checkpoint: str = "last"

    def __post_init__(self) -> None:
        # checked before any training: a typo (or an override swallowed by --conditions) would
        # otherwise surface only after the first run had trained
        for what, names, known in (("method", self.methods, METHODS), ("condition", self.conditions, CONDITIONS)):
            bad = [n for n in names if n not in known]
            if bad:
                raise ConfigError(f"unknown {what} {bad[0]!r} (known: {', '.join(known)}); "
                                  "put policy overrides before the options or after '--'")
        if not 0.0 <= self.nuisance <= 1.0:
            raise ConfigError(f"nuisance must be in [0, 1], got {self.nuisance}")
        if self.checkpoint not in CHECKPOINTS:
            raise ConfigError(f"checkpoint must be one of {CHECKPOINTS}, got {self.checkpoint!r}")


def env_kwargs_for(policy: Policy) -> dict[str, Any]:
    """Env settings matching what the policy was trained on (image size, audio chunk, taxels)."""
    from policystack import keys as K
    kw = dict(ENV_KWARGS)
    for f in policy.config.input_spec:
        mod = K.modality_of(f.key)
        if mod == "images":
            kw["image_size"] = tuple(int(v) for v in f.shape[:2])
            kw["cameras"] = tuple(sorted({*kw.get("cameras", ()), K.short_name(f.key)}))
        elif mod == "audio":
            kw["audio_window_s"] = float(f.shape[-1]) / 16000.0
            kw["mic"] = K.short_name(f.key)
        elif mod == "tactile" and len(f.shape) == 3:
            kw["n_taxels"] = int(f.shape[-1])
            kw["tactile_sensor"] = K.short_name(f.key)
    return kw


def rollout(policy: Policy, n_episodes: int, env_kwargs: dict | None = None, start_index: int = 0,
            init_seed: int = 0, progress: bool = True,
            before_step: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Closed-loop episodes; per step records the stage and (when the policy reports them) the
    attention mass per modality and the gate. ``before_step(info)`` runs before each action is chosen
    (diagnostic interventions, e.g. an oracle stage gate, read the env's info there)."""
    from tqdm import tqdm
    from sim.multisensory_env import MultiSensoryEnv

    env = MultiSensoryEnv(init_seed=init_seed, **{**env_kwargs_for(policy), **(env_kwargs or {})})
    env.spec_features.check_satisfies(policy.config.input_spec, who=f"{policy.name} policy", source="env")
    policy.eval()
    episodes, steps = [], []
    t0 = time.time()
    try:
        for i in tqdm(range(n_episodes), desc="rollouts", disable=not progress or None, leave=False):
            obs, info = env.reset(options={"init_state_index": start_index + i})
            policy.reset()
            done, length, max_stage = False, 0, 0
            while not done:
                stage = info["stage"]
                if before_step is not None:
                    before_step(info)
                action = policy.select_action(obs)
                li = policy.last_info
                steps.append({"episode": i, "stage": int(stage),
                              "attention": li["attention_mass"][0].tolist() if "attention_mass" in li else None,
                              "gate": li["gate"][0].tolist() if li.get("gate") is not None else None})
                obs, _, term, trunc, info = env.step(action)
                length += 1
                max_stage = max(max_stage, info["stage"])
                done = term or trunc
            for st in steps:
                if st["episode"] == i:
                    st["success"] = bool(info["is_success"])
            episodes.append({"init_state_index": start_index + i, "success": bool(info["is_success"]),
                             "length": length, "max_stage": int(max_stage), "latched": bool(info["latched"]),
                             "broken": bool(info["broken"])})
    finally:
        env.close()
    return {"success_rate": float(np.mean([e["success"] for e in episodes])), "n_episodes": len(episodes),
            "eval_s": round(time.time() - t0, 1), "episodes": episodes, "steps": steps,
            "modalities": policy.attention_labels() if hasattr(policy, "attention_labels") else []}


def open_loop(policy: Policy, path: str | Path, limit: int | None = None) -> dict[str, Any]:
    """Action (and gate) accuracy on held-out expert episodes, overall and per stage."""
    from policies.msbot.data import MSBotDataset, load_hdf5

    episodes, stages = load_hdf5(path, limit=limit)
    keys = [k for k in policy.config.input_spec.keys()]
    zp = [k for k in keys if policy.config.tokenizer.audio_stream and "audio" in k]
    ds = MSBotDataset(episodes, keys, policy.config.n_obs_steps, policy.codec.primitives.numpy(),
                      policy.config.tokenizer.history_len, stages, policy.config.n_stages, zero_pad_keys=zp)
    policy.eval()
    ok, st, gate_ok = correct_per_sample(policy, ds)
    out = {"action_acc": float(ok.mean()),
           "action_acc_per_stage": [float(ok[st == s].mean()) if np.any(st == s) else float("nan") for s in range(3)]}
    if gate_ok is not None:
        out["gate_acc"] = float(gate_ok.mean())
    return out


def correct_per_sample(policy: Policy, ds, batch: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Open loop over a dataset: per sample, whether the policy's primitive matches the demo's, the stage
    label, and whether the gate names that stage (None for a policy without a gate)."""
    ok, st, gates = [], [], []
    with torch.no_grad():
        for i in range(0, len(ds), batch):
            b = ds.get_batch(np.arange(i, min(len(ds), i + batch)))
            logits, ex = policy.action_logits(b)
            ok.append((logits.argmax(-1) == policy.targets(b)).numpy())
            st.append(b["stage"].numpy())
            if ex.get("gate") is not None:
                gates.append((ex["gate"].argmax(-1) == b["stage"]).numpy())
    return np.concatenate(ok), np.concatenate(st), (np.concatenate(gates) if gates else None)


def attention_by_stage(steps: list[dict], n_stages: int = 3, successful_only: bool = False) -> np.ndarray | None:
    """Mean attention mass (stages x modalities) over steps that carry attention (NaN rows: no steps).
    ``successful_only``: only steps of successful episodes (failed ones idle in off-task states)."""
    rows = [s for s in steps if s.get("attention") is not None and (s.get("success") or not successful_only)]
    if not rows:
        return None
    m = len(rows[0]["attention"])
    out = np.full((n_stages, m), np.nan)
    for s in range(n_stages):
        a = [r["attention"] for r in rows if r["stage"] == s]
        if a:
            out[s] = np.mean(a, 0)
    return out


def _train_run(cfg: ExperimentConfig, method: str, seed: int, demos: Path, out: Path) -> Path:
    """Train (or resume) one run; returns the checkpoint the experiment evaluates."""
    from policies.msbot.train_msbot import MSBotTrainConfig, train

    run = out / "runs" / f"{method}_s{seed}"
    done = run / "DONE"
    if not done.exists():
        val = [f"val_dataset={out / 'val.hdf5'}"] if cfg.checkpoint != "last" else []
        tcfg = apply_overrides(MSBotTrainConfig(), METHODS[method] + [
            f"dataset={demos}", f"output_dir={run}", f"seed={seed}", f"epochs={cfg.epochs}",
            f"max_episodes={cfg.n_demos}", "policy.tokenizer.audio_stream=true"] + val + list(cfg.overrides)
            + (["resume=true"] if (run / "checkpoints" / "last").exists() else []))
        train(tcfg, progress=False)
        atomic_write_text(done, "ok\n")
    ckpt = run / "checkpoints" / cfg.checkpoint / "pretrained"
    if not ckpt.exists():
        raise ConfigError(f"{run} has no {cfg.checkpoint} checkpoint (trained without validation demos); "
                          "use --checkpoint last or another --out")
    return ckpt


def _check_recorded_nuisance(out: Path, nuisance: float) -> None:
    """Refuse to resume a directory whose demos were recorded at another ``nuisance`` (runs, evals and
    the summary would silently mix two settings); demos written before the option existed had none."""
    import h5py
    path = out / "demos.hdf5"
    if not (out / "demos.DONE").exists() or not path.exists():
        return
    with h5py.File(path, "r") as f:
        recorded = json.loads(f["data"].attrs["env_args"])["env_kwargs"].get("nuisance", 0.0)
    if recorded != nuisance:
        raise ConfigError(f"{out} holds demos recorded with nuisance={recorded}, not {nuisance}; "
                          "use another --out or the same --nuisance")


def run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    from sim.multisensory_expert import generate_demos

    torch.set_num_threads(1)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    demos = out / "demos.hdf5"
    env_kwargs = {**ENV_KWARGS, "nuisance": cfg.nuisance}
    _check_recorded_nuisance(out, cfg.nuisance)
    if not (out / "demos.DONE").exists():
        generate_demos(demos, cfg.n_demos, init_seed=1, env_kwargs=env_kwargs, dart_prob=cfg.dart,
                       progress=False)
        atomic_write_text(out / "demos.DONE", "ok\n")
    heldout = out / "heldout.hdf5"
    if not (out / "heldout.DONE").exists():
        generate_demos(heldout, 20, init_seed=0, env_kwargs=env_kwargs, progress=False)
        atomic_write_text(out / "heldout.DONE", "ok\n")
    if cfg.checkpoint != "last" and not (out / "val.DONE").exists():
        generate_demos(out / "val.hdf5", 20, init_seed=2, env_kwargs=env_kwargs, progress=False)
        atomic_write_text(out / "val.DONE", "ok\n")
    for method in cfg.methods:
        for seed in cfg.seeds:
            run = _train_run(cfg, method, seed, demos, out)
            policy = None
            ol_path = out / "openloop" / f"{method}_s{seed}.json"
            if not ol_path.exists():
                policy = load_policy(run)
                res = open_loop(policy, heldout)
                res.update(method=method, seed=seed, checkpoint=cfg.checkpoint)
                ol_path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(ol_path, json.dumps(res))
            for cond in cfg.conditions:
                path = out / "evals" / f"{method}_s{seed}_{cond}.json"
                if path.exists():
                    had = json.loads(path.read_text()).get("checkpoint", "last")
                    if had != cfg.checkpoint:
                        raise ConfigError(f"{path} evaluated the {had} checkpoint, not {cfg.checkpoint}; "
                                          "use another --out")
                    continue
                policy = policy or load_policy(run)
                res = rollout(policy, cfg.n_eval, {**CONDITIONS[cond], "nuisance": cfg.nuisance}, progress=False)
                res.update(method=method, seed=seed, condition=cond, checkpoint=cfg.checkpoint)
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(path, json.dumps(res))
                log.info("%s seed %d %s: success %.2f (%.0f s)", method, seed, cond, res["success_rate"],
                         res["eval_s"])
    return summarize(out)


def summarize(out: str | Path) -> dict[str, Any]:
    """Aggregate ``<out>/evals`` into summary.json / summary.md and the figures."""
    out = Path(out)
    evals = [json.loads(p.read_text()) for p in sorted((out / "evals").glob("*.json"))]
    table: dict[str, dict[str, list[float]]] = {}
    for e in evals:
        table.setdefault(e["method"], {}).setdefault(e["condition"], []).append(e["success_rate"])
    table = {m: table[m] for m in sorted(table, key=lambda m: (list(METHODS).index(m) if m in METHODS else 99, m))}
    conds = [c for c in CONDITIONS if any(c in v for v in table.values())]
    summary = {"success": {m: {c: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n_seeds": len(v),
                                   "per_seed": v} for c, v in d.items()} for m, d in table.items()}}
    for name, only_ok in (("attention_by_stage", True), ("attention_by_stage_all_steps", False)):
        att = {}
        for m in table:
            for c in conds:
                mats = [attention_by_stage(e["steps"], successful_only=only_ok) for e in evals
                        if e["method"] == m and e["condition"] == c]
                mats = [a for a in mats if a is not None]
                if mats:
                    with warnings.catch_warnings():      # stages no episode reached stay NaN
                        warnings.simplefilter("ignore", RuntimeWarning)
                        att.setdefault(m, {})[c] = np.nanmean(np.stack(mats), 0).tolist()
                    summary.setdefault("modalities", next(e["modalities"] for e in evals if e["method"] == m))
        summary[name] = att
    gates = {}
    for m in table:
        rows = [s for e in evals if e["method"] == m and e["condition"] == "clean" for s in e["steps"]
                if s.get("gate") is not None and s.get("success")]
        if rows:
            gates[m] = float(np.mean([np.argmax(s["gate"]) == s["stage"] for s in rows]))
    summary["gate_acc_successful_clean"] = gates
    openloop = [json.loads(p.read_text()) for p in sorted((out / "openloop").glob("*.json"))]
    if openloop:
        ol: dict[str, dict] = {}
        for r in openloop:
            d = ol.setdefault(r["method"], {})
            for k, v in r.items():
                if k not in ("method", "seed", "checkpoint"):
                    d.setdefault(k, []).append(v)
        summary["open_loop_heldout"] = {m: {k: np.mean(v, 0).tolist() for k, v in d.items()} for m, d in ol.items()}
    failures = {}
    for m in table:
        for c in conds:
            eps = [x for e in evals if e["method"] == m and e["condition"] == c for x in e["episodes"]
                   if not x["success"]]
            failures.setdefault(m, {})[c] = {
                "stuck_align": sum(x["max_stage"] == 0 for x in eps),
                "stuck_keyway": sum(x["max_stage"] == 1 for x in eps),
                "insert_no_click_or_timeout": sum(x["max_stage"] == 2 and not x["broken"] for x in eps),
                "broke_latch": sum(x["broken"] for x in eps)}
    summary["failures"] = failures
    training = {}
    for run in sorted((out / "runs").glob("*_s*")):
        metrics = run / "metrics.jsonl"
        if metrics.exists() and metrics.read_text().strip():
            last = json.loads(metrics.read_text().strip().splitlines()[-1])
            training[run.name] = {k: last[k] for k in ("epoch", "time_s", "ce", "acc", "gate_acc") if k in last}
    summary["training_final_epoch"] = training
    lines = ["| method | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
    for m, d in table.items():
        cells = [f"{100 * np.mean(d[c]):.1f} ± {100 * np.std(d[c]):.1f}" if c in d else "–" for c in conds]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    summary["paired_vs_msbot"] = _paired_vs_msbot(evals, conds)
    if summary["paired_vs_msbot"]:
        lines += ["", "MS-Bot minus each method, success points paired by seed (wins/ties/losses, one-sided "
                  "sign-flip p of MS-Bot ahead):", "",
                  "| msbot minus | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
        for m, d in summary["paired_vs_msbot"].items():
            cells = [f"{100 * d[c]['mean']:+.1f} ({d[c]['wins']}/{d[c]['ties']}/{d[c]['losses']}, "
                     f"p {d[c]['p']:.2f})" if c in d else "–" for c in conds]
            lines.append(f"| {m} ({len(next(iter(d.values()))['seeds'])} seeds) | " + " | ".join(cells) + " |")
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    plot_summary(summary, out)
    return summary


def _paired_vs_msbot(evals: list[dict], conds: list[str]) -> dict[str, dict[str, dict]]:
    """MS-Bot minus every other method per condition, over the seeds both were evaluated on."""
    by_seed: dict[str, dict[str, dict[int, float]]] = {}
    for e in evals:
        by_seed.setdefault(e["method"], {}).setdefault(e["condition"], {})[e["seed"]] = e["success_rate"]
    if "msbot" not in by_seed:
        return {}
    out: dict[str, dict[str, dict]] = {}
    for m in by_seed:
        if m == "msbot":
            continue
        for c in conds:
            rec = paired_record(by_seed["msbot"].get(c, {}), by_seed[m].get(c, {}))
            if rec is not None:
                out.setdefault(m, {})[c] = rec
    return out


def plot_summary(summary: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    succ = summary["success"]
    if succ:
        methods = list(succ)
        conds = [c for c in CONDITIONS if any(c in succ[m] for m in methods)]
        fig, ax = plt.subplots(figsize=(7, 3))
        w = 0.8 / len(methods)
        for i, m in enumerate(methods):
            mu = [100 * succ[m].get(c, {}).get("mean", np.nan) for c in conds]
            sd = [100 * succ[m].get(c, {}).get("std", 0.0) for c in conds]
            ax.bar(np.arange(len(conds)) + i * w, mu, w, yerr=sd, capsize=3, label=m)
        ax.set_xticks(np.arange(len(conds)) + w * (len(methods) - 1) / 2, conds)
        ax.set_ylabel("success %"), ax.set_ylim(0, 105), ax.legend(), ax.grid(axis="y", alpha=0.3)
        ax.set_title("peg-in-keyway (sim): success, mean ± std over seeds")
        fig.tight_layout()
        fig.savefig(out / "msbot_success.png", dpi=90)
        plt.close(fig)
    att = {m: d for m, d in summary.get("attention_by_stage", {}).items() if "clean" in d}
    if att:
        labels = [_label(x) for x in summary.get("modalities", [])]
        fig, axes = plt.subplots(1, len(att), figsize=(4.2 * len(att), 3.2), squeeze=False)
        for ax, (m, by_cond) in zip(axes[0], att.items()):
            a = np.asarray(by_cond["clean"])
            w = 0.8 / a.shape[1]
            for j in range(a.shape[1]):
                ax.bar(np.arange(a.shape[0]) + j * w, a[:, j], w, label=labels[j] if j < len(labels) else str(j))
            ax.set_xticks(np.arange(a.shape[0]) + w * (a.shape[1] - 1) / 2,
                          [s.replace(" (", "\n(") for s in STAGE_LABELS[:a.shape[0]]], fontsize=8)
            n = summary["success"].get(m, {}).get("clean", {}).get("n_seeds", 0)
            ax.set_ylim(0, 1), ax.grid(axis="y", alpha=0.3), ax.set_title(f"{m} ({n} seed(s))", fontsize=9)
        axes[0][0].set_ylabel("attention mass (successful clean rollouts)", fontsize=8)
        axes[0][0].legend(fontsize=8)
        fig.suptitle("where the fusion query looks, per stage (stage: the sense it needs)", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "msbot_attention.png", dpi=80)
        plt.close(fig)


def _label(name: str) -> str:
    """'mic' -> 'audio (mic)' for the sim's sensors; other names unchanged."""
    return {"mic": "audio (mic)", "wrist": "vision (wrist)", "front": "vision (front)",
            "fingers": "touch (fingers)"}.get(name, name)
