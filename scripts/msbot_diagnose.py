#!/usr/bin/env python
"""Diagnostics for the MS-Bot experiment (runs of ``scripts/msbot_experiment.py``).

    probe   eval-mode action accuracy per stage on the first training demos: does a run fit its data?
    oracle  closed-loop rollouts with the stage gate replaced by the true stage (one-hot from the env):
            how much of a failure comes from the gate misreading the stage?
    ablate  (MS-Bot) open-loop accuracy per stage on the held-out demos with one modality's tokens removed
            from the fusion attention, and also from the state token (its tokens -> their batch mean):
            which sense does each stage actually use (vs. attention mass)?
    swap    (MS-Bot) the held-out demos re-recorded with a distractor (same trajectories: a distractor
            that only changes what a sense records, e.g. ``color``): accuracy per stage clean, distracted,
            and distracted with the state token (query, gate) or the attended contents taken from the
            clean recording: through which path does the corrupted sense cause the errors?
    route   (MS-Bot) open-loop accuracy per stage when the decision can only travel through the query (every
            key/value token -> its batch mean, the state token built from the real tokens) or only through
            the attended contents (the state token built from batch-mean tokens); and the attention mass
            per head and stage: is the attention pattern a modality selection or a code for the query?

    MUJOCO_GL=egl nice -n 10 .venv/bin/python scripts/msbot_diagnose.py probe --out runs/msbot_exp \\
        --methods msbot concat --seeds 0 1 2
    MUJOCO_GL=egl nice -n 10 .venv/bin/python scripts/msbot_diagnose.py oracle --out runs/msbot_exp2 \\
        --seeds 0 1 2 --conditions clean visual audio tactile
    MUJOCO_GL=egl nice -n 10 .venv/bin/python scripts/msbot_diagnose.py ablate --out runs/msbot_exp2 --seeds 0 1 2
    MUJOCO_GL=egl nice -n 10 .venv/bin/python scripts/msbot_diagnose.py route --out runs/msbot_nuis --seeds 0 1 2 3 4

Results are printed and written to ``<out>/diagnose/*.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from policies.base import load_policy
from policies.msbot.data import MSBotDataset, executed_of, load_hdf5
from policies.msbot.experiment import CONDITIONS, correct_per_sample, rollout
from policystack.checkpoint import atomic_write_text


def probe(run: Path, demos: Path, n_demos: int) -> dict:
    policy = load_policy(run)
    policy.eval()
    episodes, stages = load_hdf5(demos, limit=n_demos)
    cfg = policy.config
    ds = MSBotDataset(episodes, list(cfg.input_spec.keys()), cfg.n_obs_steps, policy.codec.primitives.numpy(),
                      cfg.tokenizer.history_len, stages, getattr(cfg, "n_stages", 3),
                      layout=policy.tokenizer.layout(), executed=executed_of(episodes))
    ok, st, _ = correct_per_sample(policy, ds, batch=64)
    return {"acc": float(ok.mean()), "acc_per_stage": [float(ok[st == s].mean()) for s in range(3)]}


def _policy_and_heldout(run: Path, demos: Path):
    """The run's policy (eval mode) and the held-out demos as its dataset."""
    policy = load_policy(run)
    policy.eval()
    episodes, stages = load_hdf5(demos)
    cfg = policy.config
    ds = MSBotDataset(episodes, list(cfg.input_spec.keys()), cfg.n_obs_steps, policy.codec.primitives.numpy(),
                      cfg.tokenizer.history_len, stages, cfg.n_stages, layout=policy.tokenizer.layout())
    return policy, ds


def ablate(run: Path, demos: Path) -> dict:
    """Held-out open-loop accuracy per stage with each modality masked out of the attention (keys)."""
    policy, ds = _policy_and_heldout(run, demos)
    fuse = policy.fuse
    out = {}
    runs = [(None, False)] + [(k, full) for full in (False, True) for k in policy.modalities]
    for drop, full in runs:
        def masked_fuse(tokens, cond, hist, modality_keep, batch, drop=drop, full=full):
            b = next(iter(tokens.values())).shape[0]
            keep = {k: torch.full((b,), k != drop) for k in policy.modalities}
            if full:    # also out of the state token (query, gate): its tokens -> their batch mean
                tokens = {**tokens, drop: tokens[drop].mean((0, 1), keepdim=True).expand_as(tokens[drop])}
            return fuse(tokens, cond, hist, keep if drop else None, batch)
        policy.fuse = masked_fuse
        ok, st, _ = correct_per_sample(policy, ds, batch=64)
        name = "none" if drop is None else drop.rsplit(".", 1)[-1] + (" (attention+state token)" if full else " (attention)")
        out[name] = [float(ok[st == s].mean()) for s in range(3)]
    policy.fuse = fuse
    return out


