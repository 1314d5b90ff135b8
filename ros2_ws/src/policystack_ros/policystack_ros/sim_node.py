"""Console script `sim_node` (see policystack.ros.sim_node)."""

from policystack_ros import load_main


def main():
    return load_main("sim_node")()


if __name__ == "__main__":
    raise SystemExit(main())
