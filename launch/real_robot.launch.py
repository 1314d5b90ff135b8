"""Real-robot graph: a camera sensor node + policy_node (timer mode) + arm_bridge (+ recorder).

    ros2 launch policystack_ros real_robot.launch.py checkpoint:=/path/to/pretrained
    ros2 launch policystack_ros real_robot.launch.py checkpoint:=... record:=true bag:=/data/bags/run_001
    ros2 launch policystack_ros real_robot.launch.py checkpoint:=... twist_topic:=/cartesian_velocity_controller/cmd

Joint states come from the arm's own driver (``/joint_states``); the camera, topics, rates, scaling
and safety limits live in real_robot.yaml (next to this file). Remappings connect the bridge to the
arm's controllers without editing any code. The recorder writes a rosbag2 (MCAP) that
``policystack ros bag2hdf5`` turns into training episodes.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, ThisLaunchFileDir
from launch_ros.actions import Node


def generate_launch_description():
    params = LaunchConfiguration("params_file")
    return LaunchDescription([
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([ThisLaunchFileDir(), "real_robot.yaml"])),
        DeclareLaunchArgument("checkpoint", description="policy checkpoint (a pretrained directory)"),
        DeclareLaunchArgument("instruction", default_value="", description="language instruction, if the policy uses one"),
        DeclareLaunchArgument("twist_topic", default_value="/servo_node/delta_twist_cmds",
                              description="the arm's Cartesian velocity / servo command topic"),
        DeclareLaunchArgument("gripper_topic", default_value="/gripper_controller/commands"),
        DeclareLaunchArgument("joint_states", default_value="/joint_states"),
        DeclareLaunchArgument("record", default_value="false", choices=["true", "false"]),
        DeclareLaunchArgument("bag", default_value="", description="rosbag2 output directory (empty: timestamped)"),
        Node(package="policystack_ros", executable="sensor_node", name="wrist_camera", output="screen",
             parameters=[params]),
        Node(package="policystack_ros", executable="policy_node", name="policy_node", output="screen",
             parameters=[params, {"checkpoint": LaunchConfiguration("checkpoint"),
                                  "instruction": LaunchConfiguration("instruction")}],
             remappings=[("/joint_states", LaunchConfiguration("joint_states"))]),
        Node(package="policystack_ros", executable="arm_bridge", name="arm_bridge", output="screen",
             parameters=[params],
             remappings=[("/servo_node/delta_twist_cmds", LaunchConfiguration("twist_topic")),
                         ("/gripper_controller/commands", LaunchConfiguration("gripper_topic"))]),
        Node(package="policystack_ros", executable="recorder", name="recorder", output="screen",
             parameters=[params, {"output": LaunchConfiguration("bag")}],
             remappings=[("/joint_states", LaunchConfiguration("joint_states"))],
             condition=IfCondition(LaunchConfiguration("record"))),
    ])
