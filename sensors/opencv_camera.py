"""OpenCV camera: one class for a device index, a /dev path, a video file or a stream URL.

Why the details matter (specs/sensors_feasibility.md §2):
- settings go width -> height -> fps -> fourcc and are read back, because many UVC cameras reject an
  fps before the size is set and some reject FOURCC before both (LeRobot #2274, #3621);
- a file is replayed at its fps (absolute schedule), not at decoder speed (136-4700 fps here), so tests
  see camera-like timing; a URL or device is paced by its source;
- each frame is stamped with time.monotonic() right after ``grab()`` returns, before decoding;
- ``cv2.VideoCapture`` never raises: a missing device is found by checking the path first, and an open
  that fails is reported with a DeviceNotFoundError naming the source.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import sys
import time
from dataclasses import dataclass

import numpy as np

from policystack import keys as K
from policystack.config import register_config
from policystack.spec import Feature, Spec
from sensors.base import Pacer, SensorConfig, SourceEnded, ThreadedSensor
from sensors.errors import DeviceNotFoundError, SensorConfigError

log = logging.getLogger(__name__)

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@register_config("sensor", "opencv")
@dataclass
class OpenCVCameraConfig(SensorConfig):
    source: int | str = 0  # device index, /dev/video* path, video file, or URL (http://, rtsp://, ...)
    width: int | None = None  # requested capture size; devices are set and checked, files/streams checked
    height: int | None = None
    fps: float | None = None  # devices: requested rate; files: replay rate (default: the file's own fps)
    fourcc: str | None = None  # devices: pixel format, e.g. "MJPG" (needed for high rates over USB 2)
    loop: bool = True  # files: start again at the end (False: the sensor ends when the file does)
    rotation: int = 0  # 0, 90, 180, 270 degrees clockwise, applied after capture
    resize: tuple[int, int] | None = None  # (width, height) of the output image, after rotation
    read_timeout: float = 2.0  # streams: FFmpeg open/read timeout (s), so a dead server is noticed

    def validate(self) -> None:
        super().validate()
        if self.rotation not in (0, 90, 180, 270):
            raise SensorConfigError(f"camera {self.name!r}: rotation must be 0, 90, 180 or 270, got {self.rotation}")
        for f in ("width", "height", "fps"):
            v = getattr(self, f)
            if v is not None and v <= 0:
                raise SensorConfigError(f"camera {self.name!r}: {f} must be > 0, got {v}")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise SensorConfigError(f"camera {self.name!r}: fourcc must be 4 characters, got {self.fourcc!r}")
        if self.resize is not None and (len(self.resize) != 2 or min(self.resize) <= 0):
            raise SensorConfigError(f"camera {self.name!r}: resize must be (width, height), got {self.resize}")


def classify_source(source: int | str) -> tuple[str, int | str]:
    """('device', index|path) | ('stream', url) | ('file', path). Digit strings count as indices."""
    if isinstance(source, bool):
        raise SensorConfigError(f"camera source must be an index, path or URL, got {source!r}")
    if isinstance(source, int):
        return "device", source
    s = str(source)
    if s.isdigit():
        return "device", int(s)
    if s.startswith("/dev/"):
        return "device", s
    if _URL.match(s):
        return "stream", s
    return "file", os.path.expanduser(s)


def video_devices() -> list[str]:
    return sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p))


class OpenCVCamera(ThreadedSensor):
    """A camera read by ``cv2.VideoCapture`` in a background thread; frames are RGB uint8 (H, W, 3)."""

    config: OpenCVCameraConfig

    def __init__(self, config: OpenCVCameraConfig | None = None, **kw):
        super().__init__(config or OpenCVCameraConfig(**kw))
        self.kind, self.target = classify_source(self.config.source)
        self._cap = None
        self._size: tuple[int, int] | None = None  # (H, W) of output frames, known after open
        self.actual: dict[str, float] = {}  # what the source reports after settings (read back)

    # --- contract -------------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        return K.image_key(self.name)

    @property
    def features(self) -> Spec:
        h, w = self._out_hw()
        return Spec.of([Feature(self.key, (h, w, 3), "uint8")])

    def describe(self) -> str:
        return f"{self.kind} {self.target!r}"

    # --- driver ---------------------------------------------------------------------------------------
    def _out_hw(self) -> tuple[int | None, int | None]:
        if self.config.resize is not None:
            return self.config.resize[1], self.config.resize[0]
        if self._size is not None:
            return self._size
        h, w = self.config.height, self.config.width
        if self.config.rotation in (90, 270):
            h, w = w, h
        return h, w

    def _check_present(self) -> None:
        who = f"camera {self.name!r}"
        if self.kind == "device":
            path = f"/dev/video{self.target}" if isinstance(self.target, int) else self.target
            if sys.platform.startswith("linux") and not os.path.exists(path):
                have = ", ".join(video_devices()) or "none"
                raise DeviceNotFoundError(f"{who}: video device {path} does not exist (present: {have})")
        elif self.kind == "file" and not os.path.isfile(self.target):
            raise DeviceNotFoundError(f"{who}: video file {self.target} does not exist")

    def _open_capture(self):
        import cv2
        if self.kind == "stream":
            ms = int(self.config.read_timeout * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            return cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)
        if self.kind == "file":
            return cv2.VideoCapture(self.target, cv2.CAP_FFMPEG)
        api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        return cv2.VideoCapture(self.target, api)

    def _connect(self) -> None:
        self._check_present()
        cap = self._open_capture()
        if not cap.isOpened():
            cap.release()
            raise DeviceNotFoundError(f"camera {self.name!r}: cannot open {self.describe()} "
                                      f"(cv2.VideoCapture.isOpened() is False)")
        try:
            self._apply_settings(cap)
        except Exception:
            cap.release()
            raise
        self._cap = cap

    def _apply_settings(self, cap) -> None:
        """Set width -> height -> fps -> fourcc (devices only), then read back and check every one."""
        import cv2
        c = self.config
        if self.kind == "device":
            for prop, v in ((cv2.CAP_PROP_FRAME_WIDTH, c.width), (cv2.CAP_PROP_FRAME_HEIGHT, c.height),
                            (cv2.CAP_PROP_FPS, c.fps)):
                if v is not None:
                    cap.set(prop, float(v))
            if c.fourcc:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*c.fourcc))
        fcc = int(cap.get(cv2.CAP_PROP_FOURCC))
        self.actual = {"width": cap.get(cv2.CAP_PROP_FRAME_WIDTH), "height": cap.get(cv2.CAP_PROP_FRAME_HEIGHT),
                       "fps": cap.get(cv2.CAP_PROP_FPS),
                       "fourcc": "".join(chr((fcc >> 8 * i) & 0xFF) for i in range(4)) if fcc > 0 else "",
                       "frame_count": cap.get(cv2.CAP_PROP_FRAME_COUNT)}
        refused = []
        for f in ("width", "height"):
            want, got = getattr(c, f), self.actual[f]
            if want is not None and got > 0 and int(round(got)) != int(want):
                refused.append(f"{f}={want} (it reports {got:g})")
        # a stream's CAP_PROP_FPS is FFmpeg's guess (25 for MJPEG over HTTP), and a file is paced by us
        if self.kind == "device" and c.fps is not None and self.actual["fps"] > 0 \
                and abs(self.actual["fps"] - c.fps) > 0.5:
            refused.append(f"fps={c.fps:g} (it reports {self.actual['fps']:g})")
        if self.kind == "device" and c.fourcc and self.actual["fourcc"] and self.actual["fourcc"] != c.fourcc:
            refused.append(f"fourcc={c.fourcc} (it reports {self.actual['fourcc']})")
        if refused:
            what = "refused" if self.kind == "device" else "cannot provide (a file/stream cannot be re-set)"
            raise SensorConfigError(f"camera {self.name!r} ({self.describe()}) {what}: {', '.join(refused)}")
        if self.kind == "file":
            fps = c.fps or self.actual["fps"]
            if not fps or fps <= 0:
                raise SensorConfigError(f"camera {self.name!r}: file {self.target} reports no fps; set fps")
            self._pacer = Pacer(1.0 / fps)  # a file is replayed at its fps, not at decoder speed

    def _read(self):
        import cv2
        cap = self._cap
        if cap is None:
            return None
        if self.kind == "file":
            self._pacer.wait(self._stop)
        ok = cap.grab()
        t = time.monotonic()  # capture time: the frame is complete when grab() returns
        if not ok and self.kind == "file":
            if not self.config.loop:
                raise SourceEnded(f"end of file {self.target}")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok = cap.grab()
            t = time.monotonic()
        if not ok:
            self.last_error = f"grab() failed on {self.describe()}"
            return None
        t_dev = cap.get(cv2.CAP_PROP_POS_MSEC) if self.kind == "file" else None
        ok, frame = cap.retrieve()
        if not ok or frame is None:
            self.last_error = f"retrieve() failed on {self.describe()}"
            return None
        data = self._process(frame)
        if self._size is None:
            self._size = next(iter(data.values())).shape[:2]
        return t, data, t_dev

    def _process(self, frame_bgr: np.ndarray) -> dict[str, np.ndarray]:
        return {self.key: self._rgb(frame_bgr)}

    def _rgb(self, frame_bgr: np.ndarray) -> np.ndarray:
        import cv2
        img = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB) if frame_bgr.ndim == 3 else \
            cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2RGB)
        rot = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
        if self.config.rotation:
            img = cv2.rotate(img, rot[self.config.rotation])
        if self.config.resize is not None:
            img = cv2.resize(img, tuple(self.config.resize), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(img)

    def _disconnect(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
