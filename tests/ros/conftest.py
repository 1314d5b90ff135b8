"""Fixtures for ROS 2 tests: a private network namespace, node processes, an in-test probe node.

DDS traffic stays on loopback: when pytest is not already inside a private network namespace
(scripts/ros_tests.sh runs it under ``unshare -n``), the ``ros`` fixture moves the test process into a
new one (root only) for the ROS tests and back afterwards; every node process is spawned from there,
so it inherits it. ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a random ``ROS_DOMAIN_ID`` are a
second layer. Tests wait for both sides of every topic to match before publishing.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY = sys.executable
CLONE_NEWNET = 0x40000000


def _interfaces() -> set[str]:
    lines = Path("/proc/thread-self/net/dev").read_text().splitlines()[2:]
    return {ln.split(":")[0].strip() for ln in lines}


def _lo_up() -> None:
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "lo", "multicast", "on"],
                ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"]):
        subprocess.run(cmd, capture_output=True)


@pytest.fixture(scope="module")
def ros_net():
    """Run the ROS tests in a loopback-only network namespace (per module, so tests of other areas that
    share the pytest session run in the original namespace)."""
    pytest.importorskip("rclpy", reason="ROS tests need rclpy (the ros extra)")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    os.environ.setdefault("ROS_LOG_DIR", "/tmp/policystack_ros_logs")
    os.environ["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("MUJOCO_GL", "egl")
    if _interfaces() <= {"lo"}:
        _lo_up()
        yield
        return
    if os.geteuid() != 0:
        pytest.skip("ROS tests run DDS in a private network namespace: run scripts/ros_tests.sh as root")
    libc = ctypes.CDLL(None, use_errno=True)
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    if libc.unshare(CLONE_NEWNET) != 0:
        os.close(orig)
        pytest.skip(f"unshare(CLONE_NEWNET) failed (errno {ctypes.get_errno()}); run scripts/ros_tests.sh")
    _lo_up()
    assert _interfaces() <= {"lo"}
    try:
        yield
    finally:
        libc.setns(orig, CLONE_NEWNET)
        os.close(orig)


# ----- node processes ----------------------------------------------------------------------------
class NodeProc:
    def __init__(self, executable: str, args: list[str], log: Path, env: dict | None = None):
        from policystack.ros.minilaunch import find_executable
        self.log_path = log
        self._log = open(log, "w")
        cmd = find_executable("policystack_ros", executable) + args
        self.p = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
                                  env={**os.environ, **(env or {})})

    def text(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def sigint(self, timeout: float = 15.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError(f"process did not exit in {timeout} s; log:\n{self.text()[-3000:]}")

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self._log.close()


@pytest.fixture
def spawn(ros_net, tmp_path):
    procs = []

    def _spawn(executable: str, params: dict | None = None, params_file: str | Path | None = None,
               name: str | None = None, extra: list[str] | None = None, env: dict | None = None) -> NodeProc:
        import yaml
        args = ["--ros-args"]
        if name:
            args += ["-r", f"__node:={name}"]
        if params_file:
            args += ["--params-file", str(params_file)]
        if params:
            f = tmp_path / f"{name or executable}_{len(procs)}.yaml"
            f.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
            args += ["--params-file", str(f)]
        args += extra or []
        p = NodeProc(executable, args, tmp_path / f"{name or executable}_{len(procs)}.log", env)
        procs.append(p)
        return p
    yield _spawn
    for p in procs:
        p.close()


# ----- the probe: an rclpy node inside the test --------------------------------------------------
class Probe:
    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"probe_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.msgs: dict[str, list] = defaultdict(list)
        self.lock = threading.Lock()
        self.pubs: dict[str, object] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while not self._stop.is_set():
            try:
                self.executor.spin_once(timeout_sec=0.02)
            except Exception:
                if self._stop.is_set():
                    return
                raise

    def subscribe(self, topic: str, type_name: str, qos: str = "reliable", depth: int = 100):
        from policystack.ros.topics import msg_class, qos_profile

        def cb(msg, t=topic):
            with self.lock:
                self.msgs[t].append((time.monotonic(), msg))
        profile = qos_profile(qos, depth)
        profile.depth = depth   # keep every message, also of latched topics
        self.node.create_subscription(msg_class(type_name), topic, cb, profile)

    def publisher(self, topic: str, type_name: str, qos: str = "reliable", depth: int = 10):
        from policystack.ros.topics import msg_class, qos_profile
        self.pubs[topic] = self.node.create_publisher(msg_class(type_name), topic, qos_profile(qos, depth))
        return self.pubs[topic]

    def publish(self, topic: str, msg) -> None:
        self.pubs[topic].publish(msg)

    def got(self, topic: str) -> list:
        with self.lock:
            return list(self.msgs[topic])

    def clear(self, topic: str | None = None) -> None:
        with self.lock:
            if topic is None:
                self.msgs.clear()
            else:
                self.msgs[topic] = []

    def wait_for(self, pred, timeout: float = 20.0, what: str = "condition", every: float = 0.02):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            v = pred()
            if v:
                return v
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def wait_matched(self, topic: str, timeout: float = 20.0) -> None:
        """Both sides matched: our publisher has a subscriber (or our subscription a publisher)."""
        if topic in self.pubs:
            self.wait_for(lambda: self.pubs[topic].get_subscription_count() > 0, timeout, f"a subscriber on {topic}")
        else:
            self.wait_for(lambda: self.node.count_publishers(topic) > 0, timeout, f"a publisher on {topic}")

    def status(self, topic: str = "/policy/status") -> list[dict]:
        return [json.loads(m.data) for _, m in self.got(topic)]

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


@pytest.fixture
def probe(ros_net):
    p = Probe()
    yield p
    p.close()


# ----- checkpoints ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bc_checkpoint(tmp_path_factory):
    """A state-only BC policy for reach-v3 trained here in seconds (10 expert demos, 600 steps)."""
    pytest.importorskip("metaworld")
    import torch
    torch.set_num_threads(1)
    from policystack.config import config_class
    from policystack.demos import generate_metaworld_demos
    from policystack.training import TrainConfig, pretrained_path, train
    d = tmp_path_factory.mktemp("bc")
    data = generate_metaworld_demos("reach-v3", 10, d / "reach.hdf5")
    pol = config_class("policy", "bc")(modalities=("state",), hidden_dim=128, n_layers=2)
    run = train(TrainConfig(dataset=str(data), policy=pol, output_dir=str(d / "run"), steps=600, batch_size=64,
                            log_every=200, save_every=600))
    return pretrained_path(run)
