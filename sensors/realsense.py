"""Intel RealSense RGB-D: colour + depth aligned to colour, depth in metres, intrinsics exposed.

A live camera is chosen by serial; a recording (.db3 on pyrealsense2 >= 2.59, .bag before) is played
through the same ``rs.pipeline`` code path, so tests exercise what runs on the robot
(specs/sensors_feasibility.md §1). Two facts shape the reader:
- the pipeline's syncer emits more framesets than frames, pairing a new frame of one stream with the
  previous frame of the other; framesets whose colour frame number was already emitted are dropped;
- raw depth is z16 in device units; multiplying by the device's depth scale gives metres (0 = no data).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from policystack import keys as K
from policystack.config import register_config
from policystack.spec import Feature, Spec
from sensors.base import Pacer, SensorConfig, SourceEnded, ThreadedSensor
from sensors.errors import DeviceNotFoundError, SensorConfigError, SensorError

log = logging.getLogger(__name__)


def import_rs():
    try:
        import pyrealsense2 as rs
    except ImportError as e:
        hint = " (apt-get install libusb-1.0-0)" if "libusb" in str(e) else " (pip install pyrealsense2)"
        raise SensorError(f"pyrealsense2 cannot be imported: {e}{hint}") from e
    return rs


@register_config("sensor", "realsense")
@dataclass
class RealSenseConfig(SensorConfig):
    serial: str | None = None  # live device serial (None: the only connected one)
    file: str | None = None  # a recording played through the pipeline instead of a live device
    width: int = 640  # live stream size and rate (recordings play what they contain)
    height: int = 480
    fps: int = 30
    depth: bool = True  # also stream depth (observation.depth.<name>, metres)
    align: bool = True  # align depth to the colour camera (same H x W, colour intrinsics)
    # recordings: replay at the recorded timing (False: paced by the driver; librealsense starts playing
    # inside pipeline.start(), so the first 0-3 frames may be gone before the reader starts)
    real_time: bool = True
    pace: bool = True  # recordings with real_time=False: pace at the stream's fps (False: as fast as consumed)
    repeat: bool = True  # recordings: loop at the end
    frame_timeout: float = 1.0  # wait for one frameset (s); longer counts as a failed read

    def validate(self) -> None:
        super().validate()
        if self.serial is not None and self.file is not None:
            raise SensorConfigError(f"realsense {self.name!r}: give serial or file, not both")
        if min(self.width, self.height, self.fps) <= 0:
            raise SensorConfigError(f"realsense {self.name!r}: width, height and fps must be > 0")


def _intrinsics_dict(i) -> dict:
    return {"width": i.width, "height": i.height, "fx": i.fx, "fy": i.fy, "ppx": i.ppx, "ppy": i.ppy,
            "model": str(i.model).split(".")[-1], "coeffs": list(i.coeffs)}


def list_realsense() -> list[dict]:
    """Connected RealSense devices: name, serial, firmware (empty without hardware)."""
    try:
        rs = import_rs()
    except SensorError:
        return []
    out = []
    for d in rs.context().query_devices():
        info = {}
        for key, ci in (("name", rs.camera_info.name), ("serial", rs.camera_info.serial_number),
                        ("firmware", rs.camera_info.firmware_version), ("usb", rs.camera_info.usb_type_descriptor)):
            info[key] = d.get_info(ci) if d.supports(ci) else ""
        out.append(info)
    return out


class RealSenseCamera(ThreadedSensor):
    """RGB-D frames: ``observation.images.<name>`` uint8 (H, W, 3) RGB and ``observation.depth.<name>``
    float32 (H, W) metres, both at colour resolution when aligned."""

    config: RealSenseConfig

    def __init__(self, config: RealSenseConfig | None = None, **kw):
        super().__init__(config or RealSenseConfig(**kw))
        self._pipe = None
        self._align = None
        self.depth_scale: float | None = None
        self.intrinsics: dict | None = None  # colour intrinsics (also the aligned depth's)
        self.depth_intrinsics: dict | None = None
        self.serial: str | None = None
        self.duplicates = 0  # framesets dropped because their colour frame was already emitted
        self._hw: tuple[int, int] | None = None

    @property
    def features(self) -> Spec:
        h, w = self._hw or (None, None)
        if self._hw is None and self.config.file is None:
            h, w = self.config.height, self.config.width
        feats = [Feature(K.image_key(self.name), (h, w, 3), "uint8")]
        if self.config.depth:
            feats.append(Feature(K.depth_key(self.name), (h, w), "float32"))
        return Spec.of(feats)

    def describe(self) -> str:
        return f"recording {self.config.file}" if self.config.file else f"device serial {self.config.serial or '(any)'}"

    def _connect(self) -> None:
        rs = import_rs()
        c = self.config
        cfg = rs.config()
        if c.file:
            if not os.path.isfile(str(c.file)):
                raise DeviceNotFoundError(f"realsense {self.name!r}: recording {c.file} does not exist")
            cfg.enable_device_from_file(str(c.file), repeat_playback=c.repeat)
            cfg.enable_stream(rs.stream.color)
            if c.depth:
                cfg.enable_stream(rs.stream.depth)
        else:
            devices = list_realsense()
            serials = [d["serial"] for d in devices]
            if not devices:
                raise DeviceNotFoundError(f"realsense {self.name!r}: no RealSense device connected"
                                          + (f" (wanted serial {c.serial})" if c.serial else ""))
            if c.serial is not None and str(c.serial) not in serials:
                raise DeviceNotFoundError(f"realsense {self.name!r}: no device with serial {c.serial} "
                                          f"(connected: {', '.join(serials)})")
            if c.serial is None and len(devices) > 1:
                raise SensorConfigError(f"realsense {self.name!r}: {len(devices)} devices connected "
                                        f"({', '.join(serials)}); set serial")
            cfg.enable_device(str(c.serial or serials[0]))
            cfg.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
            if c.depth:
                cfg.enable_stream(rs.stream.depth, c.width, c.height, rs.format.z16, c.fps)
        pipe = rs.pipeline()
        try:
            prof = pipe.start(cfg)
        except RuntimeError as e:
            raise SensorError(f"realsense {self.name!r} ({self.describe()}): pipeline start failed: {e}") from e
        dev = prof.get_device()
        if c.file:
            dev.as_playback().set_real_time(c.real_time)
        if dev.supports(rs.camera_info.serial_number):
            self.serial = dev.get_info(rs.camera_info.serial_number)
        cprof = prof.get_stream(rs.stream.color).as_video_stream_profile()
        self.intrinsics = _intrinsics_dict(cprof.get_intrinsics())
        self._fmt = cprof.format()
        self._pacer = Pacer(1.0 / (cprof.fps() or c.fps))
        if c.depth:
            self.depth_scale = float(dev.first_depth_sensor().get_depth_scale())
            self.depth_intrinsics = _intrinsics_dict(prof.get_stream(rs.stream.depth)
                                                     .as_video_stream_profile().get_intrinsics())
        self._align = rs.align(rs.stream.color) if (c.depth and c.align) else None
        self._pipe, self._playback = pipe, (dev.as_playback() if c.file else None)
        self._last_color = None

    def _read(self):
        rs = import_rs()
        c = self.config
        if c.file and not c.real_time and c.pace:  # playback runs as fast as it is consumed: pace it
            self._pacer.wait(self._stop)
        while True:
            ok, fs = self._pipe.try_wait_for_frames(int(c.frame_timeout * 1000))
            t = time.monotonic()  # capture-time estimate: when the frameset reached us
            if not ok:
                if self._playback is not None and not c.repeat \
                        and self._playback.current_status() == rs.playback_status.stopped:
                    raise SourceEnded(f"end of recording {c.file}")
                self.last_error = f"no frameset within {c.frame_timeout:.1f} s"
                return None
            color = fs.get_color_frame()
            if not color:
                return None
            n = color.get_frame_number()
            if n != self._last_color:
                break
            self.duplicates += 1  # the syncer re-paired an already emitted colour frame
            del fs, color  # release it at once: playback may wait for its frames to return to the pool
            if self._stop.is_set():
                return None
        self._last_color = n
        if self._align is not None:
            fs = self._align.process(fs)
            color = fs.get_color_frame()
        img = np.asanyarray(color.get_data())
        if self._fmt == rs.format.bgr8:
            img = img[..., ::-1]
        # copy: a view would keep the librealsense frame alive and exhaust its frame pool (playback stalls)
        data = {K.image_key(self.name): np.array(img, dtype=np.uint8, order="C", copy=True)}
        if c.depth:
            d = fs.get_depth_frame()
            if not d:
                self.last_error = "frameset without depth"
                return None
            data[K.depth_key(self.name)] = np.asanyarray(d.get_data()).astype(np.float32) * np.float32(self.depth_scale)
        self._hw = img.shape[:2]
        return t, data, float(color.get_timestamp())

    def _disconnect(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            try:
                pipe.stop()
            except RuntimeError:
                pass
