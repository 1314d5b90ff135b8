"""recorder: record topics to a rosbag2 (MCAP by default, format v9) with ``rosbags``.

Like ``ros2 bag record``: each topic's type and a compatible QoS are taken from its publishers
(reliable only if every publisher is, transient-local for latched topics such as the instruction),
and messages are stored as the serialized CDR rclpy received (``raw=True``), stamped with the receive
time. The bag opens with ``ros2 bag`` on a Jazzy robot and converts to HDF5 episodes with
``policystack ros bag2hdf5``. The bag is closed (metadata.yaml written) on SIGINT/SIGTERM or after
``duration`` seconds.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from policystack.ros.runtime import as_list, node_kwargs, param, run


def _node_base():
    from rclpy.node import Node
    return Node


def _rosbags_qos(profile):
    """rclpy QoSProfile -> rosbags Qos (for offered_qos_profiles in metadata.yaml, so playback QoS matches)."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime)

    def t(d):
        ns = int(d.nanoseconds) if d is not None else 0
        return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)
    return Qos(history=QosHistory(int(profile.history)), depth=int(profile.depth),
               reliability=QosReliability(int(profile.reliability)),
               durability=QosDurability(int(profile.durability)), deadline=t(profile.deadline),
               lifespan=t(profile.lifespan), liveliness=QosLiveliness(int(profile.liveliness)),
               liveliness_lease_duration=t(profile.liveliness_lease_duration),
               avoid_ros_namespace_conventions=False)


class Recorder(_node_base()):
    def __init__(self):
        super().__init__("recorder", **node_kwargs())
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore
        self.exit_code, self.done = 0, False
        self.topics = [str(t) for t in as_list(param(self, "topics", ""))]
        if not self.topics:
            raise ValueError("recorder: parameter 'topics' is empty; list the topics to record")
        out = str(param(self, "output", "")) or f"rosbag2_{time.strftime('%Y_%m_%d-%H_%M_%S')}"
        self.output = Path(out)
        if self.output.exists():
            raise FileExistsError(f"recorder: output {self.output} exists; rosbag2 needs a new directory")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        storage = str(param(self, "storage", "mcap")).lower()
        if storage not in ("mcap", "sqlite3"):
            raise ValueError(f"recorder: storage={storage!r}; choose mcap or sqlite3")
        self.duration = float(param(self, "duration", 0.0))
        # subscribe to all topics in one pass once every one has a publisher (or this long after the first
        # appeared), so topics of one graph start recording together rather than a discovery round apart
        self.discovery_grace = float(param(self, "discovery_grace", 2.0))
        self._first_seen: float | None = None
        self.typestore = get_typestore(Stores.ROS2_JAZZY)
        self.writer = Writer(self.output, version=9,
                             storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3)
        self.writer.open()
        self.conns: dict[str, object] = {}
        self.subs: dict[str, object] = {}
        self.counts: dict[str, int] = {t: 0 for t in self.topics}
        self.t0 = time.monotonic()
        self.closed = False
        self.create_timer(0.1, self._discover)
        self.get_logger().info(f"recording {', '.join(self.topics)} -> {self.output} ({storage})")

    def _discover(self) -> None:
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        if self.duration > 0 and time.monotonic() - self.t0 > self.duration:
            self.done = True
            return
        pending = {t: self.get_publishers_info_by_topic(t) for t in self.topics if t not in self.subs}
        if not any(pending.values()):
            return
        self._first_seen = self._first_seen or time.monotonic()
        if not all(pending.values()) and time.monotonic() - self._first_seen < self.discovery_grace:
            return
        for topic, infos in pending.items():
            if not infos:
                continue
            type_name = infos[0].topic_type
            pkg, _, name = type_name.split("/")
            cls = getattr(importlib.import_module(f"{pkg}.msg"), name)
            reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
            latched = all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
            qos = QoSProfile(depth=100,
                             reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
            resolved = self.resolve_topic_name(topic)   # the bag keeps the remapped name
            try:
                self.conns[topic] = self.writer.add_connection(
                    resolved, type_name, typestore=self.typestore,
                    offered_qos_profiles=[_rosbags_qos(i.qos_profile) for i in infos[:1]])
            except Exception as e:  # a type rosbags' Jazzy store does not know
                self.get_logger().error(f"cannot record {topic} ({type_name}): {e}")
                self.subs[topic] = None
                continue
            self.subs[topic] = self.create_subscription(cls, topic, lambda raw, t=topic: self._write(t, raw),
                                                        qos, raw=True)
            self.get_logger().info(f"recording {resolved} [{type_name}, {'reliable' if reliable else 'best_effort'}"
                                   f"{', transient_local' if latched else ''}]")

    def _write(self, topic: str, raw: bytes) -> None:
        if self.closed:
            return
        self.writer.write(self.conns[topic], self.get_clock().now().nanoseconds, raw)
        self.counts[topic] += 1

    def stop(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        self.get_logger().info(f"closed {self.output} ({reason}): "
                               + ", ".join(f"{t}={n}" for t, n in self.counts.items()))


def main(args: list[str] | None = None) -> int:
    return run(Recorder, args)


if __name__ == "__main__":
    raise SystemExit(main())
