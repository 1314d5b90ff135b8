"""What every node's ``main()`` shares: init, parameters, clean exits on SIGINT/SIGTERM.

rclpy's own signal handler shuts the context down on SIGINT, after which nothing can be published,
so a node could not send its safe stop. We install our own handlers instead: a signal only sets a
flag, the spin loop ends, the node's ``stop(reason)`` runs with the context still alive (safe stop,
bag close), and the process exits with code 0. Jazzy's ``ExternalShutdownException`` is caught too.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)


def param(node, name: str, default: Any) -> Any:
    """Read a parameter, declaring it (dynamically typed) with ``default`` when no override set it."""
    from rcl_interfaces.msg import ParameterDescriptor
    if not node.has_parameter(name):
        node.declare_parameter(name, default, ParameterDescriptor(dynamic_typing=True))
    value = node.get_parameter(name).value
    return default if value is None else value


def params_by_prefix(node, prefix: str) -> dict[str, Any]:
    return {k: p.value for k, p in node.get_parameters_by_prefix(prefix).items()}


def as_list(value: Any) -> list:
    """A ROS list parameter, or a comma-separated string (ROS params cannot hold empty lists)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def node_kwargs() -> dict:
    return dict(allow_undeclared_parameters=True, automatically_declare_parameters_from_overrides=True)


def run(make_node: Callable[[], Any], args: list[str] | None = None, threads: int = 1) -> int:
    """Create the node, spin it until a signal or ``node.done``, stop it cleanly; returns the exit code.

    One executor thread by default: Jazzy's rclpy ``MultiThreadedExecutor`` leaves a callback group that is
    busy in its pool out of the next wait and is not woken when the callback finishes, so on an idle machine
    (where the spin thread gets back into the wait first) callbacks run only on the next 50 ms wait timeout:
    measured here, a 20 Hz timer node ticked 3-4 times a second with it and 20 with one thread. Slow
    work belongs in a worker thread of the node (policy_node's inference), not in the executor.

    A node may set ``executor_threads`` (>1: rclpy's MultiThreadedExecutor, see above) and define
    ``start()`` (called once before spinning; e.g. lifecycle autostart),
    ``loop(stop_event)`` (run in the main thread while the executor spins in the background, e.g. the
    sim's episode loop), ``stop(reason)`` (safe stop / flush, context still alive), ``done`` and
    ``exit_code``.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    os.environ.setdefault("MUJOCO_GL", "egl")
    rclpy.init(args=sys.argv if args is None else args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    reason = {"why": "end"}

    def on_signal(signum, _frame):
        reason["why"] = signal.Signals(signum).name
        stop.set()

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)
    node = None
    code = 0
    executor = None
    try:
        node = make_node()
        threads = int(getattr(node, "executor_threads", threads))
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        if hasattr(node, "start"):
            node.start()
        if hasattr(node, "loop"):
            spinner = threading.Thread(target=_spin, args=(executor, node, stop), daemon=True)
            spinner.start()
            node.loop(stop)
            stop.set()
            spinner.join(timeout=2.0)
        else:
            _spin(executor, node, stop)
    except (KeyboardInterrupt, ExternalShutdownException):
        reason["why"] = "SIGINT"
    except Exception:  # a crash still gets the safe stop below
        log.exception("node failed")
        code = 1
    finally:
        if node is not None:
            if hasattr(node, "stop"):
                try:
                    node.stop(reason["why"])
                except Exception:
                    log.exception("stop() failed")
                    code = code or 1
            code = code or int(getattr(node, "exit_code", 0))
            if executor is not None:
                executor.shutdown(timeout_sec=1.0)
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def _spin(executor, node, stop: threading.Event) -> None:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    try:
        while not stop.is_set() and rclpy.ok() and not getattr(node, "done", False):
            executor.spin_once(timeout_sec=0.05)
    except ExternalShutdownException:
        pass
    stop.set()


def now_ns(node) -> int:
    return int(node.get_clock().now().nanoseconds)


class Throttle:
    """Log a message the first time its signature is seen and then at most every ``period`` seconds."""

    def __init__(self, period: float = 2.0):
        import time
        self._time = time.monotonic
        self.period = period
        self._last: dict[str, float] = {}

    def ok(self, signature: str) -> bool:
        t = self._time()
        if t - self._last.get(signature, -1e9) >= self.period:
            self._last[signature] = t
            return True
        return False
