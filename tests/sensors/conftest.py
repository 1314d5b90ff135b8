"""Virtual devices for the sensor tests: real library code paths, no hardware.

Each fixture starts and stops its device itself, and skips with the reason (and the Debian package to
install) when a tool is missing: PulseAudio + sox for the microphone, libusb for pyrealsense2,
libportaudio2 for sounddevice.
"""

from __future__ import annotations

import importlib
import os

import pytest

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


def _need(module: str, hint: str):
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as e:
        pytest.skip(f"{module} unavailable ({e}); {hint}")


@pytest.fixture(scope="session")
def cv2():
    return _need("cv2", "pip install opencv-python")


@pytest.fixture(scope="session")
def rs():
    return _need("pyrealsense2", "apt-get install libusb-1.0-0; pip install pyrealsense2")


@pytest.fixture(scope="session")
def media(tmp_path_factory, cv2):
    """MJPG test videos with the frame index drawn in (what UVC cameras and tactile sensors send)."""
    from sensors.virtual import write_test_video
    d = tmp_path_factory.mktemp("media")
    return {
        "cam30": write_test_video(d / "cam30.avi", n_frames=90, fps=30, width=320, height=240),
        "digit60": write_test_video(d / "digit60.avi", n_frames=120, fps=60, width=320, height=240, seed=2),
        "gelsight": write_test_video(d / "gelsight.avi", n_frames=60, fps=25, width=640, height=480, seed=4),
        "dir": d,
    }


@pytest.fixture(scope="session")
def rs_recording(tmp_path_factory, rs):
    """A RealSense recording written at test time by rs.software_device + rs.recorder (paced, ~2 s).

    212x120 keeps decoding + alignment cheap enough for 30 fps on a busy 2-core CI machine."""
    from sensors.virtual import realsense_recording_ext, write_realsense_recording
    path = tmp_path_factory.mktemp("rs") / f"synthetic{realsense_recording_ext()}"
    return write_realsense_recording(path, width=212, height=120, fps=30, n_frames=60, pace=True)


@pytest.fixture(scope="session")
def virtual_mic(tmp_path_factory):
    """A private PulseAudio daemon (null sink, keep-alive stream, monitor = capture device)."""
    from sensors.virtual_audio import PulseAudioVirtualMic, missing_audio_tools
    missing = missing_audio_tools(players=("sox",))
    if missing:
        pytest.skip(f"virtual microphone needs Debian packages: apt-get install {' '.join(missing)}")
    _need("sounddevice", "apt-get install libportaudio2; pip install sounddevice")
    vm = PulseAudioVirtualMic(rate=16000, root=tmp_path_factory.mktemp("pulse"))
    vm.start()
    vm.apply()
    yield vm
    vm.stop()
