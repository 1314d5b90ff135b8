"""Vision-based tactile sensors (GelSight Mini, DIGIT): UVC cameras found by name/serial, read as video.

Both vendors' SDKs are ``cv2.VideoCapture`` on a V4L2 node plus fixed image processing
(specs/sensors_feasibility.md §4), so the driver is the OpenCV camera with:
- discovery through sysfs (``/sys/class/video4linux/*/name``, the USB device's ``serial``) and udev's
  database (``ID_MODEL``, ``ID_SERIAL_SHORT``), no pyudev needed;
- the SDK processing: GelSight Mini crops ``border_fraction`` (0.15) of each dimension from every side
  and resizes to 320x240 (gsrobotics ``crop_and_resize``); DIGIT transposes and flips (digit-interface
  ``get_frame``), so QVGA frames come out 320 high x 240 wide;
- a difference image against a no-contact reference frame (the mean of the first frames after open),
  stored as uint8 with 128 = no change.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from policystack import keys as K
from policystack.config import register_config
from policystack.spec import Feature, Spec
from sensors.errors import DeviceNotFoundError, SensorConfigError, SensorError
from sensors.opencv_camera import OpenCVCamera, OpenCVCameraConfig

log = logging.getLogger(__name__)

KINDS = {
    # kind: (name/model substrings, default capture (w, h, fps), border_fraction, output (w, h), transpose)
    "gelsight_mini": (("GelSight Mini", "GelSight_Mini"), (None, None, None), 0.15, (320, 240), False),
    "digit": (("DIGIT",), (320, 240, 60), 0.0, None, True),
    "generic": ((), (None, None, None), 0.0, None, False),
}


@dataclass
class VideoDevice:
    """A V4L2 capture node as sysfs/udev describe it."""

    devnode: str  # /dev/videoN
    name: str  # sysfs name (the USB product string for UVC)
    index: int  # 0 for the capture node of a UVC function (1 is its metadata node)
    serial: str | None = None
    model: str | None = None  # udev ID_MODEL
    vendor_id: str | None = None
    product_id: str | None = None
    by_id: list[str] = field(default_factory=list)  # /dev/v4l/by-id links


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _udev_props(udev_db: Path, dev_numbers: str | None) -> dict[str, str]:
    if not dev_numbers:
        return {}
    text = _read(udev_db / f"c{dev_numbers}")
    props = {}
    for line in (text or "").splitlines():
        if line.startswith("E:") and "=" in line:
            k, v = line[2:].split("=", 1)
            props[k] = v
    return props


def _usb_attr(start: Path, attr: str) -> str | None:
    """Walk up from a video node's device to the USB device directory that has ``attr``."""
    p = start
    for _ in range(6):
        v = _read(p / attr)
        if v is not None:
            return v
        if p.parent == p:
            break
        p = p.parent
    return None


def list_video_devices(sysfs: str | os.PathLike = "/sys/class/video4linux", dev: str | os.PathLike = "/dev",
                       udev_db: str | os.PathLike = "/run/udev/data") -> list[VideoDevice]:
    """Every V4L2 node with its name, serial and by-id links (empty in a container without cameras)."""
    sysfs, dev, udev_db = Path(sysfs), Path(dev), Path(udev_db)
    links: dict[str, list[str]] = {}
    for link in glob.glob(str(dev / "v4l" / "by-id" / "*")):
        links.setdefault(os.path.realpath(link), []).append(link)
    out = []
    for entry in sorted(sysfs.glob("video*"), key=lambda p: (len(p.name), p.name)):
        name = _read(entry / "name") or ""
        idx = _read(entry / "index")
        props = _udev_props(udev_db, _read(entry / "dev"))
        usb = Path(os.path.realpath(entry / "device"))
        node = str(dev / entry.name)
        out.append(VideoDevice(
            devnode=node, name=name, index=int(idx) if idx and idx.isdigit() else 0,
            serial=props.get("ID_SERIAL_SHORT") or _usb_attr(usb, "serial"),
            model=props.get("ID_MODEL") or _usb_attr(usb, "product"),
            vendor_id=props.get("ID_VENDOR_ID") or _usb_attr(usb, "idVendor"),
            product_id=props.get("ID_MODEL_ID") or _usb_attr(usb, "idProduct"),
            by_id=sorted(links.get(os.path.realpath(node), []))))
    return out


