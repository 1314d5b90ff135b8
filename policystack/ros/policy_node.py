"""policy_node: a lifecycle node that runs any policystack checkpoint on ROS topics.

configure  loads the checkpoint, parses the topic <-> key map and checks it against the policy's
           declared inputs (a missing key fails here, naming it), creates subscriptions.
activate   starts acting: ``mode: timer`` publishes at ``control_rate`` from a timer while inference
           runs in a worker thread (the timer waits at most ``inference_timeout`` and otherwise holds);
           ``mode: lockstep`` acts once per message on ``trigger_topic`` (the sim's tick), on the inputs
           stamped with that tick, so a simulated episode over ROS equals the in-process rollout.
deactivate / shutdown / SIGINT publish the safe stop.

Every action passes the safety stage (clamp, change limit, hold on stale/NaN/late input, never NaN);
each hold or rejection is logged with its reason and reported on the latched status topic (JSON).
"""

from __future__ import annotations

import importlib
import json
import queue
import re
import threading
import time
from functools import partial
from typing import Any

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from policystack import keys as K
from policystack.errors import PolicystackError
from policystack.ros import convert
from policystack.ros.observations import ObservationAssembler
from policystack.ros.runtime import Throttle, as_list, node_kwargs, now_ns, param, params_by_prefix, run
from policystack.ros.safety import SafetyConfig, SafetyStage
from policystack.ros.topics import check_inputs, msg_class, parse_inputs, qos_profile

MODES = ("timer", "lockstep")


