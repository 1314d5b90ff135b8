"""Console script `recorder` (see policystack.ros.recorder)."""

from policystack_ros import load_main


def main():
    return load_main("recorder")()


if __name__ == "__main__":
    raise SystemExit(main())
