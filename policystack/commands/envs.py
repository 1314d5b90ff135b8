"""`policystack envs`: list registered environments."""

NAME = "envs"
HELP = "list the registered gymnasium environments (ids usable with --env / gymnasium.make)"


def add_arguments(p) -> None:
    p.add_argument("--filter", default="", help="only ids containing this text")


def run(args) -> int:
    from sim import list_envs
    ids = [e for e in list_envs() if args.filter in e]
    for e in ids:
        print(e)
    print(f"{len(ids)} environments", flush=True)
    return 0
