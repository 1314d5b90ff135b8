"""Console script `sensor_node` (see policystack.ros.sensor_node)."""

from policystack_ros import load_main


def main():
    return load_main("sensor_node")()


if __name__ == "__main__":
    raise SystemExit(main())
