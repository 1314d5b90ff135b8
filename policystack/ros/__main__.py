"""``python -m policystack.ros <executable> [--ros-args ...]``: run a node without a colcon install."""

from __future__ import annotations

import importlib
import sys

from policystack.ros import EXECUTABLES


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in EXECUTABLES:
        print(f"usage: python -m policystack.ros <{'|'.join(EXECUTABLES)}> [--ros-args ...]", file=sys.stderr)
        return 2
    module, func = EXECUTABLES[sys.argv[1]].split(":")
    sys.argv = [sys.argv[1]] + sys.argv[2:]
    return int(getattr(importlib.import_module(module), func)() or 0)


if __name__ == "__main__":
    sys.exit(main())
