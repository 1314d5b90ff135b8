"""`policystack robo_mutual`: train a Robo-MUTUAL policy, evaluate it with text or image goals."""

from __future__ import annotations

import argparse

NAME = "robo_mutual"
HELP = "Robo-MUTUAL: train (text or image goals), eval (either goal modality), crossmodal experiment"
DESCRIPTION = """Robo-MUTUAL multimodal task specification.

  policystack robo_mutual train --config cfg.json [name=value ...] [--resume]
  policystack robo_mutual eval --policy RUN_OR_DIR --goal-modality image --tasks a-v3,b-v3 [--episodes 10]
  policystack robo_mutual crossmodal ...      (Collapse+Corrupt vs none, seeds, tables, plot)

Training config fields (name=value overrides; policy.* are the policy's):
"""



def add_arguments(p) -> None:
    from policies.robo_mutual.train_robo_mutual import MutualTrainConfig
    from policystack.config import describe
    p.description = DESCRIPTION + "\n".join(describe(MutualTrainConfig))
    sub = p.add_subparsers(dest="action", metavar="<action>")
    t = sub.add_parser("train", help="train a policy on demos with goals from a frozen DecisionNCE encoder")
    t.add_argument("--config", help="a MutualTrainConfig JSON file")
    t.add_argument("--resume", action="store_true")
    t.add_argument("overrides", nargs="*", help="name=value overrides, e.g. steps=1500 policy.head=mse")
    e = sub.add_parser("eval", help="closed-loop success on Meta-World with the chosen goal modality")
    e.add_argument("--policy", required=True, help="a run dir or pretrained dir")
    e.add_argument("--goal-modality", choices=("text", "image"), default="image")
    e.add_argument("--tasks", required=True, help="comma-separated Meta-World tasks (in the goal bank)")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--max-steps", type=int, default=200)
    e.add_argument("--cameras", default="corner2,gripperPOV")
    e.add_argument("--image-size", type=int, default=64)
    c = sub.add_parser("crossmodal", help="the cross-modal experiment (see its --help)", add_help=False)
    c.add_argument("args", nargs=argparse.REMAINDER)


def run(args) -> int:
    if args.action == "train":
        from policies.robo_mutual.train_robo_mutual import MutualTrainConfig, train
        from policystack.config import apply_overrides, load_json
        cfg = load_json(MutualTrainConfig, args.config) if args.config else MutualTrainConfig()
        out = train(apply_overrides(cfg, args.overrides), resume=args.resume)
        print(f"policy saved at {out / 'checkpoints/last/pretrained'}")
        return 0
    if args.action == "eval":
        import numpy as np
        from policies.base import load_policy
        from policies.decisionnce.rollout import rollout_task
        pol = load_policy(args.policy)
        pol.set_goal_modality(args.goal_modality)
        rates = []
        for task in [t for t in args.tasks.split(",") if t]:
            res = rollout_task(pol, task, args.episodes, tuple(args.cameras.split(",")), args.image_size,
                               max_steps=args.max_steps)
            rates.append(np.mean([r["success"] for r in res]))
            print(f"{task}: success {rates[-1]:.2f} ({args.goal_modality} goals, {args.episodes} episodes)", flush=True)
        print(f"mean success {np.mean(rates):.3f}")
        return 0
    if args.action == "crossmodal":
        from policies.robo_mutual.exp_crossmodal import main
        return main([a for a in args.args if a != "--"])
    print("choose an action: train, eval, crossmodal (see --help)")
    return 2