def find_tactile(kind: str, serial: str | None = None, **roots) -> list[VideoDevice]:
    """Capture nodes of tactile sensors of ``kind`` (by name/model), optionally with ``serial``."""
    names = KINDS[kind][0]
    found = []
    for d in list_video_devices(**roots):
        text = " ".join(filter(None, [d.name, d.model] + d.by_id))
        if d.index != 0 or not any(n.lower() in text.lower() for n in names):
            continue
        if serial is not None and serial != d.serial and not any(serial in link for link in d.by_id):
            continue
        found.append(d)
    return found


@register_config("sensor", "tactile")
@dataclass
class TactileConfig(OpenCVCameraConfig):
    kind: str = "gelsight_mini"  # gelsight_mini | digit | generic
    serial: str | None = None  # find the device by serial (None: the only one of this kind)
    source: int | str | None = None  # explicit device/file/URL instead of discovery
    border_fraction: float | None = None  # crop per side (None: the kind's SDK default)
    output_size: tuple[int, int] | None = None  # (width, height) after crop (None: the kind's default)
    reference_frames: int = 5  # frames averaged into the no-contact reference at open
    output: str = "image"  # image | diff | both (both: also observation.tactile.<name>_diff)
    diff_gain: float = 2.0  # difference image = clip(gain * (frame - reference) + 128)
    sysfs_root: str = "/sys/class/video4linux"  # discovery roots (tests point them at a fake tree)
    dev_root: str = "/dev"
    udev_db: str = "/run/udev/data"

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise SensorConfigError(f"tactile {self.name!r}: kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        if self.output not in ("image", "diff", "both"):
            raise SensorConfigError(f"tactile {self.name!r}: output must be image, diff or both, got {self.output!r}")
        if self.border_fraction is not None and not 0 <= self.border_fraction < 0.5:
            raise SensorConfigError(f"tactile {self.name!r}: border_fraction must be in [0, 0.5)")
        if self.reference_frames < 1:
            raise SensorConfigError(f"tactile {self.name!r}: reference_frames must be >= 1")
        super().validate()


def crop_and_resize(img: np.ndarray, border_fraction: float, size: tuple[int, int] | None) -> np.ndarray:
    """Cut ``border_fraction`` of each dimension from every side, then resize to ``size`` (w, h)."""
    import cv2
    by, bx = int(img.shape[0] * border_fraction), int(img.shape[1] * border_fraction)
    out = img[by:img.shape[0] - by, bx:img.shape[1] - bx]
    if size is not None and (out.shape[1], out.shape[0]) != tuple(size):
        out = cv2.resize(out, tuple(size))
    return np.ascontiguousarray(out)


def diff_image(frame: np.ndarray, reference: np.ndarray, gain: float = 2.0) -> np.ndarray:
    """uint8 difference image, 128 where the gel is untouched."""
    d = gain * (frame.astype(np.float32) - reference.astype(np.float32)) + 128.0
    return np.clip(d, 0, 255).astype(np.uint8)


class TactileSensor(OpenCVCamera):
    """``observation.tactile.<name>``: uint8 (H, W, 3) RGB gel image, or its difference image."""

    config: TactileConfig

    def __init__(self, config: TactileConfig | None = None, **kw):
        config = config or TactileConfig(**kw)
        names, (w, h, fps), border, size, transpose = KINDS[config.kind]
        self.device: VideoDevice | None = None
        if config.source is None:
            config.source = self._discover(config)
        # a device gets the kind's native mode unless the config says otherwise
        if str(config.source).startswith("/dev/") or isinstance(config.source, int):
            config.width = config.width or w
            config.height = config.height or h
            config.fps = config.fps or fps
        super().__init__(config)
        self.border = border if config.border_fraction is None else config.border_fraction
        self.size = config.output_size or size
        self.transpose = transpose
        self.reference: np.ndarray | None = None

    @staticmethod
    def _discover(c: TactileConfig) -> str:
        roots = dict(sysfs=c.sysfs_root, dev=c.dev_root, udev_db=c.udev_db)
        found = find_tactile(c.kind, c.serial, **roots)
        what = f"{c.kind} tactile sensor" + (f" with serial {c.serial}" if c.serial else "")
        if not found:
            present = [f"{d.devnode} ({d.name}, serial {d.serial})" for d in list_video_devices(**roots)]
            raise DeviceNotFoundError(f"tactile {c.name!r}: no {what} found "
                                      f"(video devices: {', '.join(present) or 'none'})")
        if len(found) > 1:
            raise SensorConfigError(f"tactile {c.name!r}: {len(found)} {c.kind} sensors found "
                                    f"(serials {[d.serial for d in found]}); set serial")
        log.info("tactile %r: %s is %s (serial %s)", c.name, found[0].devnode, found[0].name, found[0].serial)
        return found[0].devnode

    @property
    def key(self) -> str:
        return K.tactile_key(self.name)

    @property
    def diff_key(self) -> str:
        return K.tactile_key(self.name + "_diff")

    @property
    def features(self) -> Spec:
        h, w = self._out_hw()
        keys = {"image": [self.key], "diff": [self.key], "both": [self.key, self.diff_key]}[self.config.output]
        return Spec.of([Feature(k, (h, w, 3), "uint8") for k in keys])

    def _out_hw(self):
        if self._size is not None:
            return self._size
        if self.size is not None:
            return self.size[1], self.size[0]
        c = self.config
        if c.width is None or c.height is None:
            return None, None
        h, w = (c.width, c.height) if self.transpose else (c.height, c.width)
        return h - 2 * int(h * self.border), w - 2 * int(w * self.border)

    def open(self) -> "TactileSensor":
        self.reference = None
        super().open()
        try:
            self.capture_reference()
        except SensorError:
            self.close()
            raise
        return self

    def capture_reference(self, n: int | None = None, timeout: float = 5.0) -> np.ndarray:
        """Average the next ``n`` frames into the no-contact reference (call with nothing touching the gel)."""
        n = n or self.config.reference_frames
        frames, seq = [], -1
        last = self._ring.latest()
        if last is not None:
            frames.append(last.data["_rgb"])
            seq = last.seq
        while len(frames) < n:
            s = self._ring.wait_newer(seq, timeout)
            if s is None:
                raise SensorError(f"tactile {self.name!r}: no frames for the reference image ({self._why()})")
            frames.append(s.data["_rgb"])
            seq = s.seq
        self.reference = np.mean(frames, axis=0).astype(np.float32)
        return self.reference

    def _process(self, frame_bgr: np.ndarray) -> dict[str, np.ndarray]:
        import cv2
        if self.transpose:  # digit-interface: transpose, then flip around the x axis
            frame_bgr = cv2.flip(cv2.transpose(frame_bgr), 0)
        img = crop_and_resize(self._rgb(frame_bgr), self.border, self.size)
        data = {"_rgb": img}
        if self.config.output in ("image", "both"):
            data[self.key] = img
        if self.config.output in ("diff", "both"):
            ref = self.reference if self.reference is not None else img
            data[self.diff_key if self.config.output == "both" else self.key] = \
                diff_image(img, ref, self.config.diff_gain)
        return data

    def read_latest(self, max_age=None):
        return _public(super().read_latest(max_age))

    def at(self, t):
        return _public(super().at(t))

    def wait(self, timeout: float = 1.0):
        return _public(super().wait(timeout))


def _public(s):
    """Hide the internal raw image (kept for the reference) from callers."""
    if s is None:
        return None
    from sensors.base import Sample
    return Sample(t=s.t, data={k: v for k, v in s.data.items() if not k.startswith("_")}, seq=s.seq,
                  t_device=s.t_device)
