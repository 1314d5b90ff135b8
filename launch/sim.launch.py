"""Simulation graph: sim_node (a policystack env on /sim/*) + policy_node (lifecycle, lockstep by default).

    ros2 launch policystack_ros sim.launch.py checkpoint:=runs/bc/checkpoints/last/pretrained n_episodes:=20
    ros2 launch launch/sim.launch.py checkpoint:=...                  # by path
    policystack ros launch launch/sim.launch.py checkpoint:=...       # same graph, no `ros2 launch` needed

Declarative on purpose: the graph's content lives in sim.yaml (next to this file) and the arguments.
The run ends when sim_node has played its episodes (on_exit=Shutdown).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, ThisLaunchFileDir
from launch_ros.actions import Node


def generate_launch_description():
    params = LaunchConfiguration("params_file")
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([ThisLaunchFileDir(), "sim.yaml"]),
                              description="ROS params YAML with sim_node and policy_node sections"),
        DeclareLaunchArgument("checkpoint", description="policy checkpoint (a pretrained directory)"),
        DeclareLaunchArgument("env", default_value="reach-v3", description="env id or Meta-World task"),
        DeclareLaunchArgument("n_episodes", default_value="10"),
        DeclareLaunchArgument("start_index", default_value="0", description="episode i uses init state start_index+i"),
        DeclareLaunchArgument("mode", default_value="lockstep", choices=["lockstep", "timer"],
                              description="lockstep = evaluation; timer = fixed rate like a real robot"),
        DeclareLaunchArgument("rate", default_value="20.0", description="Hz in timer mode"),
        DeclareLaunchArgument("results_path", default_value="", description="write the success report here"),
        DeclareLaunchArgument("import_modules", default_value="",
                              description="comma-separated modules that register out-of-tree policies"),
        Node(package="policystack_ros", executable="sim_node", name="sim_node", output="screen",
             parameters=[params, {"env": LaunchConfiguration("env"),
                                  "n_episodes": LaunchConfiguration("n_episodes"),
                                  "start_index": LaunchConfiguration("start_index"),
                                  "mode": LaunchConfiguration("mode"),
                                  "rate": LaunchConfiguration("rate"),
                                  "results_path": LaunchConfiguration("results_path")}],
             on_exit=Shutdown()),
        Node(package="policystack_ros", executable="policy_node", name="policy_node", output="screen",
             parameters=[params, {"checkpoint": LaunchConfiguration("checkpoint"),
                                  "mode": LaunchConfiguration("mode"),
                                  "control_rate": LaunchConfiguration("rate"),
                                  "import_modules": LaunchConfiguration("import_modules")}]),
    ])
