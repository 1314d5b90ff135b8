"""arm_bridge: action -> TwistStamped (scaled, clamped, in frame) + gripper command; zero twist on timeout,
invalid input and exit."""

import time

import numpy as np
import pytest

from policystack.ros.arm_bridge import gripper_position, twist_from_action

pytestmark = pytest.mark.ros


def test_twist_mapping_scales_and_clamps_by_norm():
    lin, ang = twist_from_action(np.array([1.0, 0.0, 0.0, 0.5]), [0, 1, 2], [], 0.1, 0.5, 0.25, 1.0)
    assert np.allclose(lin, [0.1, 0, 0]) and np.allclose(ang, 0)
    lin, _ = twist_from_action(np.array([10.0, 10.0, 0.0, 0.0]), [0, 1, 2], [], 0.1, 0.5, 0.25, 1.0)
    assert np.isclose(np.linalg.norm(lin), 0.25) and np.isclose(lin[0], lin[1])
    assert gripper_position(1.0, 0.04, 0.0) == 0.0 and gripper_position(-1.0, 0.04, 0.0) == 0.04
    assert gripper_position(1.0, 0.04, 0.0, close_positive=False) == 0.04


def test_arm_bridge_node(spawn, probe):
    from policystack.ros import convert
    probe.subscribe("/arm/twist", "TwistStamped")
    probe.subscribe("/arm/gripper", "Float64MultiArray")
    probe.publisher("/policy/action", "Float64MultiArray")
    node = spawn("arm_bridge", {"twist_topic": "/arm/twist", "gripper_topic": "/arm/gripper", "frame_id": "tool0",
                                "linear_scale": 0.1, "max_linear": 0.25, "timeout": 0.3})
    probe.wait_matched("/policy/action", 60)
    probe.wait_matched("/arm/twist")

    def twists():
        return [m for _, m in probe.got("/arm/twist")]
    probe.publish("/policy/action", convert.action_msg(np.array([0.5, -1.0, 0.0, 1.0])))
    probe.wait_for(lambda: twists(), 5, "a twist")
    tw = twists()[-1]
    assert tw.header.frame_id == "tool0" and tw.header.stamp.sec > 0
    assert np.allclose([tw.twist.linear.x, tw.twist.linear.y, tw.twist.linear.z], [0.05, -0.1, 0.0])
    probe.wait_for(lambda: probe.got("/arm/gripper"), 5, "a gripper command")
    assert np.allclose(probe.got("/arm/gripper")[-1][1].data, [0.0])      # +1 = closed = 0.0 m
    # no new action within the timeout -> one zero twist
    t0 = time.monotonic()
    probe.wait_for(lambda: any(t > t0 and m.twist.linear.x == 0 and m.twist.linear.y == 0
                               for t, m in probe.got("/arm/twist")), 3, "the timeout zero twist")
    # NaN / too short actions are rejected and stop the arm
    probe.publish("/policy/action", convert.action_msg(np.array([0.5, 0.5, 0.5, 0.0])))
    probe.wait_for(lambda: twists()[-1].twist.linear.x > 0, 5, "moving again")
    probe.publish("/policy/action", convert.action_msg(np.array([np.nan, 0.0, 0.0, 0.0])))
    probe.wait_for(lambda: twists()[-1].twist.linear.x == 0, 5, "zero twist for a NaN action")
    probe.publish("/policy/action", convert.action_msg(np.array([0.5, 0.5])))
    time.sleep(0.3)
    assert all(np.isfinite([m.twist.linear.x, m.twist.linear.y, m.twist.linear.z]).all() for m in twists())
    assert "rejected action: action contains NaN/inf" in node.text()
    assert "rejected action: action has 2 values" in node.text()
    # SIGINT: a final zero twist and exit code 0
    probe.publish("/policy/action", convert.action_msg(np.array([0.5, 0.5, 0.5, 0.0])))
    probe.wait_for(lambda: twists()[-1].twist.linear.x > 0, 5, "moving again")
    assert node.sigint() == 0
    probe.wait_for(lambda: twists()[-1].twist.linear.x == 0, 5, "the exit zero twist")
