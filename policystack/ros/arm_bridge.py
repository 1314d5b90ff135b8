"""arm_bridge: the raw action vector -> ``geometry_msgs/TwistStamped`` + a gripper command.

For Cartesian velocity / servo controllers (MoveIt Servo's ``delta_twist_cmds``, a Cartesian velocity
controller): ``linear = linear_scale * action[linear_dims]`` m/s, ``angular = angular_scale *
action[angular_dims]`` rad/s, each clamped by norm to ``max_linear`` / ``max_angular``, in ``frame_id``.
The gripper dimension (+1 = close, as in Meta-World and LIBERO; flip with ``gripper_close_positive``)
is mapped linearly onto [gripper_open, gripper_closed] and published as ``Float64MultiArray`` for a
forward position controller. No fresh action within ``timeout`` (or an invalid one) -> zero twist;
SIGINT -> zero twist.
"""

from __future__ import annotations

import time

import numpy as np

from policystack.ros import convert
from policystack.ros.runtime import Throttle, as_list, node_kwargs, param, run
from policystack.ros.topics import msg_class, qos_profile


def _node_base():
    from rclpy.node import Node
    return Node


def twist_from_action(a: np.ndarray, linear_dims, angular_dims, linear_scale: float, angular_scale: float,
                      max_linear: float, max_angular: float) -> tuple[np.ndarray, np.ndarray]:
    """(linear xyz, angular xyz) from an action vector; norms clamped. Pure, for tests and reuse."""
    def part(dims, scale, cap):
        v = np.zeros(3)
        for i, d in enumerate(dims[:3]):
            v[i] = scale * float(a[d])
        n = float(np.linalg.norm(v))
        if cap > 0 and n > cap:
            v *= cap / n
        return v
    return part(linear_dims, linear_scale, max_linear), part(angular_dims, angular_scale, max_angular)


def gripper_position(value: float, open_pos: float, closed_pos: float, close_positive: bool = True) -> float:
    x = float(np.clip(value, -1.0, 1.0))
    frac = (x + 1.0) / 2.0 if close_positive else (1.0 - x) / 2.0   # 0 = open, 1 = closed
    return open_pos + frac * (closed_pos - open_pos)


class ArmBridge(_node_base()):
    def __init__(self):
        super().__init__("arm_bridge", **node_kwargs())
        self.exit_code, self.done = 0, False
        self.frame_id = str(param(self, "frame_id", "base_link"))
        self.linear_dims = [int(d) for d in as_list(param(self, "linear_dims", [0, 1, 2]))]
        self.angular_dims = [int(d) for d in as_list(param(self, "angular_dims", ""))]
        self.linear_scale = float(param(self, "linear_scale", 0.1))
        self.angular_scale = float(param(self, "angular_scale", 0.5))
        self.max_linear = float(param(self, "max_linear", 0.25))
        self.max_angular = float(param(self, "max_angular", 1.0))
        self.gripper_dim = int(param(self, "gripper_dim", 3))
        self.gripper_open = float(param(self, "gripper_open", 0.04))
        self.gripper_closed = float(param(self, "gripper_closed", 0.0))
        self.close_positive = bool(param(self, "gripper_close_positive", True))
        self.timeout = float(param(self, "timeout", 0.5))
        self.twist_pub = self.create_publisher(msg_class("TwistStamped"),
                                               str(param(self, "twist_topic", "/servo_node/delta_twist_cmds")),
                                               qos_profile("reliable", 10))
        self.gripper_pub = None
        if self.gripper_dim >= 0:
            self.gripper_pub = self.create_publisher(
                msg_class("Float64MultiArray"), str(param(self, "gripper_topic", "/gripper_controller/commands")),
                qos_profile("reliable", 10))
        self.create_subscription(msg_class("Float64MultiArray"), str(param(self, "action_topic", "/policy/action")),
                                 self._on_action, qos_profile("reliable", 10))
        self.last_time = None
        self.stopped = True
        self.rejected = 0
        self._throttle = Throttle(2.0)
        self.create_timer(max(self.timeout / 2, 0.02), self._watchdog)
        self.get_logger().info(f"action -> TwistStamped[{self.frame_id}] on {self.twist_pub.topic_name}"
                               + (f", gripper dim {self.gripper_dim} -> {self.gripper_pub.topic_name}"
                                  if self.gripper_pub else ""))

    def _twist(self, lin: np.ndarray, ang: np.ndarray) -> None:
        msg = msg_class("TwistStamped")()
        convert.set_stamp(msg, self.get_clock().now().nanoseconds, self.frame_id)
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = map(float, lin)
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = map(float, ang)
        self.twist_pub.publish(msg)

    def _zero(self, reason: str) -> None:
        if not self.stopped and self._throttle.ok(f"zero:{reason}"):
            self.get_logger().warning(f"zero twist: {reason}")
        self.stopped = True
        self._twist(np.zeros(3), np.zeros(3))

    def _on_action(self, msg) -> None:
        try:
            a = convert.action_from_msg(msg)
            need = max(self.linear_dims + self.angular_dims + [self.gripper_dim]) + 1
            if a.size < need:
                raise convert.MessageError(f"action has {a.size} values, the bridge reads dims up to {need - 1}")
            if not np.all(np.isfinite(a)):
                raise convert.MessageError("action contains NaN/inf")
        except convert.MessageError as e:
            self.rejected += 1
            if self._throttle.ok(f"reject:{e}"):
                self.get_logger().warning(f"rejected action: {e}")
            self._zero(f"invalid action ({e})")
            return
        lin, ang = twist_from_action(a, self.linear_dims, self.angular_dims, self.linear_scale,
                                     self.angular_scale, self.max_linear, self.max_angular)
        self._twist(lin, ang)
        if self.gripper_pub is not None:
            pos = gripper_position(a[self.gripper_dim], self.gripper_open, self.gripper_closed, self.close_positive)
            self.gripper_pub.publish(convert.encode_multiarray(np.array([pos]), ["gripper"], double=True))
        self.last_time = time.monotonic()
        self.stopped = False

    def _watchdog(self) -> None:
        if self.last_time is not None and not self.stopped and time.monotonic() - self.last_time > self.timeout:
            self._zero(f"no action for {self.timeout} s")

    def stop(self, reason: str) -> None:
        self.stopped = False
        self._zero(f"exit ({reason})")
        from rclpy.duration import Duration
        self.twist_pub.wait_for_all_acked(Duration(seconds=0.5))


def main(args: list[str] | None = None) -> int:
    return run(ArmBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
