#!/usr/bin/env bash
# ROS 2 test tier: colcon build + colcon test of ros2_ws, then pytest tests/ros, all inside a private
# network namespace (loopback only, multicast on) with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a
# random ROS_DOMAIN_ID. The nodes run from the colcon install (install/lib/policystack_ros/<exe>).
#
#   scripts/ros_tests.sh                 # default tier (not slow)
#   scripts/ros_tests.sh -m ''           # everything; extra arguments go to pytest
#   PYTHON=/path/to/venv/bin/python scripts/ros_tests.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

if [ -z "${POLICYSTACK_IN_NETNS:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 && unshare -n true 2>/dev/null; then
    exec unshare -n env POLICYSTACK_IN_NETNS=1 bash "${BASH_SOURCE[0]}" "$@"
  fi
  echo "ros_tests.sh: cannot create a network namespace (needs root + unshare);" \
       "relying on ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST only" >&2
else
  ip link set lo up
  ip link set lo multicast on
  ip route add 224.0.0.0/4 dev lo 2>/dev/null || true
fi

export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}"
export ROS_LOG_DIR="${ROS_LOG_DIR:-/tmp/policystack_ros_logs}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PATH="$(dirname "$PY"):$PATH"     # colcon and the console-script shebangs use this Python

t0=$(date +%s)
cd "$ROOT/ros2_ws"
rm -rf build/policystack_ros install/policystack_ros
colcon build --event-handlers console_cohesion- summary+ 2>&1 | grep -v "byte-compiling is disabled" || true
test -x install/policystack_ros/lib/policystack_ros/policy_node || { echo "colcon build failed" >&2; exit 1; }
set +u
# shellcheck disable=SC1091
source install/setup.bash
set -u
colcon test --event-handlers console_cohesion- summary+ >/dev/null
colcon test-result --all --verbose
echo "colcon build + test: $(( $(date +%s) - t0 )) s"

cd "$ROOT"
"$PY" -m pytest tests/ros -q -ra --durations=8 "$@"
echo "ros tests total: $(( $(date +%s) - t0 )) s"