def _spliced_fuse(policy, query=None, contents=None):
    """``policy.fuse`` with the state token (query, gate) built from ``query(tokens)`` and the attention
    over ``contents(tokens)``; either left out uses the real tokens."""
    fuse, state_token = policy.fuse, policy.state_token

    def spliced(tokens, cond, hist, modality_keep, batch):
        q = query(tokens) if query else tokens
        policy.state_token = lambda _t, c, h: state_token(q, c, h)
        try:
            return fuse(contents(tokens) if contents else tokens, cond, hist, modality_keep, batch)
        finally:
            policy.state_token = state_token
    return spliced


def route(run: Path, demos: Path) -> dict:
    """Which path carries each stage's decision: the query (state token) or the attended token contents."""
    policy, ds = _policy_and_heldout(run, demos)
    cfg = policy.config
    fuse, fusion_forward = policy.fuse, policy.fusion.forward
    heads: list[torch.Tensor] = []

    def mean_tokens(tokens):
        return {k: v.mean((0, 1), keepdim=True).expand_as(v) for k, v in tokens.items()}

    def recording_fusion(query, feats, token_keep=None, generator=None):
        u, att = fusion_forward(query, feats, token_keep, generator)
        heads.append(att.detach())
        return u, att

    query_only = _spliced_fuse(policy, contents=mean_tokens)       # contents constant, query real
    contents_only = _spliced_fuse(policy, query=mean_tokens)       # query from mean tokens, contents real

    out: dict = {}
    for name, f in (("full", fuse), ("query only", query_only), ("contents only", contents_only)):
        policy.fuse = f
        policy.fusion.forward = recording_fusion if name == "full" else fusion_forward
        ok, st, _ = correct_per_sample(policy, ds, batch=64)
        out[name] = [float(ok[st == s].mean()) for s in range(cfg.n_stages)]
    policy.fuse, policy.fusion.forward = fuse, fusion_forward
    att = torch.cat(heads).numpy()                                      # (N, heads, M*T)
    m = len(policy.modalities)
    mass = att.reshape(att.shape[0], att.shape[1], m, -1).sum(-1)       # (N, heads, M)
    out["modalities"] = [k.rsplit(".", 1)[-1] for k in policy.modalities]
    out["mass_per_head"] = [mass[st == s].mean(0).round(3).tolist() for s in range(cfg.n_stages)]
    out["mass"] = [mass[st == s].mean((0, 1)).round(3).tolist() for s in range(cfg.n_stages)]
    out["max_weight"] = float(att.max(-1).mean())
    return out


def swap(run: Path, clean: Path, distracted: Path, batch: int = 64) -> dict:
    """Accuracy per stage when the state token or the attended contents come from the clean recording
    of the same held-out trajectories while the rest sees the distracted one."""
    policy, ds_clean = _policy_and_heldout(run, clean)
    _, ds_dist = _policy_and_heldout(run, distracted)
    if len(ds_clean) != len(ds_dist):
        raise ValueError(f"{clean} and {distracted} do not hold the same trajectories "
                         f"({len(ds_clean)} vs {len(ds_dist)} samples)")
    fuse, n_stages = policy.fuse, policy.config.n_stages
    res: dict[str, list] = {k: [] for k in ("clean", "distracted", "query clean", "contents clean")}
    stages = []
    with torch.no_grad():
        for i in range(0, len(ds_clean), batch):
            idx = np.arange(i, min(len(ds_clean), i + batch))
            bc, bd = ds_clean.get_batch(idx), ds_dist.get_batch(idx)
            target = policy.targets(bc)
            if not torch.equal(target, policy.targets(bd)):
                raise ValueError("the two recordings' actions differ: the distractor changed the trajectories")
            tok_c = policy._encode(bc, None)[0]
            for name, b, f in (("clean", bc, fuse), ("distracted", bd, fuse),
                               ("query clean", bd, _spliced_fuse(policy, query=lambda _t: tok_c)),
                               ("contents clean", bd, _spliced_fuse(policy, contents=lambda _t: tok_c))):
                policy.fuse = f
                try:
                    logits, _ = policy.action_logits(b)
                finally:
                    policy.fuse = fuse
                res[name].append((logits.argmax(-1) == target).numpy())
            stages.append(bc["stage"].numpy())
    st = np.concatenate(stages)
    return {k: [float(np.concatenate(v)[st == s].mean()) for s in range(n_stages)] for k, v in res.items()}


