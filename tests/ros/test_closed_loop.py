"""sim_node + policy_node as separate processes, started from launch/sim.launch.py by the `policystack ros
launch` verb (the graph the launch file describes), reach the in-process evaluation's results."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.ros, pytest.mark.sim]
N_EPISODES = 6


def test_lockstep_over_ros_equals_in_process_eval(ros_net, bc_checkpoint, tmp_path):
    from policystack.evaluation import evaluate
    from policystack.ros.params import by_prefix, load_params
    env_kwargs = by_prefix(load_params(ROOT / "launch" / "sim.yaml", "sim_node"), "env_kwargs")
    ref = evaluate(bc_checkpoint, "reach-v3", n_episodes=N_EPISODES, env_kwargs=env_kwargs, progress=False)
    out = tmp_path / "ros_eval.json"
    cmd = [sys.executable, "-m", "policystack.cli", "ros", "launch", "launch/sim.launch.py",
           f"checkpoint:={bc_checkpoint}", f"n_episodes:={N_EPISODES}", f"results_path:={out}"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    ros = json.loads(out.read_text())
    assert ros["complete"] and ros["n_episodes"] == N_EPISODES
    assert ros["pc_success"] == ref["pc_success"]
    # stronger: every episode (same init state) has the same outcome and length
    ours = [(e["init_state_index"], e["success"], e["length"]) for e in ros["episodes"]]
    theirs = [(e["init_state_index"], e["success"], e["length"]) for e in ref["episodes"]]
    assert ours == theirs
    (tmp_path / "summary.txt").write_text(f"ros {ros['pc_success']} in-process {ref['pc_success']}\n")
