"""`policystack msbot`: MS-Bot on the multi-sensory peg-in-keyway task (and its baselines).

    policystack msbot demos --out demos.hdf5 [--episodes 80] [--dart 0.2]     expert demos with stage labels
    policystack msbot train dataset=demos.hdf5 output_dir=runs/msbot [name=value ...]
    policystack msbot train policy.type=concat_fusion dataset=... output_dir=...   (Concat / MULSA baseline)
    policystack msbot eval --policy runs/msbot --episodes 30 [--condition audio]
    policystack msbot experiment --out runs/msbot_exp [--seeds 0 1 2] [--methods msbot concat]
    policystack msbot summarize --out runs/msbot_exp                          re-aggregate table + plots

train overrides set MSBotTrainConfig fields (dataset_format=msbot reads MS-Bot's own folders,
dataset_format=rig our sensor recordings). Conditions: clean, visual, audio, tactile, all.
"""

from __future__ import annotations

import json

NAME = "msbot"
HELP = "MS-Bot (stage-guided multi-sensory fusion): demos, training, evaluation, the sim experiment"
DESCRIPTION = __doc__


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="msbot_cmd", metavar="<step>")
    de = sub.add_parser("demos", help="scripted-expert demonstrations of the multi-sensory task")
    de.add_argument("--out", required=True, help="HDF5 file to write")
    de.add_argument("--episodes", type=int, default=80)
    de.add_argument("--init-seed", type=int, default=1, help="init-state seed (evaluation uses 0)")
    de.add_argument("--dart", type=float, default=0.2, help="prob. of a random lateral move while aligning")
    de.add_argument("--image-size", type=int, default=64)
    de.add_argument("--nuisance", type=float, default=0.0,
                    help="natural variation of the unneeded senses per episode, in [0, 1] (env option)")
    de.add_argument("--audio-chunk", type=float, default=0.2,
                    help="seconds of audio per stored step (0.2 = the control step: compact, stream mode)")
    tr = sub.add_parser("train", help="train MS-Bot (or policy.type=concat_fusion) with MS-Bot's procedure")
    tr.add_argument("--resume", action="store_true")
    tr.add_argument("overrides", nargs="*", help="MSBotTrainConfig overrides name=value")
    ev = sub.add_parser("eval", help="closed-loop rollouts on the sim task")
    ev.add_argument("--policy", required=True, help="run dir or pretrained dir")
    ev.add_argument("--episodes", type=int, default=30)
    ev.add_argument("--condition", default="clean",
                    help="clean | color | mess | visual (color + mess) | audio | tactile | all")
    ev.add_argument("--start-index", type=int, default=0)
    ev.add_argument("--nuisance", type=float, default=0.0, help="as the demos the policy was trained on")
    ev.add_argument("--out", default=None, help="write the result JSON here")
    ex = sub.add_parser("experiment", help="MS-Bot vs Concat over seeds, clean and with distractors")
    ex.add_argument("--out", required=True)
    ex.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ex.add_argument("--methods", nargs="+", default=["msbot", "concat"])
    ex.add_argument("--conditions", nargs="+", default=None)
    ex.add_argument("--n-demos", type=int, default=80)
    ex.add_argument("--n-eval", type=int, default=30)
    ex.add_argument("--epochs", type=int, default=40)
    ex.add_argument("--nuisance", type=float, default=0.0,
                    help="natural variation of the unneeded senses in demos and evaluations, in [0, 1]")
    ex.add_argument("--checkpoint", default="last", choices=("last", "best_acc", "best_loss"),
                    help="checkpoint to evaluate; best_*: chosen on 20 validation demos, as the reference")
    ex.add_argument("overrides", nargs="*", help="extra MSBotTrainConfig overrides for every run")
    su = sub.add_parser("summarize", help="aggregate an experiment directory (table, plots)")
    su.add_argument("--out", required=True)
    p.epilog = "MSBotTrainConfig fields:\n" + "\n".join(_describe())


def _describe() -> list[str]:
    from policystack.config import describe
    from policies.msbot.train_msbot import MSBotTrainConfig
    return describe(MSBotTrainConfig)


def run(args) -> int:
    import torch
    torch.set_num_threads(1)
    cmd = getattr(args, "msbot_cmd", None)
    if cmd == "demos":
        from sim.multisensory_expert import generate_demos
        path = generate_demos(args.out, args.episodes, init_seed=args.init_seed, dart_prob=args.dart,
                              env_kwargs={"image_size": args.image_size, "audio_window_s": args.audio_chunk,
                                          "nuisance": args.nuisance})
        print(f"wrote {args.episodes} episodes to {path}")
        return 0
    if cmd == "train":
        from policystack.config import apply_overrides
        from policies.msbot.train_msbot import MSBotTrainConfig, train
        ov = list(args.overrides) + (["resume=true"] if args.resume else [])
        run_dir = train(apply_overrides(MSBotTrainConfig(), ov))
        print(f"trained: {run_dir}/checkpoints/last/pretrained")
        return 0
    if cmd == "eval":
        from policies.base import load_policy
        from policies.msbot.experiment import CONDITIONS, rollout
        from policystack.errors import UnknownNameError
        if args.condition not in CONDITIONS:
            raise UnknownNameError(f"unknown condition {args.condition!r}; choose from {sorted(CONDITIONS)}")
        res = rollout(load_policy(args.policy), args.episodes,
                      {**CONDITIONS[args.condition], "nuisance": args.nuisance}, args.start_index)
        print(f"{args.condition}: success {100 * res['success_rate']:.1f}% over {res['n_episodes']} episodes "
              f"({res['eval_s']} s)")
        if args.out:
            from pathlib import Path
            from policystack.checkpoint import atomic_write_text
            atomic_write_text(Path(args.out), json.dumps(res))
        return 0
    if cmd == "experiment":
        from policies.msbot.experiment import CONDITIONS, ExperimentConfig, run_experiment
        cfg = ExperimentConfig(out=args.out, methods=args.methods, seeds=args.seeds,
                               conditions=args.conditions or list(CONDITIONS), n_demos=args.n_demos,
                               n_eval=args.n_eval, epochs=args.epochs, nuisance=args.nuisance, checkpoint=args.checkpoint,
                               overrides=ExperimentConfig().overrides + list(args.overrides))
        summary = run_experiment(cfg)
        print((__import__("pathlib").Path(args.out) / "summary.md").read_text())
        return 0 if summary["success"] else 1
    if cmd == "summarize":
        from pathlib import Path
        from policies.msbot.experiment import summarize
        summarize(args.out)
        print((Path(args.out) / "summary.md").read_text())
        return 0
    print("policystack msbot: choose a step: demos, train, eval, experiment, summarize (see --help)")
    return 2
