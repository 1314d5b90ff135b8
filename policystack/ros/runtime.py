"""What every node's ``main()`` shares: init, parameters, clean exits on SIGINT/SIGTERM.

rclpy's own signal handler shuts the context down on SIGINT, after which nothing can be published,
so a node could not send its safe stop. We install our own handlers instead: a signal only sets a
flag, the spin loop ends, the node's ``stop(reason)`` runs with the context still alive (safe stop,
bag close), and the process exits with code 0. Jazzy's ``ExternalShutdownException`` is caught too.
"""

from __future__ import annotations

import faulthandler
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


def run(make_node: Callable[[], Any], args: list[str] | None = None) -> int:
    """Create the node, spin it until a signal or ``node.done``, stop it cleanly; returns the exit code.

    The executor is the node's ``executor`` parameter (default: the node's ``default_executor``, else
    ``single``), see :func:`make_executor`. A node may define
    ``start()`` (called once before spinning; e.g. lifecycle autostart),
    ``loop(stop_event)`` (run in the main thread while the executor spins in the background, e.g. the
    sim's episode loop), ``stop(reason)`` (safe stop / flush, context still alive), ``done`` and
    ``exit_code``.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException
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
        kind = str(param(node, "executor", getattr(node, "default_executor", "single")))
        executor = make_executor(kind, int(param(node, "executor_threads", 2)))
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
            # the safe stop is out: a teardown that hangs in rclpy/DDS (seen: destroy_node blocking in
            # destroy_when_not_in_use while the whole graph exits) is reported and cut short
            _teardown_watchdog(3.0, code)
            if executor is not None:
                executor.shutdown(timeout_sec=1.0)
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def _teardown_watchdog(seconds: float, code: int) -> None:
    def fire():
        log.warning("rclpy teardown still running after %.0f s (the safe stop was already sent); exiting", seconds)
        faulthandler.dump_traceback(all_threads=True)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


EXECUTORS = ("single", "events", "multi")


def make_executor(kind: str, threads: int = 2):
    """One rclpy executor for a node process.

    ``single``: ``SingleThreadedExecutor``. ``events``: rclpy's ``EventsExecutor`` (C++ event queue,
    Jazzy and later; falls back to ``single`` with a warning where rclpy lacks it, e.g. Humble): measured
    here it cuts policy_node's added round trip at 128x128 from ~1.2 to ~0.9 ms. ``multi``:
    ``MultiThreadedExecutor(threads)``, not recommended: with Jazzy's, policy_node's 20 Hz timer ticked
    3-4 times a second on an idle 2-vCPU machine (20 with one thread; load hid it, so it is a hand-off
    race between the spin thread and the pool, not pinned down further). Slow work belongs in a worker
    thread of the node (policy_node's inference), not in the executor.
    """
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    if kind not in EXECUTORS:
        raise ValueError(f"executor={kind!r}; choose one of {EXECUTORS}")
    if kind == "events":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            log.warning("this rclpy has no EventsExecutor (added in Jazzy); using the single-threaded executor")
            return SingleThreadedExecutor()
        return EventsExecutor()
    if kind == "multi":
        return MultiThreadedExecutor(num_threads=max(2, threads))
    return SingleThreadedExecutor()


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
