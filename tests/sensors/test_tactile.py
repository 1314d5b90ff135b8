"""Tactile sensors through the video path: found by name/serial in a sysfs/udev tree, read as MJPG video."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import DeviceNotFoundError
from sensors.tactile import TactileSensor, crop_and_resize, find_tactile, list_video_devices
from sensors.virtual import write_test_video

pytestmark = pytest.mark.sensors
KEY = "observation.tactile.gel"


def _usb(root: Path, port: str, **attrs) -> Path:
    d = root / "sys" / "devices" / "usb1" / port
    (d / f"{port}:1.0").mkdir(parents=True)
    for k, v in attrs.items():
        (d / k).write_text(v + "\n")
    return d / f"{port}:1.0"


def _node(root: Path, n: int, name: str, usb_iface: Path, target: Path, index: int = 0) -> None:
    v = root / "sys" / "class" / "video4linux" / f"video{n}"
    v.mkdir(parents=True)
    (v / "name").write_text(name + "\n")
    (v / "index").write_text(f"{index}\n")
    (v / "dev").write_text(f"81:{n}\n")
    os.symlink(usb_iface, v / "device")
    (root / "dev").mkdir(exist_ok=True)
    os.symlink(target, root / "dev" / f"video{n}")  # the "device node" is the test video


@pytest.fixture
def fake_tree(tmp_path, media):
    """A sysfs/udev/dev tree like a machine with a webcam, a GelSight Mini and a DIGIT."""
    r = tmp_path
    _node(r, 0, "Integrated Camera: Integrated C", _usb(r, "1-1", serial="0001", product="Integrated Camera"),
          media["cam30"])
    _node(r, 2, "GelSight Mini R0B 2BNK-CE4Z: Ge",
          _usb(r, "1-2", serial="2BNK-CE4Z", product="GelSight Mini R0B 2BNK-CE4Z", idVendor="0c45"),
          media["gelsight"])
    _node(r, 3, "GelSight Mini R0B 2BNK-CE4Z: Ge", r / "sys" / "devices" / "usb1" / "1-2" / "1-2:1.0",
          media["gelsight"], index=1)  # the UVC metadata node: not a capture device
    _node(r, 4, "DIGIT: DIGIT", _usb(r, "1-3", product="DIGIT"), media["digit60"])
    (r / "run" / "udev" / "data").mkdir(parents=True)
    (r / "run" / "udev" / "data" / "c81:4").write_text(
        "E:ID_MODEL=DIGIT\nE:ID_SERIAL_SHORT=D20001\nE:ID_VENDOR_ID=2833\nE:ID_MODEL_ID=0209\n")
    return {"sysfs_root": str(r / "sys" / "class" / "video4linux"), "dev_root": str(r / "dev"),
            "udev_db": str(r / "run" / "udev" / "data")}


def _frames(path, cv2):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            return out
        out.append(f)


def _best_match(img: np.ndarray, candidates: list[np.ndarray]) -> float:
    return min(float(np.abs(img.astype(int) - c.astype(int)).mean()) for c in candidates)


def test_discovery_reads_names_serials_and_skips_metadata_nodes(fake_tree):
    roots = dict(sysfs=fake_tree["sysfs_root"], dev=fake_tree["dev_root"], udev_db=fake_tree["udev_db"])
    devs = {Path(d.devnode).name: d for d in list_video_devices(**roots)}
    assert set(devs) == {"video0", "video2", "video3", "video4"}
    assert devs["video2"].serial == "2BNK-CE4Z" and devs["video2"].vendor_id == "0c45"
    assert devs["video4"].serial == "D20001" and devs["video4"].model == "DIGIT"
    assert [Path(d.devnode).name for d in find_tactile("gelsight_mini", **roots)] == ["video2"]
    assert [Path(d.devnode).name for d in find_tactile("digit", "D20001", **roots)] == ["video4"]
    assert find_tactile("digit", "D99999", **roots) == []


def test_gelsight_mini_by_serial_is_cropped_and_resized_like_the_sdk(fake_tree, media, cv2):
    with TactileSensor(name="gel", kind="gelsight_mini", serial="2BNK-CE4Z", **fake_tree) as gel:
        assert gel.features[KEY].shape == (240, 320, 3)
        s = gel.read_latest()
    img = s.data[KEY]
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    # gsrobotics: cut 15 % of each dimension from every side of the 640x480 frame, resize to 320x240, RGB
    want = [crop_and_resize(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), 0.15, (320, 240)) for f in _frames(media["gelsight"], cv2)]
    assert _best_match(img, want) < 1.0


def test_digit_by_serial_is_transposed_like_digit_interface(fake_tree, media, cv2):
    with TactileSensor(name="gel", kind="digit", serial="D20001", **fake_tree) as digit:
        s = digit.read_latest()
        time.sleep(0.5)
        rate = digit.stats()["fps"]
    img = s.data[KEY]
    assert img.shape == (320, 240, 3)  # QVGA 320x240 comes back 320 high, 240 wide
    want = [cv2.cvtColor(cv2.flip(cv2.transpose(f), 0), cv2.COLOR_BGR2RGB) for f in _frames(media["digit60"], cv2)]
    assert _best_match(img, want) < 1.0
    assert abs(rate - 60) / 60 < 0.05, f"DIGIT file replayed at {rate:.1f} fps, want its 60"


def test_missing_tactile_sensor_fails_fast_naming_it(fake_tree):
    t = time.monotonic()
    with pytest.raises(DeviceNotFoundError) as e:
        TactileSensor(name="left", kind="gelsight_mini", serial="ZZZZ-0000", **fake_tree).open()
    assert time.monotonic() - t < 1.0
    msg = str(e.value)
    assert "ZZZZ-0000" in msg and "'left'" in msg and "2BNK-CE4Z" in msg  # lists what is there
    with pytest.raises(DeviceNotFoundError, match="digit"):  # the real machine: no DIGIT plugged in
        TactileSensor(name="right", kind="digit", serial="D20001").open()


def test_difference_image_against_the_no_contact_reference(tmp_path, cv2):
    h, w = 240, 320
    y, x = np.mgrid[0:h, 0:w]
    gel = np.stack([(x * 255 // w), (y * 255 // h), np.full_like(x, 120)], -1).astype(np.uint8)
    press = gel.copy()
    blob = (x - 200) ** 2 + (y - 120) ** 2 < 40 ** 2
    press[blob] = (press[blob] * 0.3).astype(np.uint8)  # the gel darkens where it is pressed
    frames = [gel] * 20 + [press] * 20
    p = write_test_video(tmp_path / "press.avi", fps=40, width=w, height=h, frames=frames)
    with TactileSensor(name="gel", kind="generic", source=str(p), output="both", reference_frames=5,
                       loop=False, buffer_size=64) as t:
        assert set(t.features.keys()) == {KEY, KEY + "_diff"}
        time.sleep(1.3)
        ring = [s.data for s in t._ring._items]
    pressed = [d for d in ring if d[KEY][120, 200].mean() < 60]
    untouched = [d for d in ring if d[KEY][120, 200].mean() > 90]
    assert len(pressed) > 10 and len(untouched) > 5
    for d in untouched:
        assert np.abs(d[KEY + "_diff"].astype(int) - 128).mean() < 4
    for d in pressed:
        dev = np.abs(d[KEY + "_diff"].astype(int) - 128).mean(-1)
        assert dev[blob].mean() > 40 and dev[~blob].mean() < 4
