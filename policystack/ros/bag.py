"""rosbag2 (MCAP or sqlite3, read with ``rosbags``) -> HDF5 training episodes (DESIGN.md layout).

Observation topics come from the same ``inputs`` map the policy node uses (its params YAML), so what
is recorded on the robot trains the policy that will read those topics. Messages are decoded with
the policy node's own converters (same validation), then resampled on a fixed grid at ``rate`` Hz of
bag receive time, ``t_k = t_0 + (k + phase) / rate`` with ``t_0`` the first observation: each key takes
its newest message at or before ``t_k``, and the action is the newest one at or before
``t_0 + (k + 1) / rate`` (the command in force when the next observation was taken, i.e. the one the
robot executed after this observation). ``phase`` (default 0.1 of a period) keeps receive-time jitter
from pairing a tick with the previous observation. Episodes split at ``episode_start`` events (sim_node's events topic) when
the bag has them, else the bag is one episode.
"""

from __future__ import annotations

import json
import logging
from bisect import bisect_right
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from policystack import keys as K
from policystack.dataset import Episode, EpisodeWriter
from policystack.errors import DatasetError
from policystack.ros import convert
from policystack.ros.topics import InputConfig, short_type
from policystack.spec import Feature, Spec

log = logging.getLogger(__name__)


class _Stream:
    def __init__(self):
        self.times: list[int] = []
        self.values: list[Any] = []
        self.names: tuple[str, ...] | None = None

    def newest(self, t: int, after: int) -> Any | None:
        got = self.newest_with_time(t, after)
        return None if got is None else got[1]

    def newest_with_time(self, t: int, after: int) -> tuple[int, Any] | None:
        i = bisect_right(self.times, t) - 1
        if i < 0 or self.times[i] < after:
            return None
        return self.times[i], self.values[i]


def deserialize(store, raw: bytes | memoryview, msgtype: str):
    """rosbags CDR decoding that tolerates the trailing alignment bytes Fast CDR (rmw_fastrtps) appends.

    ``Typestore.deserialize_cdr`` rejects more than 3 bytes after the message, but rclpy-serialized
    JointState messages (and so bags recorded from rclpy raw subscriptions or by ``ros2 bag``) can end
    with up to 8 padding bytes; the message itself decodes exactly.
    """
    from rosbags.serde import SerdeError
    try:
        return store.deserialize_cdr(raw, msgtype)
    except SerdeError as e:
        if "size mismatch" not in str(e):
            raise
    if bytes(raw[:2]) != b"\x00\x01":   # little-endian CDR is what every ROS 2 rmw writes
        raise DatasetError(f"unsupported CDR encapsulation {bytes(raw[:4]).hex()} for {msgtype}")
    msgdef = store.get_msgdef(msgtype)
    msg, pos = msgdef.deserialize_cdr_le(raw[4:], 0, msgdef.cls, store)
    if len(raw) - 4 - pos > 8:
        raise DatasetError(f"{msgtype}: {len(raw) - 4 - pos} bytes left after the message; not this type")
    return msg


