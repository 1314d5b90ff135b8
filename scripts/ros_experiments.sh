#!/usr/bin/env bash
# The numbers in docs/results/ros2.md: a state-only BC policy for reach-v3 evaluated in-process
# (`policystack eval` code path) and over ROS 2 (sim_node + policy_node from launch/sim.launch.py, lockstep
# and 20 Hz timer mode) on the same 20 init states, then the round-trip benchmark.
#   sudo scripts/ros_experiments.sh [OUT_DIR]        (root: runs DDS in a private network namespace)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="${1:-/tmp/policystack_ros_experiments}"
if [ -z "${POLICYSTACK_IN_NETNS:-}" ] && [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
  exec unshare -n env POLICYSTACK_IN_NETNS=1 bash "${BASH_SOURCE[0]}" "$@"
fi
if [ -n "${POLICYSTACK_IN_NETNS:-}" ]; then ip link set lo up; ip link set lo multicast on; fi
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}" MUJOCO_GL=egl
N=20
mkdir -p "$OUT"
cd "$ROOT"
t0=$(date +%s)
"$PY" - "$OUT" "$N" <<'PYEOF'
import json, sys, time, torch
torch.set_num_threads(1)
from pathlib import Path
from policystack.config import config_class
from policystack.demos import generate_metaworld_demos
from policystack.training import TrainConfig, pretrained_path, train
from policystack.evaluation import evaluate
out, n = Path(sys.argv[1]), int(sys.argv[2])
if not (out / "run" / "checkpoints" / "last").exists():
    data = generate_metaworld_demos("reach-v3", 10, out / "reach.hdf5")
    train(TrainConfig(dataset=str(data), policy=config_class("policy", "bc")(modalities=("state",), hidden_dim=128,
                      n_layers=2), output_dir=str(out / "run"), steps=600, batch_size=64, log_every=200, save_every=600))
t = time.time()
r = evaluate(pretrained_path(out / "run"), "reach-v3", n_episodes=n, env_kwargs={"init_seed": 0, "max_episode_steps": 500},
             progress=False)
r["wall_s"] = round(time.time() - t, 2)
(out / "in_process.json").write_text(json.dumps(r, indent=2))
print(f"in-process: {r['pc_success']:.1f}% over {n} episodes in {r['wall_s']} s")
PYEOF
CKPT="$OUT/run/checkpoints/last/pretrained"
for mode in lockstep timer; do
  "$PY" -m policystack.cli ros launch launch/sim.launch.py checkpoint:="$CKPT" n_episodes:=$N mode:=$mode rate:=20.0 \
      results_path:="$OUT/ros_$mode.json" > "$OUT/ros_$mode.log" 2>&1
done
"$PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
ref = json.loads((out / "in_process.json").read_text())
key = lambda e: (e["init_state_index"], e["success"], e["length"])
print(f"{'run':12s} {'success %':>9s} {'episodes equal to in-process':>30s} {'wall s':>7s} {'steps/s':>8s}")
print(f"{'in-process':12s} {ref['pc_success']:9.1f} {'-':>30s} {ref['wall_s']:7.1f}")
for mode in ("lockstep", "timer"):
    r = json.loads((out / f"ros_{mode}.json").read_text())
    same = sum(key(a) == key(b) for a, b in zip(r["episodes"], ref["episodes"]))
    frac = f"{same}/{len(ref['episodes'])}"
    print(f"{'ros ' + mode:12s} {r['pc_success']:9.1f} {frac:>30s} {r['wall_s']:7.1f} "
          f"{r['steps_per_s']:8.1f}  (steps without a fresh action: {r['steps_without_fresh_action']})")
PYEOF
echo "closed loop: $(( $(date +%s) - t0 )) s"
BENCH_NO_NETNS=1 "$PY" benchmarks/bench_ros.py --n 200 --out "$OUT/bench_ros.json"
echo "total: $(( $(date +%s) - t0 )) s"
