"""launch/real_robot.launch.py runs: a camera (a video file through the real OpenCV driver) in a
sensor_node, policy_node on the camera + the arm's /joint_states, arm_bridge remapped onto the
"arm's controllers", and the recorder, all started by `policystack ros launch` from the launch file."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


pytestmark = [pytest.mark.ros, pytest.mark.sensors]
JOINTS = [f"joint{i}" for i in range(1, 8)]


def _moving(probe) -> list:
    return [m for _, m in probe.got("/arm/cmd_vel") if m.twist.linear.x > 0]


def test_real_robot_launch_graph_runs(ros_net, probe, tmp_path):
    pytest.importorskip("sensors.rig")
    from sensors.virtual import write_test_video

    from policystack.ros import convert
    from ros_test_policies import scripted_checkpoint
    video = write_test_video(tmp_path / "wrist.avi", n_frames=60, width=64, height=48)
    ckpt = scripted_checkpoint(tmp_path / "policy", state_dim=7, action_dim=4, gain=1.0, image_shape=(48, 64, 3),
                               camera="wrist")
    params = yaml.safe_load((ROOT / "launch" / "real_robot.yaml").read_text())
    params["wrist_camera"]["ros__parameters"]["sensor"] = {"type": "opencv", "name": "wrist", "source": str(video)}
    params["policy_node"]["ros__parameters"]["import_modules"] = "ros_test_policies"
    params["policy_node"]["ros__parameters"]["inputs"]["state"]["max_age"] = 0.5
    params["policy_node"]["ros__parameters"]["inputs"]["wrist"]["max_age"] = 0.5
    pfile = tmp_path / "robot.yaml"
    pfile.write_text(yaml.safe_dump(params))
    bag = tmp_path / "bag"

    probe.subscribe("/arm/cmd_vel", "TwistStamped")
    probe.subscribe("/arm/gripper", "Float64MultiArray")
    probe.subscribe("/sensors/images/wrist", "Image", qos="sensor_data", depth=5)
    probe.publisher("/robot/joint_states", "JointState", qos="sensor_data")
    launch = subprocess.Popen(
        [sys.executable, "-m", "policystack.cli", "ros", "launch", "launch/real_robot.launch.py",
         f"params_file:={pfile}", f"checkpoint:={ckpt}", "twist_topic:=/arm/cmd_vel", "gripper_topic:=/arm/gripper",
         "joint_states:=/robot/joint_states", "record:=true", f"bag:={bag}"],
        cwd=ROOT, stdout=open(tmp_path / "launch.log", "w"), stderr=subprocess.STDOUT)
    try:
        probe.wait_matched("/robot/joint_states", 90)
        q = np.full(7, 0.1)
        t_end = time.monotonic() + 45
        # the first commands are the hold's zero twists (no joint state yet), then the rate-limited ramp
        # ... and keep the arm "alive" until the recorder (subscribing once it discovers the topic) has it
        recorded_since = None
        while time.monotonic() < t_end and launch.poll() is None:
            probe.publish("/robot/joint_states", convert.encode_joint_state(
                q, JOINTS, probe.node.get_clock().now().nanoseconds))
            time.sleep(0.02)
            if recorded_since is None and probe.pubs["/robot/joint_states"].get_subscription_count() >= 2:
                recorded_since = time.monotonic()
            if len(_moving(probe)) >= 8 and recorded_since is not None and time.monotonic() - recorded_since > 1.0:
                break
        imgs = probe.got("/sensors/images/wrist")
        assert imgs and imgs[-1][1].encoding == "rgb8" and (imgs[-1][1].height, imgs[-1][1].width) == (48, 64)
        moving = _moving(probe)
        assert len(moving) >= 5, (tmp_path / "launch.log").read_text()[-3000:]
        m = moving[-1]
        assert m.header.frame_id == "base_link"
        # action = 0.1 + mean pixel / 255, times linear_scale 0.05, norm-clamped to 0.10 m/s
        assert 0.0 < np.linalg.norm([m.twist.linear.x, m.twist.linear.y, m.twist.linear.z]) <= 0.10 + 1e-9
        assert probe.got("/arm/gripper")
    finally:
        launch.send_signal(signal.SIGINT)
        code = launch.wait(60)
    log = (tmp_path / "launch.log").read_text()
    assert code == 0, log[-3000:]
    assert (bag / "metadata.yaml").is_file(), log[-3000:]
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]}
    assert counts.get("/sensors/images/wrist", 0) > 0 and counts.get("/policy/action", 0) > 0
    assert counts.get("/robot/joint_states", 0) > 0   # the recorder follows the joint_states remap
