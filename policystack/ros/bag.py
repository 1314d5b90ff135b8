"""rosbag2 (MCAP or sqlite3, read with ``rosbags``) -> HDF5 training episodes (DESIGN.md layout).

Observation topics come from the same ``inputs`` map the policy node uses (its params YAML), so what
is recorded on the robot trains the policy that will read those topics. Messages are decoded with
the policy node's own converters (same validation), then resampled on a fixed grid at ``rate`` Hz of
bag receive time: at tick ``t`` each key takes its newest message at or before ``t``, and the action
is the newest one at or before ``t + 1/rate`` (the command that was in force for the step that
followed the observation). Episodes split at ``episode_start`` events (sim_node's events topic) when
the bag has them, else the bag is one episode.
"""

from __future__ import annotations

import json
import logging
from bisect import bisect_right
from pathlib import Path
from typing import Any, Mapping

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
        i = bisect_right(self.times, t) - 1
        if i < 0 or self.times[i] < after:
            return None
        return self.values[i]


def read_streams(bag: str | Path, inputs: Mapping[str, InputConfig], action_topic: str,
                 events_topic: str | None) -> tuple[dict[str, _Stream], _Stream, list[dict], dict[str, int]]:
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore
    path = Path(bag)
    if not (path / "metadata.yaml").is_file():
        raise DatasetError(f"{path} is not a rosbag2 directory (no metadata.yaml)")
    store = get_typestore(Stores.ROS2_JAZZY)
    by_topic = {c.topic: c for c in inputs.values()}
    streams = {c.key: _Stream() for c in inputs.values()}
    actions = _Stream()
    events: list[dict] = []
    rejected: dict[str, int] = {}
    with Reader(path) as reader:
        present = {c.topic for c in reader.connections}
        missing = [t for t in [*by_topic, action_topic] if t not in present]
        if missing:
            raise DatasetError(f"{path} lacks topic(s) {missing}; it has {sorted(present)}")
        wanted = [c for c in reader.connections if c.topic in by_topic or c.topic in (action_topic, events_topic)]
        for conn, t, raw in reader.messages(connections=wanted):
            msg = store.deserialize_cdr(raw, conn.msgtype)
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
                    task: str | None = None, min_length: int = 2) -> tuple[list[Episode], Spec]:
    if rate <= 0:
        raise DatasetError(f"rate must be > 0 Hz, got {rate}")
    streams, actions, events, rejected = read_streams(bag, inputs, action_topic, events_topic)
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
    starts = sorted(e["_t"] for e in events if e.get("event") == "episode_start")
    ends = {e.get("episode"): e for e in events if e.get("event") == "episode_end"}
    t_last = max(max(s.times[-1] for k, s in streams.items() if k in obs_keys), actions.times[-1])
    bounds = starts or [min(s.times[0] for k, s in streams.items() if k in obs_keys)]
    segments = list(zip(bounds, bounds[1:] + [t_last + 1]))
    episodes = []
    for i, (b0, b1) in enumerate(segments):
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
        t = max(firsts)
        while t < b1:
            a = actions.newest(min(t + dt, b1 - 1), after=b0)
            vals = {k: streams[k].newest(t, after=b0) for k in obs_keys}
            if a is not None and all(v is not None for v in vals.values()):
                for k in obs_keys:
                    obs[k].append(vals[k])
                acts.append(a)
            t += dt
        if len(acts) < min_length:
            continue
        T = len(acts)
        attrs: dict[str, Any] = {"source": "rosbag2", "bag": str(bag), "rate_hz": float(rate)}
        end = ends.get(i)
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
                task: str | None = None) -> tuple[Path, int, int]:
    """Write the bag's episodes to ``out`` (appending); returns (path, episodes, steps)."""
    episodes, spec = bag_to_episodes(bag, inputs, rate, action_topic, events_topic, task)
    language = episodes[0].task or None
    with EpisodeWriter(out, env_args={"source": "rosbag2", "bag": str(bag), "rate_hz": rate,
                                      "topics": {c.key: c.topic for c in inputs.values()},
                                      "action_topic": action_topic},
                       features=spec, language=language) as w:
        for ep in episodes:
            w.add(ep)
    steps = sum(len(e) for e in episodes)
    log.info("%s -> %s: %d episodes, %d steps at %.1f Hz", bag, out, len(episodes), steps, rate)
    return Path(out), len(episodes), steps
