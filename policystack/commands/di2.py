"""`policystack di2`: DI² staged training, RGB-only evaluation and the comparison experiment."""

NAME = "di2"
HELP = "DI² (depth injection, RGB-only deployment): train the stages, evaluate, run the experiment"
DESCRIPTION = """\
DI² trains one model in stages (specs/koi_di2.md §2.4): pretrain (optional, with pretrain_dataset:
an RGB policy on other tasks, the stand-in for the pre-trained RoboFlamingo), rgb (RGB-RF),
rgbd (stage 0, + depth branch), dcm (stage 1, Depth Completion Module), dac (stage 2, Depth-Aware
Codebook), di2 (stage 3, policy on quantised depth tokens). Checkpoints:
<output_dir>/stages/<stage>/pretrained. Re-running the same command resumes: finished stages are
loaded, an interrupted stage continues from its last periodic checkpoint.

examples:
  policystack di2 train dataset=data/a.hdf5,data/b.hdf5 output_dir=runs/di2 \\
      policy.cameras=corner2,topview policy.text_encoder=minilm steps_rgb=2000
  policystack di2 train --config runs/di2/train_config.json          # resume
  policystack di2 eval runs/di2 --stage di2 --env MetaWorld-drawer-close-v3 --episodes 10 \\
      --env-arg image_size=64 --env-arg cameras=corner2,topview
  policystack di2 experiment --figure docs/results/figures/di2_metaworld.png \\
      benchmark=metaworld seeds=0,1,2 train.steps_rgb=1500
  policystack di2 experiment benchmark=libero tasks=libero_object:0,libero_object:1 \\
      train.policy.cameras=agentview,wrist
"""


def add_arguments(p) -> None:
    from policystack.commands._common import add_overrides
    from policies.di2.experiment import DI2ExperimentConfig
    from policies.di2.train_di2 import DI2TrainConfig
    import argparse
    sub = p.add_subparsers(dest="di2_cmd", metavar="<command>", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    t = sub.add_parser("train", help="run the training stages in order (resumable)", formatter_class=raw)
    t.add_argument("--config", help="start from a saved train_config.json (overrides apply on top)")
    add_overrides(t, DI2TrainConfig)
    e = sub.add_parser("eval", help="closed-loop success of one stage checkpoint with a chosen depth source")
    e.add_argument("checkpoint", help="a DI² run dir (with --stage) or a pretrained dir")
    e.add_argument("--stage", default="di2", help="stage checkpoint inside a run dir (default: di2)")
    e.add_argument("--depth-source", default=None,
                   help="none | gt | gt_vq | dcm | dcm_vq (default: the checkpoint's own)")
    e.add_argument("--env", required=True, help="env id or short name")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--start-index", type=int, default=0)
    e.add_argument("--env-arg", action="append", default=[], metavar="name=value",
                   help="env constructor argument (repeatable): image_size=64, cameras=a,b, max_episode_steps=150")
    e.add_argument("--video-dir", default=None)
    x = sub.add_parser("experiment", help="RGB-RF vs RGB-D-RF without depth vs DCM w/o DAC vs DI², over seeds",
                       formatter_class=raw)
    x.add_argument("--config", help="start from a saved experiment_config.json")
    x.add_argument("--figure", default=None, help="bar chart PNG of the success rates (+ held-out action loss)")
    x.add_argument("--summary-only", action="store_true",
                   help="train and evaluate nothing: table the cached results (seeds run apart, or a run cut short)")
    add_overrides(x, DI2ExperimentConfig)


def _env_kwargs(items: list[str]) -> dict:
    from policystack.errors import ConfigError
    out: dict = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"--env-arg {it!r} must look like name=value")
        k, v = it.split("=", 1)
        if k == "cameras":
            out[k] = tuple(c for c in v.split(",") if c)
        elif v.lower() in ("true", "false"):
            out[k] = v.lower() == "true"
        else:
            try:
                out[k] = int(v)
            except ValueError:
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
    return out


def run(args) -> int:
    import json
    from pathlib import Path

    from policystack import config as cfgmod
    if args.di2_cmd == "train":
        from policies.di2.train_di2 import DI2TrainConfig, train
        base = cfgmod.load_json(DI2TrainConfig, args.config) if args.config else None
        cfg = cfgmod.apply_overrides(base if base is not None else DI2TrainConfig(), args.overrides)
        run_dir = train(cfg)
        for stage in cfg.stages:
            print(f"{stage:>5}: {run_dir / 'stages' / stage / 'pretrained'}")
        print(f"stage curves: {run_dir / 'stages.png'}")
        return 0
    if args.di2_cmd == "eval":
        from policies.base import load_policy
        from policystack.evaluation import evaluate
        ckpt = Path(args.checkpoint)
        if (ckpt / "stages" / args.stage / "pretrained").is_dir():
            ckpt = ckpt / "stages" / args.stage / "pretrained"
        policy = load_policy(ckpt)
        if args.depth_source:
            policy.set_depth_source(args.depth_source)
        kw = _env_kwargs(args.env_arg)
        kw.setdefault("cameras", tuple(policy.config.cameras))
        kw.setdefault("depth", policy.config.uses_depth_input)
        report = evaluate(policy, args.env, n_episodes=args.episodes, env_kwargs=kw,
                          start_index=args.start_index, video_dir=args.video_dir)
        print(json.dumps({k: report[k] for k in ("env", "n_episodes", "pc_success", "avg_length", "eval_s")}))
        return 0
    from policies.di2.experiment import DI2ExperimentConfig, run_experiment
    base = cfgmod.load_json(DI2ExperimentConfig, args.config) if args.config else None
    cfg = cfgmod.apply_overrides(base if base is not None else DI2ExperimentConfig(), args.overrides)
    summary = run_experiment(cfg, figure=args.figure, summary_only=args.summary_only)
    print(f"{'condition':<28} {'success':>7} {'std':>6}  {'per seed':<22} held-out action loss (mean ± std)")
    for c, r in summary["conditions"].items():
        loss = (f"{r['heldout_loss_mean']:.4f} ± {r['heldout_loss_std']:.4f}" if "heldout_loss_mean" in r else "-")
        print(f"{r['label']:<28} {r['mean']:7.3f} {r['std']:6.3f}  {str([round(s, 3) for s in r['per_seed']]):<22} {loss}")
    print(f"summary: {Path(cfg.output_dir) / 'summary.json'}")
    return 0
