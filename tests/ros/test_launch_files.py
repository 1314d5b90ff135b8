"""The launch files, checked honestly without `ros2 launch`: they stay inside the declarative subset,
name only existing packages/executables/params files, and evaluate to the expected graph. (The graph
from sim.launch.py is run for real by test_closed_loop.py and test_recorder.py.)"""

import ast
import re
from pathlib import Path

import pytest

from policystack.errors import ConfigError
from policystack.ros import EXECUTABLES
from policystack.ros import minilaunch
from policystack.ros.params import load_params

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch"
FILES = sorted(LAUNCH.glob("*.launch.py"))


def test_both_launch_files_exist_and_pass_the_check():
    assert {f.name for f in FILES} >= {"sim.launch.py", "real_robot.launch.py"}
    for f in FILES:
        graph, problems = minilaunch.check_launch(f)
        assert not problems, problems
        assert graph.nodes


def test_setup_py_installs_every_executable_and_the_launch_folder():
    setup = (ROOT / "ros2_ws/src/policystack_ros/setup.py").read_text()
    exes = set(re.search(r"EXECUTABLES = \[(.*?)\]", setup).group(1).replace('"', "").replace(" ", "").split(","))
    assert exes == set(EXECUTABLES)
    assert '"share/" + PACKAGE + "/launch"' in setup and "*.yaml" in setup
    pkg = (ROOT / "ros2_ws/src/policystack_ros/package.xml").read_text()
    assert "<build_type>ament_python</build_type>" in pkg


def test_sim_graph_arguments_reach_the_nodes():
    g = minilaunch.resolve(LAUNCH / "sim.launch.py", {"checkpoint": "/ckpt", "n_episodes": "3", "mode": "timer"})
    nodes = {n.name: n for n in g.nodes}
    assert set(nodes) == {"sim_node", "policy_node"}
    assert nodes["sim_node"].shutdown_on_exit
    assert nodes["policy_node"].params["checkpoint"] == "/ckpt"
    assert nodes["sim_node"].params["n_episodes"] == 3 and nodes["sim_node"].params["mode"] == "timer"
    assert nodes["policy_node"].params_files == [str(LAUNCH / "sim.yaml")]
    cmd = minilaunch.command(nodes["policy_node"], Path("/tmp"))
    assert cmd[cmd.index("--ros-args"):][:5] == ["--ros-args", "-r", "__node:=policy_node", "-r", "__ns:=/"]


def test_real_robot_graph_remaps_to_the_arm_controllers_and_records_on_request():
    g = minilaunch.resolve(LAUNCH / "real_robot.launch.py", {"checkpoint": "/c", "twist_topic": "/cart_vel/cmd"})
    nodes = {n.name: n for n in g.nodes}
    assert "recorder" not in nodes
    assert ("/servo_node/delta_twist_cmds", "/cart_vel/cmd") in nodes["arm_bridge"].remaps
    assert nodes["wrist_camera"].executable == "sensor_node"
    g = minilaunch.resolve(LAUNCH / "real_robot.launch.py", {"checkpoint": "/c", "record": "true"})
    assert "recorder" in {n.name for n in g.nodes}


def test_params_yaml_sections_match_what_the_nodes_read():
    sim = load_params(LAUNCH / "sim.yaml", "sim_node")
    pol = load_params(LAUNCH / "sim.yaml", "policy_node")
    assert sim["mode"] == pol["mode"] == "lockstep"
    assert pol["inputs.state.topic"] == "/sim/state" and sim["topic_prefix"] == "/sim"
    from policystack.ros.params import by_prefix
    from policystack.ros.topics import parse_inputs
    for f in ("sim.yaml", "real_robot.yaml"):
        parse_inputs(by_prefix(load_params(LAUNCH / f, "policy_node"), "inputs"))   # valid maps


def test_launch_subset_is_enforced(tmp_path):
    bad = tmp_path / "bad.launch.py"
    bad.write_text("from launch import LaunchDescription\nfrom launch_ros.actions import Node\n"
                   "def generate_launch_description():\n"
                   "    return LaunchDescription([Node(package='policystack_ros', executable='policy_node', "
                   "prefix='gdb -ex run --args')])\n")
    with pytest.raises(ConfigError, match="unsupported arguments"):
        minilaunch.resolve(bad)
    with pytest.raises(ConfigError, match="declares no argument"):
        minilaunch.resolve(LAUNCH / "sim.launch.py", {"checkpoint": "x", "chekpoint": "y"})
    with pytest.raises(ConfigError, match="no default"):
        minilaunch.resolve(LAUNCH / "sim.launch.py")
    for f in FILES:   # only the shimmed modules are imported
        tree = ast.parse(f.read_text())
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert mods <= {"launch", "launch.actions", "launch.conditions", "launch.substitutions", "launch_ros.actions"}
