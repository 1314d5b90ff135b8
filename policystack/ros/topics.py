"""The topic <-> observation-key map, message type names and QoS presets, shared by every node.

A node's inputs come from its ROS parameters (nested YAML, so they live in the same params file the
launch files pass)::

    inputs:
      state: {key: observation.state, topic: /sim/state, type: JointState, qos: reliable, max_age: 0.5}
      cam:   {key: observation.images.corner2, topic: /sim/images/corner2, type: Image, qos: sensor_data}
      task:  {key: task, topic: /sim/task, type: String, qos: latched, max_age: 0.0}
      mic:   {key: observation.audio.mic, topic: /mic/audio, type: Float32MultiArray, window: 16000}

This module imports rclpy only inside :func:`qos_profile` and :func:`msg_class`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping

from policystack import keys as K
from policystack.errors import ConfigError, SpecMismatchError
from policystack.spec import Feature, Spec

MSG_TYPES = {
    "Image": "sensor_msgs/msg/Image",
    "CompressedImage": "sensor_msgs/msg/CompressedImage",
    "JointState": "sensor_msgs/msg/JointState",
    "String": "std_msgs/msg/String",
    "Float32MultiArray": "std_msgs/msg/Float32MultiArray",
    "Float64MultiArray": "std_msgs/msg/Float64MultiArray",
    "TwistStamped": "geometry_msgs/msg/TwistStamped",
}
HEADERLESS = {"String", "Float32MultiArray", "Float64MultiArray"}
QOS_NAMES = ("reliable", "best_effort", "sensor_data", "latched")


def short_type(name: str) -> str:
    """'sensor_msgs/msg/Image', 'sensor_msgs/Image' or 'Image' -> 'Image' (one of MSG_TYPES)."""
    short = str(name).rsplit("/", 1)[-1]
    if short not in MSG_TYPES:
        raise ConfigError(f"unsupported message type {name!r}; supported: {', '.join(MSG_TYPES)}")
    full = MSG_TYPES[short]
    if "/" in str(name) and str(name) not in (full, full.replace("/msg/", "/")):
        raise ConfigError(f"message type {name!r} is not {full}")
    return short


def full_type(name: str) -> str:
    return MSG_TYPES[short_type(name)]


def msg_class(name: str):
    pkg, _, cls = full_type(name).split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), cls)


def default_topic(key: str, prefix: str = "/sim") -> str:
    """'observation.images.corner2' -> '/sim/images/corner2'; 'observation.state' -> '/sim/state'."""
    prefix = prefix.rstrip("/")
    if key == K.TASK:
        return f"{prefix}/task"
    if key == K.STATE:
        return f"{prefix}/state"
    mod = K.modality_of(key)
    return f"{prefix}/{mod}/{K.short_name(key)}"


def default_type(feature: Feature) -> str:
    """The standard message a key travels in (DESIGN.md): images Image, depth 32FC1 Image, state JointState."""
    if feature.dtype == "str":
        return "String"
    if feature.key == K.STATE:
        return "JointState"
    shape = tuple(feature.shape)
    if feature.dtype == "uint8" and len(shape) in (2, 3):
        return "Image"
    if feature.dtype == "float32" and len(shape) == 2 and K.modality_of(feature.key) in ("depth", "tactile"):
        return "Image"
    if feature.dtype == "float64":
        return "Float64MultiArray"
    return "Float32MultiArray"


def qos_profile(name: str, depth: int = 5):
    """A QoS preset by name. 'latched' is the TRANSIENT_LOCAL depth-1 profile for the instruction."""
    from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                           qos_profile_sensor_data)
    if name not in QOS_NAMES:
        raise ConfigError(f"unknown qos {name!r}; choose one of {QOS_NAMES}")
    if name == "sensor_data":
        p = QoSProfile(**{k: getattr(qos_profile_sensor_data, k) for k in ("history", "reliability", "durability")},
                       depth=max(1, int(depth)))
        return p
    if name == "latched":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    rel = ReliabilityPolicy.RELIABLE if name == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(1, int(depth)), reliability=rel,
                      durability=DurabilityPolicy.VOLATILE)


@dataclass
class InputConfig:
    """One subscribed topic feeding one observation key."""

    name: str
    key: str
    topic: str
    type: str
    qos: str = "reliable"
    depth: int = 5
    max_age: float = 0.5          # seconds; 0 = never stale (latched instruction)
    window: int = 0               # >0: concatenate chunks along the last axis, keep this many samples
    joint_names: tuple[str, ...] = ()   # JointState: pick and order these joints
    field: str = "position"       # JointState: position | velocity | effort
    use_header_stamp: bool = True  # False: stamp on receipt (clock skew between machines)

    def __post_init__(self) -> None:
        where = f"inputs.{self.name}"
        try:
            K.modality_of(self.key)
        except KeyError as e:
            raise ConfigError(f"{where}.key: {e.args[0]}") from None
        if not self.topic:
            raise ConfigError(f"{where}.topic is empty")
        self.type = short_type(self.type)
        if self.qos not in QOS_NAMES:
            raise ConfigError(f"{where}.qos={self.qos!r}; choose one of {QOS_NAMES}")
        if self.max_age < 0 or self.window < 0 or self.depth < 1:
            raise ConfigError(f"{where}: max_age and window must be >= 0 and depth >= 1")
        if self.field not in ("position", "velocity", "effort"):
            raise ConfigError(f"{where}.field={self.field!r}; choose position, velocity or effort")
        if self.key == K.TASK and self.type != "String":
            raise ConfigError(f"{where}: the instruction ({K.TASK!r}) travels as String, not {self.type}")
        self.joint_names = tuple(self.joint_names)

    @property
    def has_header(self) -> bool:
        return self.type not in HEADERLESS


_INPUT_FIELDS = {"key", "topic", "type", "qos", "depth", "max_age", "window", "joint_names", "field",
                 "use_header_stamp"}


def parse_inputs(flat: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, InputConfig]:
    """Group ``{'state.key': ..., 'state.topic': ...}`` (ROS parameters under ``inputs.``) into configs."""
    grouped: dict[str, dict[str, Any]] = {}
    for dotted, value in flat.items():
        if "." not in dotted:
            raise ConfigError(f"inputs.{dotted}: expected inputs.<name>.<field>")
        name, fld = dotted.split(".", 1)
        if fld not in _INPUT_FIELDS:
            raise ConfigError(f"inputs.{name}.{fld}: unknown field; known: {', '.join(sorted(_INPUT_FIELDS))}")
        grouped.setdefault(name, dict(defaults or {}))[fld] = value
    out = {}
    for name, d in grouped.items():
        for req in ("key", "topic"):
            if req not in d:
                raise ConfigError(f"inputs.{name}.{req} is missing")
        if "type" not in d:
            d["type"] = "String" if d["key"] == K.TASK else ("JointState" if d["key"] == K.STATE else "Image")
        try:
            out[name] = InputConfig(name=name, **d)
        except TypeError as e:
            raise ConfigError(f"inputs.{name}: {e}") from None
    keys = [c.key for c in out.values()]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ConfigError(f"observation key(s) {dup} mapped from more than one topic")
    return out


def check_inputs(inputs: Mapping[str, InputConfig], required: Spec, instruction: str = "") -> None:
    """Every key the policy needs must have a topic (the instruction may come from a parameter)."""
    mapped = {c.key for c in inputs.values()}
    missing = [f.key for f in required if f.key not in mapped and not (f.key == K.TASK and instruction)]
    if missing:
        raise SpecMismatchError(
            f"the policy needs {missing} but the inputs map has no topic for "
            f"{'it' if len(missing) == 1 else 'them'} (mapped: {', '.join(sorted(mapped)) or 'nothing'}); "
            f"add inputs.<name>: {{key: {missing[0]}, topic: ..., type: ...}} to the params YAML"
            + (" or set the 'instruction' parameter" if K.TASK in missing else ""))
    for c in inputs.values():
        if c.key not in required:
            continue
        f = required[c.key]
        kind = K.modality_of(c.key)
        if c.type in ("Image", "CompressedImage") and len(f.shape) not in (2, 3):
            raise SpecMismatchError(f"inputs.{c.name}: {c.key!r} has shape {f.shape}; an {c.type} carries HxW(xC)")
        if c.type == "JointState" and len(f.shape) != 1:
            raise SpecMismatchError(f"inputs.{c.name}: {c.key!r} has shape {f.shape}; JointState carries a vector")
        if c.window and kind not in ("audio", "tactile", "state"):
            raise SpecMismatchError(f"inputs.{c.name}.window is for high-rate streams (audio, tactile, F/T), "
                                    f"not {kind}")

