"""Console script `arm_bridge` (see policystack.ros.arm_bridge)."""

from policystack_ros import load_main


def main():
    return load_main("arm_bridge")()


if __name__ == "__main__":
    raise SystemExit(main())
