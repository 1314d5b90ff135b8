"""Sensor timing on virtual devices: pacing, RealSense playback throughput, audio time mapping, rig skews.

    .venv/bin/python benchmarks/bench_sensors.py [--seconds 3] [--json out.json] [--plot fig.png]

Numbers are wall-clock on a shared machine, so each one is printed next to a reference from the same
run: a rate against its target, aligned RealSense throughput against unaligned, a skew against the
sensor's frame period. Needs the Debian packages of docs/sensors.md for the audio parts (skipped
with a message otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensors.opencv_camera import OpenCVCamera  # noqa: E402
from sensors.realsense import RealSenseCamera  # noqa: E402
from sensors.rig import Rig, make_sensor, run_loop  # noqa: E402
from sensors.virtual import (MJPEGServer, realsense_recording_ext, write_realsense_recording,  # noqa: E402
                             write_test_video)
from sensors.virtual_audio import PulseAudioVirtualMic, SoxFeeder, missing_audio_tools, tone_onset  # noqa: E402


def intervals(ring) -> dict:
    t = np.array([s.t for s in ring])
    d = np.diff(t) * 1e3
    return {"rate": (len(t) - 1) / (t[-1] - t[0]), "median_ms": float(np.median(d)),
            "p99_ms": float(np.percentile(d, 99)), "n": len(t)}


def bench_pacing(tmp: Path, seconds: float) -> dict:
    out = {}
    for fps in (10, 30, 60):
        p = write_test_video(tmp / f"f{fps}.avi", n_frames=2 * fps, fps=fps, width=320, height=240)
        with OpenCVCamera(name="cam", source=str(p), buffer_size=int(fps * seconds) + 8) as cam:
            time.sleep(seconds)
            out[f"file_{fps}fps"] = {**intervals(list(cam._ring._items)), "target": fps}
    with MJPEGServer(fps=30) as srv, OpenCVCamera(name="cam", source=srv.url, buffer_size=int(30 * seconds) + 8) as cam:
        time.sleep(seconds)
        out["http_mjpeg_30fps"] = {**intervals(list(cam._ring._items)), "target": 30}
    return out


def bench_realsense(tmp: Path) -> dict:
    p = write_realsense_recording(tmp / f"rs{realsense_recording_ext()}", n_frames=90, pace=True)
    out = {}
    rates: dict[bool, list[float]] = {False: [], True: []}
    for align in (False, True, False, True):  # alternate: a busy machine affects both alike
        with RealSenseCamera(name="rs", file=str(p), real_time=False, pace=False, repeat=True, align=align,
                             buffer_size=1000) as cam:  # as fast as consumed: decode (+ align) throughput
            time.sleep(2.0)
            ring = list(cam._ring._items)
        rates[align].append((len(ring) - 1) / (ring[-1].t - ring[0].t))
    for align, v in rates.items():
        out[f"unpaced_align_{align}"] = {"pairs_per_s": float(np.median(v)), "runs": v}
    with RealSenseCamera(name="rs", file=str(p), real_time=True, repeat=False, buffer_size=200) as cam:
        t0 = time.monotonic()
        while cam.state == "running" and time.monotonic() - t0 < 10:
            time.sleep(0.01)
        out["real_time_align"] = {**intervals(list(cam._ring._items)), "target": 30,
                                  "duplicates_dropped": cam.duplicates}
    out["align_cost_ratio"] = out["unpaced_align_True"]["pairs_per_s"] / out["unpaced_align_False"]["pairs_per_s"]
    return out


def bench_audio(vm, n_tones: int = 10) -> dict:
    from sensors.microphone import Microphone
    out = {}
    for rate in (16000, 44100):
        with Microphone(name="mic", device="pulse", sample_rate=rate) as mic, SoxFeeder(vm) as fd:
            time.sleep(1.0)
            errs = []
            for _ in range(n_tones):
                tw = fd.tone(1000.0, 0.1)
                time.sleep(0.4)
                w = mic.window(tw + 0.2, 0.3)
                x = w.data[mic.key][0]
                i = tone_onset(x, rate)
                if i is not None:
                    errs.append((w.t - (len(x) - i) * mic.clock()[1] - tw) * 1e3)
            st = mic.stats()
            anchors = np.array(list(mic._anchors))
        gaps = np.diff(anchors[:, 1]) * 1e3
        e = np.array(errs)
        out[f"{rate}Hz"] = {"tone_error_ms": {"mean": float(e.mean()), "min": float(e.min()), "max": float(e.max()),
                                              "n": len(e)},
                            "measured_rate": st["measured_rate"],
                            "rate_error_ppm": (st["measured_rate"] / rate - 1) * 1e6,
                            "callback_period_ms": {"median": float(np.median(gaps)), "std": float(gaps.std()),
                                                   "p99": float(np.percentile(gaps, 99))},
                            "errors_ms": [round(v, 1) for v in errs]}
    return out


def bench_rig(tmp: Path, with_mic: bool, seconds: float) -> dict:
    # a recording longer than both loops, so no skew includes the playback restarting at its end
    rs_file = write_realsense_recording(tmp / f"rig{realsense_recording_ext()}", n_frames=int(30 * (2 * seconds + 2)))
    cam = write_test_video(tmp / "rig_cam.avi", 90, 30, 320, 240)
    tac = write_test_video(tmp / "rig_tac.avi", 120, 60, 320, 240, seed=3)
    sensors = [make_sensor({"type": "opencv", "name": "camera", "source": str(cam)}),
               make_sensor({"type": "tactile", "name": "tactile", "kind": "digit", "source": str(tac)}),
               make_sensor({"type": "realsense", "name": "rgbd", "file": str(rs_file), "repeat": True})]
    if with_mic:
        sensors.append(make_sensor({"type": "microphone", "name": "mic", "device": "pulse", "window_seconds": 1.0}))
    out = {}
    with Rig(sensors, max_skew=0.5) as rig:
        rig.wait_ready()
        for rate in (10.0, 13.0):  # 13 Hz is incommensurate with 30/60 fps: it samples every phase
            res = run_loop(rig, steps=int(seconds * rate), rate=rate)
            out[f"{rate:g}Hz"] = res
        out["stats"] = rig.stats()
    return out


def plot(res: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    sk = res["rig"]["13Hz"]["skew"]
    names = list(sk)
    axes[0].bar(names, [sk[n]["p50_ms"] for n in names], label="p50")
    axes[0].scatter(names, [sk[n]["max_ms"] for n in names], color="k", marker="_", s=400, label="max")
    axes[0].set_ylabel("skew = t - capture time (ms)")
    axes[0].set_title("rig at 13 Hz: per-sensor skew")
    axes[0].legend(fontsize=8)
    if "audio" in res:
        for k, v in res["audio"].items():
            axes[1].plot(v["errors_ms"], "o-", label=k)
        axes[1].axhspan(-50, 50, color="g", alpha=0.08, label="±50 ms")
        axes[1].set_xlabel("tone #")
        axes[1].set_ylabel("found - written (ms)")
        axes[1].set_title("tone written by sox, found in window")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    a = ap.parse_args(argv)
    res: dict = {"loadavg_start": os.getloadavg(), "cpus": os.cpu_count()}
    print(f"load average {res['loadavg_start'][0]:.1f} on {res['cpus']} CPUs")
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res["pacing"] = bench_pacing(tmp, a.seconds)
        for k, v in res["pacing"].items():
            print(f"pacing {k:18s} {v['rate']:6.2f} fps = {v['rate'] / v['target']:.4f} x target; "
                  f"interval median {v['median_ms']:.1f} ms, p99 {v['p99_ms']:.1f} ms")
        res["realsense"] = bench_realsense(tmp)
        r = res["realsense"]
        print(f"realsense unpaced: {r['unpaced_align_False']['pairs_per_s']:.0f} pairs/s raw, "
              f"{r['unpaced_align_True']['pairs_per_s']:.0f} aligned (ratio {r['align_cost_ratio']:.2f}); "
              f"real-time {r['real_time_align']['rate']:.2f} fps = {r['real_time_align']['rate'] / 30:.4f} x 30, "
              f"duplicates dropped {r['real_time_align']['duplicates_dropped']}")
        missing = missing_audio_tools()
        vm = None
        if missing:
            print(f"audio skipped: apt-get install {' '.join(missing)}")
        else:
            vm = PulseAudioVirtualMic()
            vm.start()
            vm.apply()
            res["audio"] = bench_audio(vm)
            for k, v in res["audio"].items():
                e = v["tone_error_ms"]
                print(f"audio {k}: tone found {e['mean']:+.1f} ms (min {e['min']:+.1f}, max {e['max']:+.1f}, n={e['n']}) "
                      f"from its write time; sample clock {v['rate_error_ppm']:+.0f} ppm vs nominal; callback "
                      f"period {v['callback_period_ms']['median']:.1f} ms (std {v['callback_period_ms']['std']:.1f})")
        try:
            res["rig"] = bench_rig(tmp, vm is not None, a.seconds)
        finally:
            if vm is not None:
                vm.stop()
        for rate in ("10Hz", "13Hz"):
            rr = res["rig"][rate]
            print(f"rig {rate}: {rr['steps']} ticks, {rr['stale_steps']} stale")
            for n, s in rr["skew"].items():
                period = {"camera": 1000 / 30, "tactile": 1000 / 60, "rgbd": 1000 / 30}.get(n)
                rel = f" = {s['max_ms'] / period:.2f} frame periods" if period else ""
                print(f"    {n:8s} skew p50 {s['p50_ms']:6.1f} ms, p95 {s['p95_ms']:6.1f}, max {s['max_ms']:6.1f}{rel}")
    res["wall_s"] = time.monotonic() - t_start
    res["loadavg_end"] = os.getloadavg()
    print(f"total {res['wall_s']:.1f} s")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1, default=float))
    if a.plot:
        plot(res, a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
