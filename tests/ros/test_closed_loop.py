"""sim_node + policy_node as separate processes, started from launch/sim.launch.py by the `policystack ros
launch` verb (the graph the launch file describes), reach the in-process evaluation's results."""

import json
from pathlib import Path

import pytest
from ros_helpers import run_launch

ROOT = Path(__file__).resolve().parents[2]


pytestmark = [pytest.mark.ros, pytest.mark.sim]
N_EPISODES = 6


def test_lockstep_over_ros_equals_in_process_eval(ros_net, bc_checkpoint, tmp_path):
    from policystack.evaluation import evaluate
    from policystack.ros.params import by_prefix, load_params
    env_kwargs = by_prefix(load_params(ROOT / "launch" / "sim.yaml", "sim_node"), "env_kwargs")
    ref = evaluate(bc_checkpoint, "reach-v3", n_episodes=N_EPISODES, env_kwargs=env_kwargs, progress=False)
    out = tmp_path / "ros_eval.json"
    run_launch(["launch/sim.launch.py", f"checkpoint:={bc_checkpoint}", f"n_episodes:={N_EPISODES}",
                f"results_path:={out}"], timeout=400)
    ros = json.loads(out.read_text())
    assert ros["complete"] and ros["n_episodes"] == N_EPISODES
    assert ros["pc_success"] == ref["pc_success"]
    # stronger: every episode (same init state) has the same outcome and length
    ours = [(e["init_state_index"], e["success"], e["length"]) for e in ros["episodes"]]
    theirs = [(e["init_state_index"], e["success"], e["length"]) for e in ref["episodes"]]
    assert ours == theirs
    (tmp_path / "summary.txt").write_text(f"ros {ros['pc_success']} in-process {ref['pc_success']}\n")


def test_lockstep_with_camera_images_is_exact(spawn, tmp_path):
    """Images travel sim -> policy intact: a policy whose action depends on the camera's colour balance
    reaches exactly the in-process returns (a flipped, BGR or stale frame would change them)."""
    import yaml

    from policystack.evaluation import evaluate
    from ros_test_policies import expert_checkpoint
    env_kwargs = {"init_seed": 0, "max_episode_steps": 150, "cameras": ["corner2"], "image_size": 48}
    ckpt = expert_checkpoint(tmp_path / "expert_img", env_kwargs=env_kwargs, image_gain=0.3)
    ref = evaluate(ckpt, "reach-v3", n_episodes=2, env_kwargs=env_kwargs, progress=False)
    out = tmp_path / "ros.json"
    over = tmp_path / "over.yaml"
    over.write_text(yaml.safe_dump({
        "sim_node": {"ros__parameters": {"n_episodes": 2, "results_path": str(out), "env_kwargs": env_kwargs}},
        "policy_node": {"ros__parameters": {"checkpoint": str(ckpt), "import_modules": "ros_test_policies"}}}))
    pol = spawn("policy_node", params_file=ROOT / "launch" / "sim.yaml", name="policy_node",
                extra=["--params-file", str(over)])
    simn = spawn("sim_node", params_file=ROOT / "launch" / "sim.yaml", name="sim_node",
                 extra=["--params-file", str(over)])
    assert simn.wait(180) == 0, simn.text()[-3000:]
    assert pol.sigint() == 0
    assert "observation.images.corner2<-/sim/images/corner2[Image" in pol.text()
    ros = json.loads(out.read_text())
    assert [(e["init_state_index"], e["success"], e["length"]) for e in ros["episodes"]] == \
           [(e["init_state_index"], e["success"], e["length"]) for e in ref["episodes"]]
    for a, b in zip(ros["episodes"], ref["episodes"]):
        assert abs(a["return"] - b["sum_reward"]) < 1e-3 * max(1.0, abs(b["sum_reward"]))
