"""`policystack libero-demos`: scripted-expert demonstrations for a LIBERO suite."""

NAME = "libero-demos"
HELP = "generate LIBERO demonstrations with the scripted experts (state-only rollouts, parallel rendering)"
DESCRIPTION = """\
Roll out the scripted waypoint experts state-only, keep the successful episodes with their simulator
states, then render the cameras by replaying the states in worker processes.

Writes <out>/<suite>.hdf5 (policystack HDF5 contract, all tasks, per-episode `task`) and, unless
--no-official, <out>/official/<suite>/<task>_demo.hdf5 (official LIBERO layout, one file per task).
Prints a per-task table of expert successes / attempts.

examples:
  policystack libero-demos --suite libero_object --episodes 10 --out data/libero
  policystack libero-demos --suite libero_spatial --tasks 0,1 --episodes 5 --image-size 84 --depth
  policystack libero-demos --suite libero_goal --cameras none --out /tmp/states_only
"""


def add_arguments(p) -> None:
    p.add_argument("--suite", required=True, help="libero_spatial | libero_object | libero_goal | libero_10 | libero_90")
    p.add_argument("--tasks", default="", help="comma-separated task indices (default: every task)")
    p.add_argument("--episodes", type=int, default=10, help="successful demos wanted per task")
    p.add_argument("--max-attempts", type=int, default=0, help="expert tries per task (default 2*episodes+2)")
    p.add_argument("--out", default="data/libero", help="output folder")
    p.add_argument("--cameras", default="agentview,wrist", help="comma-separated, or 'none' for state-only demos")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--depth", action="store_true", help="also store depth (metres)")
    p.add_argument("--workers", type=int, default=2, help="rendering processes (0: render in this process)")
    p.add_argument("--init", choices=["sampled", "official"], default="sampled",
                   help="sampled: fresh seeded placements (not the evaluation states); official: init states 0..")
    p.add_argument("--seed", type=int, default=1, help="seed of the sampled init states")
    p.add_argument("--action-noise", type=float, default=0.0,
                   help="std of noise on the executed motion (labels stay clean): recovery data for BC")
    p.add_argument("--no-official", action="store_true", help="skip the official-layout files")


def run(args) -> int:
    import json
    import time

    from policystack.errors import ConfigError
    from sim.libero_demos import generate_libero_demos
    from sim.libero_suites import SUITE_SIZES, check_suite

    suite = check_suite(args.suite)
    try:
        tasks = [int(t) for t in args.tasks.split(",") if t.strip()] or None
    except ValueError as e:
        raise ConfigError(f"--tasks must be comma-separated integers, got {args.tasks!r}") from e
    if tasks and any(not 0 <= t < SUITE_SIZES[suite] for t in tasks):
        raise ConfigError(f"--tasks: {suite} has tasks 0..{SUITE_SIZES[suite] - 1}")
    if args.episodes < 1:
        raise ConfigError("--episodes must be >= 1")
    if not 0 <= args.action_noise <= 1:
        raise ConfigError("--action-noise must be in [0, 1]")
    cameras = () if args.cameras.strip().lower() in ("", "none") else tuple(
        c.strip() for c in args.cameras.split(",") if c.strip())
    t0 = time.time()
    summary = generate_libero_demos(suite, args.out, tasks=tasks, n_episodes=args.episodes, cameras=cameras,
                                    image_size=args.image_size, depth=args.depth, workers=args.workers,
                                    init=args.init, seed=args.seed, official=not args.no_official,
                                    max_attempts=args.max_attempts or None, action_noise=args.action_noise)
    print(f"\n{'task':>4}  {'success':>9}  {'rate':>5}  instruction")
    n_ok = n_all = 0
    for t in summary["tasks"]:
        if not t["covered"]:
            print(f"{t['task_index']:>4}  {'-':>9}  {'-':>5}  {t['language']}  (no scripted expert)")
            continue
        n_ok += t["successes"]
        n_all += t["attempts"]
        print(f"{t['task_index']:>4}  {t['successes']:>4}/{t['attempts']:<4}  {t['rate']:>5.2f}  {t['language']}")
    print(f"overall expert success {n_ok}/{n_all} = {n_ok / max(n_all, 1):.2f}; {time.time() - t0:.0f} s")
    for k, v in summary["paths"].items():
        if not k.startswith("official_"):
            print(f"wrote {v}")
    n_off = sum(k.startswith("official_") for k in summary["paths"])
    if n_off:
        print(f"wrote {n_off} official-layout file(s) under {args.out}/official/{suite}/")
    from pathlib import Path
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"{suite}_summary.json").write_text(json.dumps(summary, indent=1))
    short = [t for t in summary["tasks"] if t["covered"] and t["successes"] < args.episodes]
    return 1 if short or not n_all else 0
