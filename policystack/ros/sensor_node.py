"""sensor_node: one policystack sensor driver (Sensor contract) on ROS topics.

``sensor`` parameters are the driver's YAML rig entry (``sensor.type: opencv``, ``sensor.name: wrist``,
``sensor.source: /dev/video0``, ...), handed to ``sensors.rig.make_sensor``. At ``rate`` Hz the node
takes the newest sample (``read_latest(max_age)``; a stale sample is skipped, counted and logged) and
publishes each of its observation keys on ``<topic_prefix>/<modality>/<name>`` with the standard message
for that key (Image rgb8 / 32FC1, Float32MultiArray (channels, samples) for audio), stamped with the
capture time. A sample already published is not published again.
"""

from __future__ import annotations

import time

from policystack.ros import convert
from policystack.ros.runtime import Throttle, node_kwargs, param, params_by_prefix, run
from policystack.ros.topics import default_topic, default_type, msg_class, qos_profile


def _node_base():
    from rclpy.node import Node
    return Node


class SensorNode(_node_base()):
    def __init__(self):
        super().__init__("sensor_node", **node_kwargs())
        self.exit_code, self.done = 0, False
        from sensors.rig import make_sensor
        cfg = dict(params_by_prefix(self, "sensor"))
        if "type" not in cfg:
            raise ValueError("sensor_node: set sensor.type (opencv, realsense, microphone, tactile) and its fields")
        self.rate = float(param(self, "rate", 30.0))
        self.max_age = float(param(self, "max_age", 0.2))
        self.frame_id = str(param(self, "frame_id", "")) or str(cfg.get("name", "sensor"))
        prefix = str(param(self, "topic_prefix", "/sensors"))
        qos = qos_profile(str(param(self, "qos", "sensor_data")), int(param(self, "qos_depth", 2)))
        self.driver = make_sensor(cfg)
        self.driver.open()
        self.spec = self.driver.features
        self.types = {f.key: default_type(f) for f in self.spec}
        self.pubs = {f.key: self.create_publisher(msg_class(self.types[f.key]), default_topic(f.key, prefix), qos)
                     for f in self.spec}
        self.last_seq = None
        self.stale = 0
        self.published = 0
        self._throttle = Throttle(5.0)
        self.create_timer(1.0 / self.rate, self._tick)
        self.get_logger().info(f"{cfg['type']} sensor {cfg.get('name', '')}: "
                               + ", ".join(f"{k}->{p.topic_name}[{self.types[k]}]" for k, p in self.pubs.items()))

    def _tick(self) -> None:
        from sensors.errors import SensorError, StaleError
        try:
            sample = self.driver.read_latest(self.max_age)
        except StaleError as e:
            self.stale += 1
            if self._throttle.ok("stale"):
                self.get_logger().warning(f"stale sample skipped ({self.stale} so far): {e}")
            return
        except SensorError as e:
            if self._throttle.ok("error"):
                self.get_logger().error(f"sensor error: {e}")
            return
        if sample.seq == self.last_seq:
            return
        self.last_seq = sample.seq
        # monotonic capture time -> ROS time: subtract the sample's age from "now"
        stamp = self.get_clock().now().nanoseconds - int((time.monotonic() - sample.t) * 1e9)
        for key, value in sample.data.items():
            if key not in self.pubs:
                continue
            self.pubs[key].publish(convert.encode(value, self.spec[key], self.types[key], stamp, self.frame_id))
        self.published += 1

    def stop(self, reason: str) -> None:
        self.driver.close()
        self.get_logger().info(f"closed ({reason}): published {self.published} samples, skipped {self.stale} stale")


def main(args: list[str] | None = None) -> int:
    return run(SensorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
