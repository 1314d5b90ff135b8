"""A whole rig on virtual devices: an MJPEG-over-HTTP camera, a RealSense recording, a DIGIT and a
GelSight Mini as video files, and a PulseAudio microphone that espeak-ng talks into. Writes the rig
YAML, a contact sheet (`policystack sensors preview`) and a recorded episode (`... sensors record`).

    .venv/bin/python scripts/sensors_demo.py --out /tmp/sensors_demo \
        [--sheet docs/results/figures/sensors_contact_sheet.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from policystack.cli import main as cli  # noqa: E402
from policystack.dataset import read_episodes  # noqa: E402
from sensors.virtual import (MJPEGServer, realsense_recording_ext, write_realsense_recording,  # noqa: E402
                             write_test_video)
from sensors.virtual_audio import PulseAudioVirtualMic, missing_audio_tools  # noqa: E402


def talker(vm: PulseAudioVirtualMic, stop: threading.Event) -> None:
    while not stop.is_set():
        subprocess.run(["espeak-ng", "-s", "170", "pour the water"], env=vm.env, capture_output=True)
        stop.wait(0.3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/sensors_demo"))
    ap.add_argument("--sheet", type=Path, default=None, help="also copy the contact sheet here")
    ap.add_argument("--seconds", type=float, default=2.0, help="recorded episode length")
    a = ap.parse_args(argv)
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    write_test_video(out / "digit.avi", n_frames=120, fps=60, width=320, height=240, seed=2)
    write_test_video(out / "gelsight.avi", n_frames=50, fps=25, width=640, height=480, seed=5)
    rs_file = write_realsense_recording(out / f"rgbd{realsense_recording_ext()}", n_frames=90)
    missing = missing_audio_tools(players=("espeak-ng",))
    with MJPEGServer(fps=30, width=320, height=240) as srv:
        sensors = [
            {"type": "opencv", "name": "front", "source": srv.url},
            {"type": "realsense", "name": "wrist", "file": rs_file.name},
            {"type": "tactile", "name": "digit", "kind": "digit", "source": "digit.avi"},
            {"type": "tactile", "name": "gelsight", "kind": "gelsight_mini", "source": "gelsight.avi",
             "output": "diff"},
        ]
        vm = stop = None
        if missing:
            print(f"no microphone in the demo: apt-get install {' '.join(missing)}")
        else:
            vm = PulseAudioVirtualMic()
            vm.start()
            vm.apply()
            sensors.append({"type": "microphone", "name": "mic", "device": "pulse", "window_seconds": 1.0})
            stop = threading.Event()
            threading.Thread(target=talker, args=(vm, stop), daemon=True).start()
        rig_yaml = out / "rig.yaml"
        rig_yaml.write_text(yaml.safe_dump({"rate": 10, "max_skew": 0.2, "sensors": sensors}, sort_keys=False))
        try:
            rc = cli(["sensors", "preview", str(rig_yaml), "-o", str(out / "contact_sheet.png"), "--ticks", "3",
                      "--interval", "0.4"])
            rc = rc or cli(["sensors", "record", str(rig_yaml), "-o", str(out / "episodes.hdf5"),
                            "--seconds", str(a.seconds), "--task", "pour the water"])
        finally:
            if stop is not None:
                stop.set()
            if vm is not None:
                vm.stop()
    if rc:
        return rc
    ep = read_episodes(out / "episodes.hdf5")[-1]
    print(f"episode: {len(ep)} steps, task {ep.task!r}")
    for k, v in ep.obs.items():
        print(f"  {k:34s} {str(v.shape):22s} {v.dtype}")
    if a.sheet:
        a.sheet.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "contact_sheet.png", a.sheet)
        print(f"copied the contact sheet to {a.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
