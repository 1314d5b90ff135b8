"""ROS 2 round trip vs in-process ``select_action``, at 128x128 and 640x480 images.

    .venv/bin/python benchmarks/bench_ros.py                     # both sizes, trivial policy + BC at 128
    .venv/bin/python benchmarks/bench_ros.py --n 300 --out docs/results/ros_bench.json

Lockstep round trip: this process publishes an Image (+ JointState) and a tick, policy_node (a separate
process) assembles the observation, runs ``select_action``, passes the safety stage and publishes on
/policy/action; the time from "about to publish the observation" to "action received" is measured.
Baseline: the same policy's ``select_action`` on the same observation, in this process. "Added" =
ROS p50 - in-process p50 (conversion + DDS + scheduling). Timer mode at 30 Hz: the policy node acts
from its own timer on 640x480 frames published at 30 Hz; reported are the action rate, holds and the
age of the image the node used. Runs in a private network namespace (re-executes itself under
``unshare -n`` when allowed) with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST. Timings on a shared CPU
are noisy: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT)]

import torch  # noqa: E402

from policies.base import Policy, PolicyConfig, make_policy, register_policy  # noqa: E402
from policystack import keys as K  # noqa: E402
from policystack.config import register_config  # noqa: E402
from policystack.spec import Feature, Spec  # noqa: E402


@register_config("policy", "ros_bench_meanpixel")
@dataclass
class MeanPixelConfig(PolicyConfig):
    pass


@register_policy
class MeanPixelPolicy(Policy):
    """Transport-bound policy: action = per-channel mean pixel / 255 + state[:3]; touches every pixel."""

    name = "ros_bench_meanpixel"
    config_class = MeanPixelConfig

    def __init__(self, config):
        super().__init__(config)
        self.register_buffer("unused", torch.zeros(1))
        self.img_key = next(k for k in config.input_features if K.modality_of(k) == "images")

    def predict_action_chunk(self, batch):
        img = batch[self.img_key].float().mean(dim=(1, 2)) / 255.0
        a = torch.cat([img + batch[K.STATE][:, :3].float(), torch.zeros(img.shape[0], 1)], dim=1)
        return a[:, None, :]


def features(h: int, w: int) -> Spec:
    return Spec.of([Feature(K.STATE, (4,), "float32"), Feature(K.image_key("cam"), (h, w, 3), "uint8"),
                    Feature(K.ACTION, (4,), "float32", low=-1, high=1)])


def make_checkpoint(kind: str, h: int, w: int, out: Path) -> Path:
    from policystack.config import config_class
    if kind == "meanpixel":
        return make_policy(MeanPixelConfig(), features(h, w)).save_pretrained(out)
    pol = make_policy(config_class("policy", "bc")(), features(h, w))
    z = np.zeros(4, np.float32)
    pol.set_stats({K.STATE: {"mean": z, "std": z + 1, "min": z - 1, "max": z + 1},
                   K.ACTION: {"mean": z, "std": z + 1, "min": z - 1, "max": z + 1}})
    return pol.save_pretrained(out)


def obs_for(h: int, w: int, rng) -> dict:
    return {K.STATE: rng.uniform(-0.1, 0.1, 4).astype(np.float32),
            K.image_key("cam"): rng.integers(0, 255, (h, w, 3), dtype=np.uint8)}


def pct(x, q):
    return float(np.percentile(np.asarray(x) * 1e3, q))


class Bench:
    def __init__(self, tmp: Path):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        rclpy.init()
        self.node = rclpy.create_node("bench")
        self.exe = SingleThreadedExecutor()
        self.exe.add_node(self.node)
        self.tmp = tmp
        self.cv = threading.Condition()
        self.actions: list[float] = []
        self.status: list[dict] = []
        from policystack.ros.topics import msg_class, qos_profile
        self.qos = qos_profile("reliable", 5)
        self.pub_img = self.node.create_publisher(msg_class("Image"), "/b/cam", self.qos)
        self.pub_state = self.node.create_publisher(msg_class("JointState"), "/b/state", self.qos)
        self.pub_tick = self.node.create_publisher(msg_class("String"), "/b/tick", qos_profile("reliable", 10))
        self.node.create_subscription(msg_class("Float64MultiArray"), "/policy/action", self._on_action,
                                      qos_profile("reliable", 10))
        self.node.create_subscription(msg_class("String"), "/policy/status", self._on_status, qos_profile("latched"))
        self._stop = threading.Event()
        threading.Thread(target=self._spin, daemon=True).start()

    def _spin(self):
        while not self._stop.is_set():
            self.exe.spin_once(timeout_sec=0.01)

    def _on_action(self, msg):
        with self.cv:
            self.actions.append(time.perf_counter())
            self.cv.notify_all()

    def _on_status(self, msg):
        with self.cv:
            self.status.append({**json.loads(msg.data), "_recv": time.perf_counter()})
            self.cv.notify_all()

    def start_policy(self, ckpt: Path, mode: str, rate: float = 30.0, executor: str = "") -> subprocess.Popen:
        import yaml
        params = {"checkpoint": str(ckpt), "import_modules": "bench_ros", "mode": mode, "control_rate": rate,
                  "trigger_topic": "/b/tick", "status_rate": 5.0, **({"executor": executor} if executor else {}),
                  "inputs": {"cam": {"key": K.image_key("cam"), "topic": "/b/cam", "type": "Image", "depth": 5,
                                     "max_age": 0.2},
                             "state": {"key": K.STATE, "topic": "/b/state", "type": "JointState", "max_age": 0.2}}}
        f = self.tmp / f"policy_{mode}.yaml"
        f.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
        with self.cv:
            self.status.clear()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")])}
        p = subprocess.Popen([sys.executable, "-m", "policystack.ros", "policy_node", "--ros-args",
                              "--params-file", str(f)], env=env, stdout=open(self.tmp / f"policy_{mode}.log", "w"),
                             stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        with self.cv:
            while not any(s.get("state") == "active" for s in self.status):
                if time.monotonic() - t0 > 120 or p.poll() is not None:
                    raise RuntimeError("policy_node did not become active:\n"
                                       + (self.tmp / f"policy_{mode}.log").read_text()[-2000:])
                self.cv.wait(0.1)
        while self.pub_img.get_subscription_count() < 1 or self.pub_state.get_subscription_count() < 1 or \
                (mode == "lockstep" and self.pub_tick.get_subscription_count() < 1) or \
                self.node.count_publishers("/policy/action") < 1:
            time.sleep(0.02)
        time.sleep(0.3)
        return p

    def publish_obs(self, obs: dict, stamp: int) -> None:
        from policystack.ros import convert
        from policystack.spec import Feature
        img = obs[K.image_key("cam")]
        self.pub_img.publish(convert.encode(img, Feature(K.image_key("cam"), img.shape, "uint8"), stamp=stamp))
        self.pub_state.publish(convert.encode_joint_state(obs[K.STATE], None, stamp))

    def lockstep(self, policy, h: int, w: int, n: int) -> tuple[list[float], list[float]]:
        """Alternate one in-process ``select_action`` and one ROS round trip on the same observation, so
        both see the same CPU load (this machine is shared)."""
        from policystack.ros import convert
        rng = np.random.default_rng(0)
        obs = [obs_for(h, w, rng) for _ in range(8)]
        for o in obs[:3]:
            policy.select_action(o)
        local, rtts = [], []
        base = self.node.get_clock().now().nanoseconds
        for i in range(n + 5):
            o = obs[i % len(obs)]
            t = time.perf_counter()
            policy.select_action(o)
            dt_local = time.perf_counter() - t
            stamp = base + i * 1000
            with self.cv:
                k = len(self.actions)
            t0 = time.perf_counter()
            self.publish_obs(o, stamp)
            self.pub_tick.publish(convert.json_msg({"stamp": stamp, "episode": 0, "step": i}))
            with self.cv:
                if not self.cv.wait_for(lambda: len(self.actions) > k, timeout=10):
                    raise RuntimeError(f"no action for tick {i}")
                t1 = self.actions[k]
            if i >= 5:
                local.append(dt_local)
                rtts.append(t1 - t0)
            time.sleep(0.005)
        return local, rtts

    def timer_rate(self, h: int, w: int, rate: float, seconds: float) -> dict:
        rng = np.random.default_rng(0)
        obs = [obs_for(h, w, rng) for _ in range(8)]
        period = 1.0 / rate
        with self.cv:
            k0 = len(self.actions)
            s0 = len(self.status)
        t_start = time.perf_counter()
        nxt = time.monotonic()
        i = 0
        pub_lat = []
        while time.perf_counter() - t_start < seconds:
            t = time.perf_counter()
            self.publish_obs(obs[i % len(obs)], self.node.get_clock().now().nanoseconds)
            pub_lat.append(time.perf_counter() - t)
            i += 1
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))
        elapsed = time.perf_counter() - t_start
        t_end = t_start + elapsed
        time.sleep(0.3)
        with self.cv:
            acts = [t for t in self.actions[k0:] if t <= t_end]
            status = [s for s in self.status[s0:] if s["_recv"] <= t_end]
        first, last = (status[0], status[-1]) if status else ({}, {})
        holds = [s for s in status if s.get("state") == "holding"]
        ages = [s["input_age_ms"].get(K.image_key("cam")) for s in status if s.get("input_age_ms")]
        return {"published_hz": round(i / elapsed, 2), "action_hz": round(len(acts) / elapsed, 2),
                "hold_reasons": sorted({re.sub(r"[0-9.]+ s old", "# s old", s.get("hold_reason"))
                                        for s in holds if s.get("hold_reason")})[:4],
                "node_holds": (last.get("holds") or 0) - (first.get("holds") or 0),
                "node_ticks": (last.get("ticks") or 0) - (first.get("ticks") or 0),
                "image_age_ms_p50": float(np.median([a for a in ages if a is not None])) if ages else None,
                "publish_call_ms_p50": pct(pub_lat, 50)}

    def close(self):
        import rclpy
        self._stop.set()
        time.sleep(0.05)
        self.node.destroy_node()
        rclpy.try_shutdown()


def echo_main() -> int:
    """The floor: a bare rclpy node that answers each Image with a Float64MultiArray (no policy, no checks)."""
    import rclpy
    from policystack.ros.topics import msg_class, qos_profile
    rclpy.init()
    node = rclpy.create_node("echo")
    pub = node.create_publisher(msg_class("Float64MultiArray"), "/policy/action", qos_profile("reliable", 10))
    out = msg_class("Float64MultiArray")(data=[0.0])
    node.create_subscription(msg_class("Image"), "/b/cam", lambda m: pub.publish(out), qos_profile("reliable", 5))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, Exception):
        pass
    return 0


def echo_floor(bench: "Bench", h: int, w: int, n: int) -> list[float]:
    from policystack.ros import convert
    from policystack.spec import Feature
    p = subprocess.Popen([sys.executable, __file__, "--echo"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while bench.pub_img.get_subscription_count() < 1 or bench.node.count_publishers("/policy/action") < 1:
            time.sleep(0.02)
        time.sleep(0.3)
        img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
        feat = Feature(K.image_key("cam"), img.shape, "uint8")
        rtts = []
        for i in range(n + 5):
            with bench.cv:
                k = len(bench.actions)
            t0 = time.perf_counter()
            bench.pub_img.publish(convert.encode(img, feat, stamp=1))
            with bench.cv:
                if not bench.cv.wait_for(lambda: len(bench.actions) > k, timeout=10):
                    raise RuntimeError("echo did not answer")
                t1 = bench.actions[k]
            if i >= 5:
                rtts.append(t1 - t0)
            time.sleep(0.005)
        return rtts
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:   # a floor process stuck in rclpy shutdown must not sink the run
            p.kill()
            p.wait()


def transport_info() -> dict:
    from rclpy.utilities import get_rmw_implementation_identifier
    return {"rmw": get_rmw_implementation_identifier(),
            "qos": "RELIABLE, KEEP_LAST depth 5, VOLATILE (images/state); actions RELIABLE depth 10",
            "transport": "Fast DDS default builtin transports (UDPv4 + shared memory), loopback-only netns",
            "discovery_range": os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE"),
            "FASTRTPS_DEFAULT_PROFILES_FILE": os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE"),
            "message": "sensor_msgs/Image rgb8 + sensor_msgs/JointState -> std_msgs/Float64MultiArray"}


def _isolated() -> bool:
    lines = Path("/proc/thread-self/net/dev").read_text().splitlines()[2:]
    return {ln.split(":")[0].strip() for ln in lines} <= {"lo"}


def run_one(args) -> dict:
    """All measurements with the Fast DDS profile of this process (FASTRTPS_DEFAULT_PROFILES_FILE)."""
    from policies.base import load_policy
    torch.set_num_threads(1)
    info = transport_info()
    results = {"transport": info, "lockstep": [], "timer": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bench = Bench(tmp)
        try:
            for size in args.sizes.split(","):
                h, w = map(int, size.split("x"))
                floor = echo_floor(bench, h, w, args.n)
                results.setdefault("echo_floor", []).append(
                    {"image": f"{h}x{w}", "p50_ms": pct(floor, 50), "p95_ms": pct(floor, 95)})
                print(f"  bare rclpy echo {h}x{w}: round trip p50 {pct(floor, 50):.2f} / p95 {pct(floor, 95):.2f} ms",
                      flush=True)
                for kind in args.policies.split(","):
                    if kind == "bc" and h * w > 128 * 128:
                        continue   # BC's conv encoder at 640x480 measures the CPU, not the transport
                    ckpt = make_checkpoint(kind, h, w, tmp / f"{kind}_{h}x{w}")
                    proc = bench.start_policy(ckpt, "lockstep", executor=args.executor)
                    try:
                        base, rtt = bench.lockstep(load_policy(ckpt), h, w, args.n)
                    finally:
                        proc.send_signal(2)
                        proc.wait(30)
                    row = {"policy": kind, "image": f"{h}x{w}", "n": args.n,
                           "in_process_p50_ms": pct(base, 50), "in_process_p95_ms": pct(base, 95),
                           "ros_p50_ms": pct(rtt, 50), "ros_p95_ms": pct(rtt, 95),
                           "added_p50_ms": float(np.median(np.subtract(rtt, base)) * 1e3)}
                    results["lockstep"].append(row)
                    print(f"  lockstep {kind:9s} {h}x{w}: in-process p50 {row['in_process_p50_ms']:.2f} / p95 "
                          f"{row['in_process_p95_ms']:.2f} ms | ROS round trip p50 {row['ros_p50_ms']:.2f} / p95 "
                          f"{row['ros_p95_ms']:.2f} ms | added (paired median) {row['added_p50_ms']:.2f} ms",
                          flush=True)
                if h * w > 128 * 128 and args.timer_seconds > 0:
                    ckpt = make_checkpoint("meanpixel", h, w, tmp / f"timer_{h}x{w}")
                    proc = bench.start_policy(ckpt, "timer", rate=30.0, executor=args.executor)
                    try:
                        r = {"image": f"{h}x{w}", "rate_hz": 30.0, **bench.timer_rate(h, w, 30.0, args.timer_seconds)}
                    finally:
                        proc.send_signal(2)
                        proc.wait(30)
                    results["timer"].append(r)
                    print(f"  timer 30 Hz {h}x{w}: {json.dumps(r)}", flush=True)
        finally:
            bench.close()
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="round trips per size")
    ap.add_argument("--sizes", default="128x128,480x640", help="HxW list")
    ap.add_argument("--policies", default="meanpixel,bc", help="meanpixel (transport-bound) and/or bc")
    ap.add_argument("--timer-seconds", type=float, default=5.0, help="timer-mode run at 640x480 (0: skip)")
    ap.add_argument("--profiles", default=f"default,{ROOT / 'launch' / 'fastdds_large_images.xml'}",
                    help="Fast DDS profiles to compare ('default' = none)")
    ap.add_argument("--executor", default="", choices=["", "single", "events", "multi"],
                    help="policy_node executor (empty: its default, events)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help="write the results as JSON")
    args = ap.parse_args(argv)
    if args.echo:
        return echo_main()
    if not _isolated() and os.geteuid() == 0 and not os.environ.get("BENCH_NO_NETNS"):
        script = "ip link set lo up; ip link set lo multicast on; exec \"$0\" \"$@\""
        os.execvp("unshare", ["unshare", "-n", "bash", "-c", script, sys.executable, __file__, *sys.argv[1:]])
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(np.random.randint(1, 100)))
    if args.child:
        print(json.dumps(run_one(args)), flush=True)
        return 0
    runs = []
    for prof in args.profiles.split(","):
        env = dict(os.environ)
        env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
        if prof != "default":
            env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(Path(prof).resolve())
        print(f"== Fast DDS profile: {prof}", flush=True)
        p = subprocess.run([sys.executable, __file__, "--child", "--n", str(args.n), "--sizes", args.sizes,
                            "--policies", args.policies, "--timer-seconds", str(args.timer_seconds),
                            "--executor", args.executor],
                           env=env, stdout=subprocess.PIPE, text=True)
        lines = p.stdout.strip().splitlines()
        print("\n".join(lines[:-1]), flush=True)
        if p.returncode != 0 or not lines:
            raise SystemExit(f"benchmark run with profile {prof} failed")
        res = json.loads(lines[-1])
        res["profile"] = prof
        runs.append(res)
    print("transport:", json.dumps(runs[0]["transport"], indent=1))
    print(f"\n{'profile':28s} {'policy':10s} {'image':8s} {'in-proc p50/p95 ms':>20s} {'ROS p50/p95 ms':>18s} "
          f"{'added p50':>10s}")
    for r in runs:
        for e in r.get("echo_floor", []):
            print(f"{Path(r['profile']).name:28s} {'bare echo':10s} {e['image']:8s} {'-':>20s} "
                  f"{e['p50_ms']:9.2f} / {e['p95_ms']:6.2f}")
        for row in r["lockstep"]:
            print(f"{Path(r['profile']).name:28s} {row['policy']:10s} {row['image']:8s} "
                  f"{row['in_process_p50_ms']:9.2f} / {row['in_process_p95_ms']:6.2f} "
                  f"{row['ros_p50_ms']:9.2f} / {row['ros_p95_ms']:6.2f} {row['added_p50_ms']:9.2f}")
        for t in r["timer"]:
            print(f"{Path(r['profile']).name:28s} timer 30 Hz {t['image']}: actions {t['action_hz']} Hz, "
                  f"node holds {t['node_holds']}/{t['node_ticks']} ticks {t['hold_reasons']}, "
                  f"image age p50 {t['image_age_ms_p50']} ms")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
