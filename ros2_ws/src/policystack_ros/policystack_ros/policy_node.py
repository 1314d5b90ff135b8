"""Console script `policy_node` (see policystack.ros.policy_node)."""

from policystack_ros import load_main


def main():
    return load_main("policy_node")()


if __name__ == "__main__":
    raise SystemExit(main())