def plot_ablation(res: dict, path: Path) -> None:
    """Bars: drop of held-out accuracy per stage when a modality is removed (mean over seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from policies.msbot.experiment import STAGE_LABELS, _label

    names = [k for k in next(iter(res.values())) if k != "none"]
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.2), sharey=True)
    for ax, mode in zip(axes, ("(attention)", "(attention+state token)")):
        cols = [n for n in names if n.endswith(mode)]
        w = 0.8 / len(cols)
        for j, n in enumerate(cols):
            drop = np.mean([np.asarray(r["none"]) - np.asarray(r[n]) for r in res.values()], 0)
            ax.bar(np.arange(3) + j * w, drop, w, label=_label(n.split(" ")[0]))
        ax.set_xticks(np.arange(3) + w * (len(cols) - 1) / 2, [s.replace(" (", "\n(") for s in STAGE_LABELS],
                      fontsize=8)
        ax.set_title(f"modality removed from the {mode.strip('()').replace('+', ' + ')}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("held-out accuracy drop", fontsize=8)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"MS-Bot: which sense each stage's decision uses ({len(res)} seed(s))", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


class OracleGate:
    """Replaces ``policy.stage`` 's gate by a one-hot of the env's current stage (same z* formula)."""

    def __init__(self, policy):
        self.stage_module = policy.stage
        self.current = 0
        self._orig = policy.stage.forward
        policy.stage.forward = self.forward

    def forward(self, z: torch.Tensor):
        m = self.stage_module
        g = torch.nn.functional.one_hot(torch.full((z.shape[0],), self.current, dtype=torch.long),
                                        m.tokens.shape[0]).float().to(z.device)
        return m.beta * z + (1.0 - m.beta) * g @ m.tokens, g

    def before_step(self, info: dict) -> None:
        self.current = int(info["stage"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("probe", "oracle", "ablate", "route", "swap"))
    p.add_argument("--distracted", default=None, help="swap: held-out demos re-recorded with a distractor")
    p.add_argument("--out", required=True, help="experiment directory")
    p.add_argument("--methods", nargs="+", default=["msbot"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--conditions", nargs="+", default=["clean", "visual", "audio", "tactile"])
    p.add_argument("--n-eval", type=int, default=30)
    p.add_argument("--n-demos", type=int, default=20, help="probe: training demos to score")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    (out / "diagnose").mkdir(parents=True, exist_ok=True)
    if args.what == "probe":
        res = {}
        for m in args.methods:
            for s in args.seeds:
                r = probe(out / "runs" / f"{m}_s{s}", out / "demos.hdf5", args.n_demos)
                res[f"{m}_s{s}"] = r
                print(f"{m} seed {s}: train-demo accuracy {r['acc']:.3f}, per stage "
                      + " / ".join(f"{a:.3f}" for a in r["acc_per_stage"]), flush=True)
        atomic_write_text(out / "diagnose" / "probe.json", json.dumps(res, indent=1))
        return 0
    if args.what == "ablate":
        res = {}
        for s in args.seeds:
            r = res[f"msbot_s{s}"] = ablate(out / "runs" / f"msbot_s{s}", out / "heldout.hdf5")
            print(f"msbot seed {s}: held-out accuracy per stage with a modality removed from the attention: "
                  + "; ".join(f"{k}: " + " / ".join(f"{a:.3f}" for a in v) for k, v in r.items()), flush=True)
        atomic_write_text(out / "diagnose" / "ablate.json", json.dumps(res, indent=1))
        plot_ablation(res, out / "msbot_ablation.png")
        return 0
    if args.what == "swap":
        if not args.distracted:
            p.error("swap needs --distracted (held-out demos re-recorded with a distractor)")
        res = {}
        for s in args.seeds:
            r = res[f"msbot_s{s}"] = swap(out / "runs" / f"msbot_s{s}", out / "heldout.hdf5", Path(args.distracted))
            print(f"msbot seed {s}: held-out accuracy per stage " + "; ".join(
                f"{k}: " + " / ".join(f"{a:.3f}" for a in v) for k, v in r.items()), flush=True)
        atomic_write_text(out / "diagnose" / f"swap_{Path(args.distracted).stem}.json", json.dumps(res, indent=1))
        return 0
    if args.what == "route":
        res = {}
        for s in args.seeds:
            r = res[f"msbot_s{s}"] = route(out / "runs" / f"msbot_s{s}", out / "heldout.hdf5")
            print(f"msbot seed {s}: held-out accuracy per stage " + "; ".join(
                f"{k}: " + " / ".join(f"{a:.3f}" for a in r[k]) for k in ("full", "query only", "contents only"))
                + f"; attention mass per stage (heads averaged, {'/'.join(r['modalities'])}) {r['mass']}"
                + f"; per head {r['mass_per_head']}; mean max weight {r['max_weight']:.2f}", flush=True)
        atomic_write_text(out / "diagnose" / "route.json", json.dumps(res, indent=1))
        return 0
    for m in args.methods:
        for s in args.seeds:
            for c in args.conditions:
                path = out / "diagnose" / f"oracle_gate_{m}_s{s}_{c}.json"
                if path.exists():
                    res = json.loads(path.read_text())
                else:
                    policy = load_policy(out / "runs" / f"{m}_s{s}")
                    oracle = OracleGate(policy)
                    res = rollout(policy, args.n_eval, CONDITIONS[c], progress=False,
                                  before_step=oracle.before_step)
                    res.update(method=m, seed=s, condition=c, intervention="oracle_gate")
                    atomic_write_text(path, json.dumps(res))
                print(f"{m} seed {s} {c}: success with oracle gate {100 * res['success_rate']:.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
