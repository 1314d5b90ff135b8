"""sim_node: any policystack env on ROS topics, stepping on each received action.

Publishes every observation key on ``<topic_prefix>/...`` with standard messages (images Image rgb8,
depth Image 32FC1, state JointState with the env's element names, instruction String latched), episode
events (JSON String on ``<prefix>/events``) and, when done, the success rate (log, events, optional
JSON file at ``results_path``).

``mode: lockstep`` (evaluation): publish the observation stamped with sim time plus a tick message
(``<prefix>/tick``: JSON {stamp, episode, step}), wait for the action, step; a lost tick is re-sent.
Episode i starts from init state ``start_index + i``, as in ``policystack eval``, so the success rate
over ROS equals the in-process one. ``mode: timer``: publish at ``rate`` and step with the newest
action, like a real robot (a missing action steps with zeros and is counted).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from policystack import keys as K
from policystack.ros import convert
from policystack.ros.runtime import node_kwargs, now_ns, param, params_by_prefix, run
from policystack.ros.topics import default_topic, default_type, msg_class, qos_profile

MODES = ("lockstep", "timer")
BASE_NS = 1_000_000_000   # sim time starts at 1 s: a zero stamp means "unstamped" in ROS


def _load_node_base():
    from rclpy.node import Node
    return Node


class SimNode(_load_node_base()):
    def __init__(self):
        super().__init__("sim_node", **node_kwargs())
        self.exit_code = 0
        self.done = False
        import sim
        self.env_name = str(param(self, "env", "reach-v3"))
        self.env_kwargs = dict(params_by_prefix(self, "env_kwargs"))
        self.mode = str(param(self, "mode", "lockstep"))
        if self.mode not in MODES:
            raise ValueError(f"sim_node mode={self.mode!r}; choose one of {MODES}")
        self.rate = float(param(self, "rate", 20.0))
        self.n_episodes = int(param(self, "n_episodes", 10))
        self.start_index = int(param(self, "start_index", 0))
        self.prefix = str(param(self, "topic_prefix", "/sim"))
        self.frame_id = str(param(self, "frame_id", "sim"))
        self.results_path = str(param(self, "results_path", ""))
        self.wait_for_policy = bool(param(self, "wait_for_policy", True))
        # e.g. 1 to start only once a recorder listens on the events topic, so a bag has whole episodes
        self.min_event_subscribers = int(param(self, "min_event_subscribers", 0))
        self.policy_wait_timeout = float(param(self, "policy_wait_timeout", 60.0))
        self.action_timeout = float(param(self, "action_timeout", 30.0))
        self.resend_after = float(param(self, "resend_after", 1.0))
        qos_name = str(param(self, "qos", "reliable"))
        depth = int(param(self, "qos_depth", 5))
        self.env = sim.make_env(self.env_name, **self.env_kwargs)
        self.spec = self.env.unwrapped.spec_features
        act = self.spec[K.ACTION]
        self.action_dim = int(act.shape[-1])
        dt = float(param(self, "sim_dt", 0.0)) or getattr(self.env.unwrapped, "dt", None) \
            or getattr(getattr(self.env.unwrapped, "_env", None), "dt", None) or 1.0 / self.rate
        self.dt_ns = int(round(float(dt) * 1e9))
        self.pubs: dict[str, Any] = {}
        self.types: dict[str, str] = {}
        for feat in self.spec:
            if feat.key == K.ACTION:
                continue
            t = default_type(feat)
            self.types[feat.key] = t
            self.pubs[feat.key] = self.create_publisher(
                msg_class(t), default_topic(feat.key, self.prefix),
                qos_profile("latched" if feat.key == K.TASK else qos_name, depth))
        self.tick_pub = self.create_publisher(msg_class("String"), f"{self.prefix}/tick", qos_profile("reliable", 10))
        self.event_pub = self.create_publisher(msg_class("String"), f"{self.prefix}/events",
                                               qos_profile("reliable", 100))
        self._cv = threading.Condition()
        self._action: np.ndarray | None = None
        self._action_seq = 0
        self._action_time = 0.0
        self._policy_state = ""
        self.rejected_actions = 0
        self.stale_actions = 0
        self._expect_stamp: int | None = None   # lockstep: the stamp the next action must answer
        self.create_subscription(msg_class("Float64MultiArray"), str(param(self, "action_topic", "/policy/action")),
                                 self._on_action, qos_profile("reliable", 10))
        self.create_subscription(msg_class("String"), str(param(self, "status_topic", "/policy/status")),
                                 self._on_status, qos_profile("latched"))
        self.get_logger().info(f"{self.env_name} ({self.mode}, dt={dt:.4f} s): publishing "
                               + ", ".join(f"{k}->{default_topic(k, self.prefix)}[{t}]" for k, t in self.types.items()))

    # ----- callbacks ----------------------------------------------------------------------------
    def _on_action(self, msg) -> None:
        try:
            a = convert.action_from_msg(msg)
            if a.size != self.action_dim:
                raise convert.MessageError(f"action has {a.size} values, the env takes {self.action_dim}")
            if not np.all(np.isfinite(a)):
                raise convert.MessageError("action contains NaN/inf")
            answers = convert.action_stamp(msg)
        except convert.MessageError as e:
            self.rejected_actions += 1
            self.get_logger().warning(f"rejected action: {e}")
            return
        with self._cv:
            if answers is not None and self._expect_stamp is not None and answers != self._expect_stamp:
                self.stale_actions += 1   # a late duplicate answer to an earlier (re-sent) observation
                return
            self._action, self._action_seq, self._action_time = a.astype(np.float32), self._action_seq + 1, \
                time.monotonic()
            self._cv.notify_all()

    def _on_status(self, msg) -> None:
        try:
            state = json.loads(msg.data).get("state", "")
        except ValueError:
            return
        with self._cv:
            self._policy_state = state
            self._cv.notify_all()

    # ----- publishing ---------------------------------------------------------------------------
    def _publish_obs(self, obs: dict, stamp: int, publish_task: bool) -> None:
        for key, pub in self.pubs.items():
            if key == K.TASK:
                if publish_task:
                    pub.publish(convert.encode_string(obs[key]))
                continue
            pub.publish(convert.encode(obs[key], self.spec[key], self.types[key], stamp, self.frame_id))

    def _event(self, **payload) -> None:
        self.event_pub.publish(convert.json_msg(payload))

    def _wait_for_policy(self, stop: threading.Event) -> bool:
        deadline = time.monotonic() + self.policy_wait_timeout
        while self.event_pub.get_subscription_count() < self.min_event_subscribers:
            if stop.is_set() or time.monotonic() > deadline:
                self.get_logger().error(f"fewer than {self.min_event_subscribers} subscribers on the events topic "
                                        f"after {self.policy_wait_timeout} s")
                return False
            time.sleep(0.05)
        if self.min_event_subscribers > 0:
            time.sleep(0.5)     # a recorder that just subscribed to the events matches its other topics too
        if not self.wait_for_policy:
            return True
        with self._cv:
            # "holding" is lifecycle-active too (a timer-mode policy holds until the first observation)
            while self._policy_state not in ("active", "holding") and not stop.is_set():
                if time.monotonic() > deadline:
                    self.get_logger().error(f"no active policy on the status topic after {self.policy_wait_timeout} s "
                                            f"(last state: {self._policy_state or 'none'})")
                    return False
                self._cv.wait(0.1)
        # both sides matched before the first tick: the policy subscribes to the tick and publishes actions
        while not stop.is_set() and time.monotonic() < deadline:
            if self.mode == "timer" or self.tick_pub.get_subscription_count() > 0:
                if self.count_publishers(str(self.get_parameter("action_topic").value)) > 0:
                    break
            time.sleep(0.05)
        time.sleep(0.2)
        return not stop.is_set()

    def _wait_action(self, seq0: int, stop: threading.Event, resend) -> np.ndarray | None:
        t0 = last = time.monotonic()
        with self._cv:
            while self._action_seq <= seq0:
                if stop.is_set():
                    return None
                now = time.monotonic()
                if now - t0 > self.action_timeout:
                    self.get_logger().error(f"no action within {self.action_timeout} s; stopping")
                    return None
                if now - last > self.resend_after:
                    resend()
                    last = now
                self._cv.wait(0.05)
            return self._action.copy()

    # ----- episodes -----------------------------------------------------------------------------
    def loop(self, stop: threading.Event) -> None:
        if not self._wait_for_policy(stop):
            self.exit_code = 0 if stop.is_set() else 1
            self.done = True
            return
        episodes, t_start, steps = [], time.monotonic(), 0
        gstep = 0
        period = 1.0 / self.rate
        held = 0
        i = 0
        while (self.n_episodes <= 0 or i < self.n_episodes) and not stop.is_set():
            index = self.start_index + i
            obs, info = self.env.reset(options={"init_state_index": index})
            self._event(event="episode_start", episode=i, init_state_index=index, stamp=BASE_NS + gstep * self.dt_ns)
            success, length, ret, task_sent = False, 0, 0.0, None
            next_t = time.monotonic()
            aborted = False
            while not stop.is_set():
                stamp = BASE_NS + gstep * self.dt_ns if self.mode == "lockstep" else now_ns(self)
                publish_task = K.TASK in obs and obs[K.TASK] != task_sent
                task_sent = obs.get(K.TASK, task_sent)
                with self._cv:
                    seq0 = self._action_seq
                    self._expect_stamp = stamp if self.mode == "lockstep" else None
                self._publish_obs(obs, stamp, publish_task)
                if self.mode == "lockstep":
                    tick = convert.json_msg({"stamp": stamp, "episode": i, "step": length})
                    self.tick_pub.publish(tick)
                    action = self._wait_action(seq0, stop, lambda: (self._publish_obs(obs, stamp, False),
                                                                    self.tick_pub.publish(tick)))
                    if action is None:
                        self.exit_code = 0 if stop.is_set() else 1
                        aborted = True
                        break
                else:
                    next_t += period
                    time.sleep(max(0.0, next_t - time.monotonic()))
                    with self._cv:
                        fresh = self._action is not None and time.monotonic() - self._action_time < 2 * period
                        action = self._action.copy() if fresh else np.zeros(self.action_dim, np.float32)
                    held += not fresh
                obs, reward, terminated, truncated, info = self.env.step(action)
                gstep += 1
                length += 1
                ret += float(reward)
                success = success or bool(info.get("is_success", False))
                if terminated or truncated:
                    break
            if aborted or stop.is_set():
                break
            steps += length
            ep = {"episode": i, "init_state_index": index, "success": success, "length": length,
                  "return": round(ret, 4)}
            episodes.append(ep)
            self._event(event="episode_end", **ep)
            self.get_logger().info(f"episode {i} (init state {index}): success={success} length={length}")
            i += 1
        wall = time.monotonic() - t_start
        n = len(episodes)
        result = {"env": self.env_name, "env_kwargs": self.env_kwargs, "mode": self.mode, "n_episodes": n,
                  "pc_success": 100.0 * sum(e["success"] for e in episodes) / n if n else 0.0,
                  "episodes": episodes, "wall_s": round(wall, 3), "steps_per_s": round(steps / max(wall, 1e-9), 2),
                  "steps_without_fresh_action": held, "rejected_actions": self.rejected_actions,
                  "stale_actions": self.stale_actions,
                  "complete": n == self.n_episodes}
        self._event(event="done", **{k: v for k, v in result.items() if k != "episodes"})
        self.get_logger().info(f"{self.env_name}: success {result['pc_success']:.1f}% over {n} episodes "
                               f"({result['steps_per_s']} steps/s, {self.mode})")
        if self.results_path:
            from policystack.checkpoint import atomic_write_text
            Path(self.results_path).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(Path(self.results_path), json.dumps(result, indent=2))
        self.event_pub.wait_for_all_acked(_duration(1.0))
        self.done = True

    def stop(self, reason: str) -> None:
        self.env.close()


def _duration(s: float):
    from rclpy.duration import Duration
    return Duration(seconds=s)


def main(args: list[str] | None = None) -> int:
    return run(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