def read_streams(bag: str | Path, inputs: Mapping[str, InputConfig], action_topic: str,
                 events_topic: str | None, keys: Sequence[str] | None = None
                 ) -> tuple[dict[str, _Stream], _Stream, list[dict], dict[str, int]]:
    """Decode the bag's mapped topics. Mapped topics the bag lacks are dropped with a warning, unless
    ``keys`` asks for them (then it is an error naming them)."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore
    path = Path(bag)
    if not (path / "metadata.yaml").is_file():
        raise DatasetError(f"{path} is not a rosbag2 directory (no metadata.yaml)")
    store = get_typestore(Stores.ROS2_JAZZY)
    if keys is not None:
        unknown = [k for k in keys if k not in {c.key for c in inputs.values()}]
        if unknown:
            raise DatasetError(f"key(s) {unknown} have no topic in the inputs map")
        inputs = {n: c for n, c in inputs.items() if c.key in keys}
    actions = _Stream()
    events: list[dict] = []
    rejected: dict[str, int] = {}
    with Reader(path) as reader:
        present = {c.topic for c in reader.connections}
        missing = [c for c in inputs.values() if c.topic not in present]
        if action_topic not in present or (keys is not None and missing):
            lacking = ([action_topic] if action_topic not in present else []) + [c.topic for c in missing]
            raise DatasetError(f"{path} lacks topic(s) {lacking}; it has {sorted(present)}")
        for c in missing:
            log.warning("%s: not in the bag, %s is left out", c.topic, c.key)
        by_topic = {c.topic: c for c in inputs.values() if c.topic in present}
        streams = {c.key: _Stream() for c in by_topic.values()}
        wanted = [c for c in reader.connections if c.topic in by_topic or c.topic in (action_topic, events_topic)]
        for conn, t, raw in reader.messages(connections=wanted):
            msg = deserialize(store, raw, conn.msgtype)
            if conn.topic == action_topic:
                try:
                    actions.times.append(t)
                    actions.values.append(convert.action_from_msg(msg).astype(np.float32))
                except convert.MessageError:
                    actions.times.pop()
                continue
            if conn.topic == events_topic:
                try:
                    events.append({**json.loads(msg.data), "_t": t})
                except ValueError:
                    pass
                continue
            cfg = by_topic[conn.topic]
            if short_type(conn.msgtype) != cfg.type:
                raise DatasetError(f"{conn.topic} holds {conn.msgtype}, the inputs map says {cfg.type}")
            try:
                value = convert.decode(msg, cfg.type, None, cfg.joint_names, cfg.field)
            except convert.MessageError as e:
                rejected[cfg.key] = rejected.get(cfg.key, 0) + 1
                log.debug("skipping a message on %s: %s", conn.topic, e)
                continue
            s = streams[cfg.key]
            if s.times and t < s.times[-1]:
                continue
            s.times.append(t)
            s.values.append(value)
            if cfg.type == "JointState" and s.names is None:
                s.names = tuple(cfg.joint_names) or tuple(msg.name)
    return streams, actions, events, rejected


def bag_to_episodes(bag: str | Path, inputs: Mapping[str, InputConfig], rate: float,
                    action_topic: str = "/policy/action", events_topic: str | None = "/sim/events",
                    task: str | None = None, min_length: int = 2, phase: float = 0.1,
                    keys: Sequence[str] | None = None) -> tuple[list[Episode], Spec]:
    if rate <= 0:
        raise DatasetError(f"rate must be > 0 Hz, got {rate}")
    if not 0 <= phase < 1:
        raise DatasetError(f"phase must be in [0, 1), got {phase}")
    streams, actions, events, rejected = read_streams(bag, inputs, action_topic, events_topic, keys)
    for key, n in rejected.items():
        log.warning("%s: skipped %d message(s) that do not decode", key, n)
    obs_keys = [k for k in streams if k != K.TASK]
    if not obs_keys:
        raise DatasetError("the inputs map names no observation topics besides the instruction")
    empty = [k for k in obs_keys if not streams[k].times]
    if empty or not actions.times:
        raise DatasetError(f"{bag}: no messages for {empty or ['the action topic ' + action_topic]}")
    if task is None and K.TASK in streams and streams[K.TASK].values:
        task = str(streams[K.TASK].values[-1])
    dt = int(round(1e9 / rate))
    start_ev = sorted((e for e in events if e.get("event") == "episode_start"), key=lambda e: e["_t"])
    ends = {e.get("episode"): e for e in events if e.get("event") == "episode_end"}
    t_last = max(max(s.times[-1] for k, s in streams.items() if k in obs_keys), actions.times[-1])
    bounds = [e["_t"] for e in start_ev] or [min(s.times[0] for k, s in streams.items() if k in obs_keys)]
    segments = list(zip(bounds, bounds[1:] + [t_last + 1]))
    # an observation older than its input's max_age (at least two periods) ends the usable stretch
    max_age = {c.key: max(int(c.max_age * 1e9), 2 * dt) for c in inputs.values()}
    episodes = []
    for i, (b0, b1) in enumerate(segments):
        ep_id = start_ev[i].get("episode", i) if start_ev else None
        end = ends.get(ep_id)
        if end is not None:
            b1 = min(b1, end["_t"] + 1)
        firsts = []
        for k in obs_keys:
            s = streams[k]
            j = bisect_right(s.times, b0 - 1)
            if j >= len(s.times) or s.times[j] >= b1:
                firsts = None
                break
            firsts.append(s.times[j])
        if not firsts:
            continue
        obs: dict[str, list] = {k: [] for k in obs_keys}
        acts = []
        t = max(firsts) + int(phase * dt)
        while t < b1:
            a = actions.newest(min(t + dt - int(phase * dt), b1 - 1), after=b0)
            vals = {k: streams[k].newest_with_time(t, after=b0) for k in obs_keys}
            if a is not None and all(v is not None and t - v[0] <= max_age[k] for k, v in vals.items()):
                vals = {k: v[1] for k, v in vals.items()}
                for k in obs_keys:
                    obs[k].append(vals[k])
                acts.append(a)
            t += dt
        if len(acts) < min_length:
            continue
        T = len(acts)
        attrs: dict[str, Any] = {"source": "rosbag2", "bag": str(bag), "rate_hz": float(rate)}
        if end is not None and "success" in end:
            attrs["success"] = bool(end["success"])
        if end is not None and "init_state_index" in end:
            attrs["init_state_index"] = int(end["init_state_index"])
        episodes.append(Episode(obs={k: np.stack(v) for k, v in obs.items()}, actions=np.stack(acts),
                                rewards=np.zeros(T, np.float32), dones=np.eye(1, T, T - 1, dtype=np.uint8)[0],
                                task=task or "", attrs=attrs))
    if not episodes:
        raise DatasetError(f"{bag}: no episode has {min_length}+ ticks with every observation and an action")
    ep = episodes[0]
    feats = []
    for k in obs_keys:
        names = streams[k].names
        shape = ep.obs[k].shape[1:]
        feats.append(Feature(k, shape, str(ep.obs[k].dtype),
                             names=names if names and len(shape) == 1 and len(names) == shape[0] else None))
    feats.append(Feature(K.ACTION, ep.actions.shape[1:], "float32"))
    if task:
        feats.append(Feature(K.TASK, (), "str"))
    return episodes, Spec.of(feats)


def convert_bag(bag: str | Path, out: str | Path, inputs: Mapping[str, InputConfig], rate: float,
                action_topic: str = "/policy/action", events_topic: str | None = "/sim/events",
                task: str | None = None, phase: float = 0.1,
                keys: Sequence[str] | None = None) -> tuple[Path, int, int]:
    """Write the bag's episodes to ``out`` (appending); returns (path, episodes, steps)."""
    episodes, spec = bag_to_episodes(bag, inputs, rate, action_topic, events_topic, task, phase=phase, keys=keys)
    language = episodes[0].task or None
    with EpisodeWriter(out, env_args={"source": "rosbag2", "bag": str(bag), "rate_hz": rate,
                                      "topics": {k: c.topic for k in spec.keys() for c in inputs.values() if c.key == k},
                                      "action_topic": action_topic},
                       features=spec, language=language) as w:
        for ep in episodes:
            w.add(ep)
    steps = sum(len(e) for e in episodes)
    log.info("%s -> %s: %d episodes, %d steps at %.1f Hz", bag, out, len(episodes), steps, rate)
    return Path(out), len(episodes), steps