class _Worker:
    """Runs ``select_action`` apart from the publish timer; one request in flight at a time.

    The result goes to ``on_done(tick, action, error, latency_ms, deadline)`` from the worker thread, so
    neither the timer nor the subscriptions ever wait for inference.
    """

    def __init__(self, fn, on_done):
        self.fn, self.on_done = fn, on_done
        self.requests: queue.Queue = queue.Queue(maxsize=1)
        self.busy = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="inference")
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self.requests.get()
            if item is None:
                return
            tick, obs, deadline = item
            t0 = time.perf_counter()
            try:
                action, err = self.fn(obs), None
            except Exception as e:  # the policy failing must not kill the node: hold and report
                action, err = None, f"policy raised {type(e).__name__}: {e}"
            latency = (time.perf_counter() - t0) * 1e3
            self.busy.clear()
            self.on_done(tick, action, err, latency, deadline)

    def submit(self, tick: int, obs: dict, deadline: float) -> bool:
        if self.busy.is_set():
            return False
        self.busy.set()
        self.requests.put((tick, obs, deadline))
        return True

    def close(self, timeout: float = 2.0) -> None:
        try:
            self.requests.put_nowait(None)
        except queue.Full:
            pass
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class PolicyNode(LifecycleNode):
    def __init__(self):
        super().__init__("policy_node", **node_kwargs())
        self.exit_code = 0
        self.done = False
        self.autostart = bool(param(self, "autostart", True))
        # one executor thread (the lowest-latency one rclpy has, see runtime.make_executor): inference runs in
        # its own worker thread, so neither the tick nor the subscriptions wait for it
        self.default_executor = "events"
        status_topic = str(param(self, "status_topic", "/policy/status"))
        self.status_pub = self.create_publisher(msg_class("String"), status_topic, qos_profile("latched"))
        self.status_rate = float(param(self, "status_rate", 2.0))
        self.state_label = "unconfigured"
        self.policy = None
        self.worker: _Worker | None = None
        self.timer = None
        self.subs: list = []
        self.action_pub = None
        self.counters = {"published": 0, "holds": 0, "ticks": 0}
        self._answering: int | None = None   # lockstep: the observation stamp the next action answers
        self.hold_reason = ""
        self._hold_sig = ""
        self.last_latency_ms = float("nan")
        self.last_ages: dict[str, float] = {}
        self._last_status = 0.0
        self._throttle = Throttle(2.0)
        self._lock = threading.RLock()
        self._publish_status("unconfigured", force=True)

    # ----- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if not self.autostart:
            return
        self.trigger_configure()
        if self.state_label != "inactive":
            self.exit_code, self.done = 1, True
            return
        self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except (PolicystackError, ImportError, ValueError, TypeError, OSError) as e:
            self.get_logger().error(f"configure failed: {e}")
            self._publish_status("unconfigured", reason=f"configure failed: {e}", force=True)
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        self.state_label = "inactive"
        self._publish_status("inactive", reason="configured", force=True)
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        import torch
        torch.set_num_threads(int(param(self, "num_threads", 1)))
        for mod in as_list(param(self, "import_modules", "")):
            importlib.import_module(mod)  # registers out-of-tree policies
        from policies.base import load_policy
        self.mode = str(param(self, "mode", "timer"))
        if self.mode not in MODES:
            raise PolicystackError(f"mode={self.mode!r}; choose one of {MODES}")
        self.rate = float(param(self, "control_rate", 20.0))
        if self.rate <= 0:
            raise PolicystackError(f"control_rate must be > 0, got {self.rate}")
        self.inference_timeout = float(param(self, "inference_timeout", 0.0)) or 0.8 / self.rate
        self.lockstep_timeout = float(param(self, "lockstep_timeout", 5.0))
        self.instruction = str(param(self, "instruction", ""))
        ckpt = str(param(self, "checkpoint", ""))
        if not ckpt:
            raise PolicystackError("parameter 'checkpoint' is empty: give the policy's pretrained directory")
        self.policy = load_policy(ckpt, map_location=str(param(self, "device", "cpu")))
        required = self.policy.config.input_spec
        inputs = parse_inputs(params_by_prefix(self, "inputs"))
        check_inputs(inputs, required, self.instruction)
        used = {n: c for n, c in inputs.items() if c.key in required}
        for n, c in inputs.items():
            if n not in used:
                self.get_logger().info(f"inputs.{n} ({c.key}) is not an input of this policy: not subscribed")
        self.required = required
        self.assembler = ObservationAssembler(used, required, self.instruction)
        feat = self.policy.config.action_feature
        sp = params_by_prefix(self, "safety")
        low = sp.get("low", feat.low)
        high = sp.get("high", feat.high)
        keep = [int(d) for d in as_list(sp.get("keep_dims", "")) if int(d) >= 0]
        self.safety = SafetyStage(self.policy.config.action_dim, SafetyConfig(
            low=low, high=high, max_delta=sp.get("max_delta", 0.0), hold=str(sp.get("hold", "zero")),
            keep_dims=tuple(keep)))
        self.sub_group = MutuallyExclusiveCallbackGroup()
        self.tick_group = MutuallyExclusiveCallbackGroup()
        for name, cfg in used.items():
            self.subs.append(self.create_subscription(
                msg_class(cfg.type), cfg.topic, partial(self._on_input, name), qos_profile(cfg.qos, cfg.depth),
                callback_group=self.sub_group))
        self.action_pub = self.create_publisher(
            msg_class("Float64MultiArray"), str(param(self, "action_topic", "/policy/action")),
            qos_profile("reliable", 10))
        if self.mode == "lockstep":
            self.subs.append(self.create_subscription(
                msg_class("String"), str(param(self, "trigger_topic", "/sim/tick")), self._on_trigger,
                qos_profile("reliable", 10), callback_group=self.sub_group))
        self.pending: dict | None = None
        self.pending_since = 0.0
        self.last_acted: int | None = None
        self.last_action: np.ndarray | None = None
        self.episode = None
        self.get_logger().info(
            f"configured: {self.policy.name} from {ckpt}, mode={self.mode}, rate={self.rate} Hz, inputs "
            + ", ".join(f"{c.key}<-{c.topic}[{c.type},{c.qos}]" for c in used.values()))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.policy.reset()
        self.safety.reset()
        self.worker = _Worker(self.policy.select_action, self._on_result) if self.mode == "timer" else None
        if self.mode == "timer":
            self.timer = self.create_timer(1.0 / self.rate, self._on_tick, callback_group=self.tick_group)
        else:
            self.timer = self.create_timer(0.1, self._lockstep_watchdog, callback_group=self.sub_group)
        self.state_label = "active"
        self._publish_status("active", reason="activated", force=True)
        self.get_logger().info("active")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._safe_stop("deactivate")
        self._publish_status("inactive", reason="deactivated", force=True)
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        self.state_label = "unconfigured"
        self._publish_status("unconfigured", reason="cleaned up", force=True)
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._safe_stop("shutdown")
        self._teardown()
        self._publish_status("finalized", reason="shutdown", force=True)
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._safe_stop("error")
        return TransitionCallbackReturn.SUCCESS

    def stop(self, reason: str) -> None:
        """Process exit (SIGINT/SIGTERM): safe stop while the context is still alive."""
        self._safe_stop(reason)
        self._publish_status("finalized", reason=f"exit ({reason})", force=True)
        for pub in (self.action_pub, self.status_pub):
            if pub is not None:
                try:
                    from rclpy.duration import Duration
                    pub.wait_for_all_acked(Duration(seconds=0.5))
                except Exception:
                    pass

    def _safe_stop(self, reason: str) -> None:
        with self._lock:
            if self.state_label != "active":
                return
            self.state_label = "inactive"   # from here on no result is acted upon
            if self.timer is not None:
                self.destroy_timer(self.timer)
                self.timer = None
            worker, self.worker = self.worker, None
            res = self.safety.safe_stop(reason)
            self._publish_action(res.action)
            self.get_logger().warning(f"{res.reasons[0]}: published {np.round(res.action, 4).tolist()}")
            self.hold_reason = res.reasons[0]
        if worker is not None:
            worker.close()

    def _teardown(self) -> None:
        for s in self.subs:
            self.destroy_subscription(s)
        self.subs = []
        if self.action_pub is not None:
            self.destroy_publisher(self.action_pub)
            self.action_pub = None
        self.policy = None

    # ----- inputs -------------------------------------------------------------------------------
    def _on_input(self, name: str, msg) -> None:
        cfg = self.assembler.inputs[name]
        feature = self.required[cfg.key] if cfg.key in self.required else None
        try:
            value = convert.decode(msg, cfg.type, feature, cfg.joint_names, cfg.field)
        except convert.MessageError as e:
            self.assembler.reject(name, str(e))
            if self._throttle.ok(f"reject:{name}:{re.sub(r'[0-9.]+', '#', str(e))}"):
                self.get_logger().warning(f"rejected message on {cfg.topic} ({cfg.key}): {e}")
            self._publish_status(self.state_label, reason=f"rejected {cfg.key}: {e}")
            return
        stamp = convert.stamp_ns(msg) if cfg.use_header_stamp else None
        self.assembler.add(name, stamp if stamp is not None else now_ns(self), value)
        if cfg.key == K.TASK and self.policy is not None and self.state_label == "active" \
                and getattr(self, "_task", None) not in (None, value):
            self.policy.reset()  # a new instruction starts a new episode for the policy
        if cfg.key == K.TASK:
            self._task = value
        if self.mode == "lockstep" and self.pending is not None:
            self._try_lockstep()

    # ----- timer mode ---------------------------------------------------------------------------
    def _on_tick(self) -> None:
        with self._lock:
            if self.state_label != "active" or self.worker is None:
                return
            self.counters["ticks"] += 1
            tick = self.counters["ticks"]
            asm = self.assembler.assemble(now_ns(self))
            self.last_ages = asm.ages_ms
            if not asm.ok:
                return self._hold("; ".join(asm.problems))
            if not self.worker.submit(tick, asm.obs, time.monotonic() + self.inference_timeout):
                return self._hold("inference still running from an earlier tick (slower than control_rate)")

    def _on_result(self, tick: int, action, error: str | None, latency_ms: float, deadline: float) -> None:
        """Worker thread: act on a result that came in time; a late one is never used."""
        with self._lock:
            if self.state_label != "active":
                return
            now = time.monotonic()
            if now > deadline:
                self.last_latency_ms = latency_ms
                since_tick = (now - deadline + self.inference_timeout) * 1e3
                return self._hold(f"inference late: result {since_tick:.0f} ms after the tick (select_action "
                                  f"{latency_ms:.0f} ms) > inference_timeout {self.inference_timeout * 1e3:.0f} ms")
            self._act(action, error, latency_ms)

    def _act(self, action, error: str | None, latency_ms: float) -> None:
        self.last_latency_ms = latency_ms
        if error is not None:
            return self._hold(error)
        res = self.safety.filter(action)
        if res.held:
            return self._hold(res.reasons[0].removeprefix("hold: "), res)
        for r in res.reasons:
            if self._throttle.ok(f"safety:{r}"):
                self.get_logger().warning(f"safety: {r}")
        if self.hold_reason:
            self.get_logger().info(f"resumed acting after hold ({self.hold_reason})")
        self.hold_reason, self._hold_sig = "", ""
        self._publish_action(res.action)
        self._publish_status("active", reason="; ".join(res.reasons) or None)

    def _hold(self, reason: str, res=None) -> None:
        res = res or self.safety.hold(reason)
        self.counters["holds"] += 1
        self.hold_reason = reason
        sig = re.sub(r"[0-9.]+", "#", reason)
        new = sig != self._hold_sig
        if new:
            self.get_logger().warning(f"hold: {reason}; publishing safe action {np.round(res.action, 4).tolist()}")
            self._hold_sig = sig
        self._publish_action(res.action)
        self._publish_status("holding", reason=reason, force=new)

    def _publish_action(self, action: np.ndarray) -> None:
        if self.action_pub is None:
            return
        a = np.asarray(action, np.float64)
        assert np.all(np.isfinite(a)), "safety stage let a non-finite action through"
        self.action_pub.publish(convert.action_msg(a, stamp=self._answering))
        self.last_action = a
        self.counters["published"] += 1

    # ----- lockstep mode ------------------------------------------------------------------------
    def _on_trigger(self, msg) -> None:
        try:
            tick = json.loads(msg.data)
            tick["stamp"] = int(tick["stamp"])
        except (ValueError, KeyError, TypeError) as e:
            self.get_logger().warning(f"rejected trigger message {msg.data[:80]!r}: {e}")
            return
        with self._lock:
            if self.state_label != "active":
                return
            if tick["stamp"] == self.last_acted and self.last_action is not None:
                self._answering = tick["stamp"]
                self._publish_action(self.last_action)   # the sim re-sent its tick: answer again
                self._answering = None
                return
            self.pending, self.pending_since = tick, time.monotonic()
        self._try_lockstep()

    def _try_lockstep(self) -> None:
        with self._lock:
            tick = self.pending
            if tick is None or self.state_label != "active":
                return
            asm = self.assembler.assemble(tick["stamp"], exact=True, check_age=False)
            self.last_ages = asm.ages_ms
            if not asm.ok:
                return  # wait for the rest of this tick's messages (the watchdog holds if they never come)
            self.counters["ticks"] += 1
            if tick.get("episode") != self.episode or int(tick.get("step", -1)) == 0:
                self.policy.reset()
                self.safety.reset()
                self.episode = tick.get("episode")
            t0 = time.perf_counter()
            try:
                action, err = self.policy.select_action(asm.obs), None
            except Exception as e:
                action, err = None, f"policy raised {type(e).__name__}: {e}"
            self._answering = tick["stamp"]
            try:
                self._act(action, err, (time.perf_counter() - t0) * 1e3)
            finally:
                self._answering = None
            self.pending, self.last_acted = None, tick["stamp"]

    def _lockstep_watchdog(self) -> None:
        with self._lock:
            if self.pending is None or time.monotonic() - self.pending_since < self.lockstep_timeout:
                return
            asm = self.assembler.assemble(self.pending["stamp"], exact=True, check_age=False)
            self._answering = self.pending["stamp"]
            try:
                self._hold(f"tick {self.pending.get('step')} incomplete after {self.lockstep_timeout} s: "
                           + "; ".join(asm.problems))
            finally:
                self._answering = None
            self.pending, self.last_acted = None, self.pending["stamp"]

    # ----- status -------------------------------------------------------------------------------
    def _publish_status(self, state: str, reason: str | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < 1.0 / max(self.status_rate, 1e-3):
            return
        self._last_status = now
        payload: dict[str, Any] = {"node": self.get_fully_qualified_name(), "state": state, **self.counters,
                                   "latency_ms": None if np.isnan(self.last_latency_ms) else
                                   round(self.last_latency_ms, 3),
                                   "input_age_ms": self.last_ages, "hold_reason": self.hold_reason or None,
                                   "t": round(time.time(), 3)}
        if reason:
            payload["reason"] = reason
        if getattr(self, "assembler", None) is not None:
            payload["inputs"] = self.assembler.stats()
        self.status_pub.publish(convert.json_msg(payload))


def main(args: list[str] | None = None) -> int:
    return run(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
