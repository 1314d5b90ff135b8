"""`policystack eval`: closed-loop evaluation of a checkpoint."""

NAME = "eval"
HELP = "evaluate a checkpoint in simulation (vector envs, fixed init states, JSON report, videos)"
DESCRIPTION = """Evaluate a policy checkpoint on one or more envs.

Episode i starts from init state (start-index + i). Writes <out>/eval_info.json and mp4 videos
of the first --videos episodes. Examples:
  policystack eval --policy runs/reach --env reach-v3 -n 50
  policystack eval --policy runs/mt10 --env MT10 -n 10 --envs 2
"""


def add_arguments(p) -> None:
    p.add_argument("--policy", required=True, help="checkpoint dir or run dir (uses checkpoints/last)")
    p.add_argument("--env", required=True, help="env id or Meta-World task / task set (reach-v3, MT10)")
    p.add_argument("-n", "--episodes", type=int, default=50, help="episodes per env")
    p.add_argument("--envs", type=int, default=1, help="parallel sub-envs (worker processes)")
    p.add_argument("--start-index", type=int, default=0, help="first init-state index")
    p.add_argument("--max-steps", type=int, default=None, help="episode step limit (env default if unset)")
    p.add_argument("--out", default=None, help="report/video directory (default: <policy>/eval)")
    p.add_argument("--videos", type=int, default=2, help="episodes recorded as mp4 per env")
    p.add_argument("--env-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="extra env constructor argument (JSON value or string), e.g. state=proprio")


def env_names(name: str) -> list[str]:
    """Meta-World task sets expand to their tasks; anything else is one env."""
    from sim.metaworld_tasks import TASK_SETS, resolve_tasks
    if name in TASK_SETS or "," in name:
        return list(resolve_tasks(name))
    return [name]


def run(args) -> int:
    from pathlib import Path

    import torch

    from policystack.evaluation import evaluate_tasks
    from policies.base import load_policy
    torch.set_num_threads(1)
    policy = load_policy(args.policy)
    spec = policy.config.input_spec
    kw = {}
    cams = [k.rsplit(".", 1)[-1] for k in spec.keys() if k.startswith("observation.images.")]
    if cams:  # render what the policy was trained on
        shape = spec[f"observation.images.{cams[0]}"].shape
        kw = {"cameras": tuple(cams), "image_size": (shape[0], shape[1])}
    if any(k.startswith("observation.depth.") for k in spec.keys()):
        kw["depth"] = True
    import json
    for item in args.env_arg:
        name, _, value = item.partition("=")
        try:
            kw[name] = json.loads(value)
        except json.JSONDecodeError:
            kw[name] = value
    if args.max_steps:
        kw["max_episode_steps"] = args.max_steps
    out = Path(args.out) if args.out else Path(args.policy) / "eval"
    report = evaluate_tasks(policy, env_names(args.env), out_dir=out, n_episodes=args.episodes,
                            env_kwargs=kw, n_envs=args.envs, start_index=args.start_index,
                            video_dir=out / "videos" if args.videos else None, max_videos=args.videos)
    for task, r in report["per_task"].items():
        print(f"{task}: success {r['success_rate']:.2f} over {r['n_episodes']} episodes, "
              f"mean length {r['avg_length']:.1f}")
    print(f"overall success rate: {report['success_rate']:.3f} ({report['n_episodes']} episodes, {report['eval_s']:.0f} s)")
    print(f"report: {out / 'eval_info.json'}")
    for v in (v for r in report["per_task"].values() for v in r["videos"]):
        print(f"video: {v}")
    return 0
