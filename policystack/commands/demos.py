"""`policystack demos`: scripted-expert demonstrations into HDF5 episodes."""

NAME = "demos"
HELP = "generate scripted-expert demonstrations (Meta-World) into an HDF5 episode file"
DESCRIPTION = """Roll out Meta-World's shipped expert policy and keep only successful episodes.

Init states come from split --init-seed (1 by default; evaluation uses 0), so demos never
start from an evaluation state. Example:
  policystack demos --task reach-v3 -n 50 --out data/reach.hdf5
  policystack demos --task MT10 -n 20 --cameras corner2 --image-size 84 --out data/mt10.hdf5
"""


def add_arguments(p) -> None:
    p.add_argument("--task", required=True, help="a Meta-World task (reach-v3), a comma list, or MT10/MT50")
    p.add_argument("-n", "--episodes", type=int, default=50, help="successful episodes per task")
    p.add_argument("--out", required=True, help="output HDF5 file (appended to if it exists)")
    p.add_argument("--cameras", default="", help="comma-separated cameras for pixel observations (e.g. corner2)")
    p.add_argument("--image-size", type=int, default=84)
    p.add_argument("--depth", action="store_true", help="also record depth (metres) for each camera")
    p.add_argument("--init-seed", type=int, default=1, help="init-state split (0 is evaluation's)")
    p.add_argument("--noise", type=float, default=0.0, help="executed-action noise std (labels stay clean)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--state", choices=("full", "proprio"), default="full",
                   help="observation.state: full 39-D sim state, or the robot's 4-D proprioception only")


def run(args) -> int:
    from policystack.demos import generate_metaworld_demos
    from sim.metaworld_tasks import resolve_tasks
    cams = tuple(c for c in args.cameras.split(",") if c)
    for task in resolve_tasks(args.task):
        generate_metaworld_demos(task, args.episodes, args.out, cameras=cams, image_size=args.image_size,
                                 depth=args.depth, init_seed=args.init_seed, noise=args.noise,
                                 n_workers=args.workers, state=args.state)
    print(f"demos written to {args.out}")
    return 0
