"""OpenCV camera through the real cv2.VideoCapture: MJPG files written here and a loopback MJPEG stream."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from sensors.errors import DeviceNotFoundError, SensorConfigError, StaleError
from sensors.opencv_camera import OpenCVCamera
from sensors.virtual import MJPEGServer, read_index, write_test_video

pytestmark = pytest.mark.sensors
KEY = "observation.images.cam"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _rate(samples) -> float:
    return (len(samples) - 1) / (samples[-1].t - samples[0].t)


def _collect(cam, seconds: float):
    out, last = [], -1
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s = cam.wait(1.0)
        if s.seq != last:
            out.append(s)
            last = s.seq
    return out


def test_file_is_replayed_at_its_fps_in_order_and_loops(media):
    with OpenCVCamera(name="cam", source=str(media["cam30"]), buffer_size=128) as cam:
        assert cam.features[KEY].shape == (240, 320, 3)
        time.sleep(3.3)  # > one pass of the 90-frame file: it must loop
        ring = list(cam._ring._items)
    rate = _rate(ring)
    assert abs(rate - 30.0) / 30.0 < 0.05, f"file paced at {rate:.2f} fps, want 30 +- 5 %"
    idx = [read_index(s.data[KEY]) for s in ring]
    assert idx == [s.seq % 90 for s in ring], "decoded frame index must follow seq (mod the 90-frame loop)"
    assert max(s.seq for s in ring) >= 90, "the file did not loop"
    assert all(s.data[KEY].dtype == np.uint8 and s.data[KEY].shape == (240, 320, 3) for s in ring)
    assert all(np.diff([s.t for s in ring]) > 0)
    # RGB order: the disc drawn as BGR (30, 200, 240) must come back as RGB (240, 200, 30)
    checked = 0
    for s, i in zip(ring, idx):
        cx, cy = int((0.5 + 0.35 * np.cos(i / 8.0)) * 320), int((0.6 + 0.25 * np.sin(i / 8.0)) * 240)
        if cx >= 130 or cy >= 130:  # not under the index code
            assert np.abs(s.data[KEY][cy, cx].astype(int) - (240, 200, 30)).max() < 25
            checked += 1
    assert checked > 10


def test_at_returns_newest_frame_at_or_before_t(media):
    with OpenCVCamera(name="cam", source=str(media["cam30"])) as cam:
        time.sleep(0.5)
        ring = list(cam._ring._items)
        for q in np.linspace(ring[0].t - 0.01, ring[-1].t, 40):  # past times: later frames cannot change them
            want = [s for s in ring if s.t <= q]
            got = cam.at(q)
            assert (got is None) if not want else (got is not None and got.seq == want[-1].seq)
        assert cam.at(ring[0].t - 100) is None
        latest = cam.read_latest(max_age=0.5)
        assert latest.seq >= ring[-1].seq and time.monotonic() - latest.t < 0.5


def test_file_without_loop_ends_and_is_reported_stale(tmp_path, cv2):
    p = write_test_video(tmp_path / "short.avi", n_frames=6, fps=30, width=64, height=48)
    with OpenCVCamera(name="cam", source=str(p), loop=False) as cam:
        time.sleep(0.6)
        with pytest.raises(StaleError, match=r"'cam'.*ended"):
            cam.read_latest(max_age=0.2)
        assert cam.stats()["samples"] == 6
        assert cam.reconnects == 0  # a file that ended is not a dead device


def test_loopback_mjpeg_stream_is_read_like_an_ip_camera():
    with MJPEGServer(fps=30, width=320, height=240) as srv:
        with OpenCVCamera(name="cam", source=srv.url, buffer_size=128) as cam:
            assert cam.kind == "stream"
            samples = _collect(cam, 2.0)
    rate = _rate(samples)
    assert abs(rate - 30.0) / 30.0 < 0.05, f"stream read at {rate:.2f} fps, want 30 +- 5 %"
    idx = np.array([read_index(s.data[KEY]) for s in samples])
    assert np.all(np.diff(idx) >= 1), "stream frames out of order"
    assert samples[0].data[KEY].shape == (240, 320, 3)


@pytest.mark.parametrize("source, named", [
    (0, "/dev/video0"),
    ("/dev/video7", "/dev/video7"),
    ("/nonexistent/cam.avi", "/nonexistent/cam.avi"),
    ("http://127.0.0.1:9/stream.mjpg", "127.0.0.1:9"),
])
def test_missing_device_fails_fast_naming_it(source, named):
    if isinstance(source, int) and os.path.exists("/dev/video0"):
        pytest.skip("a real /dev/video0 exists here")
    t = time.monotonic()
    with pytest.raises(DeviceNotFoundError) as e:
        OpenCVCamera(name="front", source=source, read_timeout=0.5).open()
    assert time.monotonic() - t < 1.0
    assert named in str(e.value) and "'front'" in str(e.value)


def test_setting_the_source_cannot_provide_is_a_clear_error(media):
    with pytest.raises(SensorConfigError, match=r"width=640"):
        OpenCVCamera(name="cam", source=str(media["cam30"]), width=640, height=240).open()


def test_rotation_and_resize_shape_the_output(media):
    with OpenCVCamera(name="cam", source=str(media["cam30"]), rotation=90, resize=(84, 96)) as cam:
        s = cam.read_latest()
        assert s.data[KEY].shape == (96, 84, 3)
        assert cam.features[KEY].shape == (96, 84, 3)


def test_dying_stream_is_stale_reconnects_and_memory_stays_bounded():
    srv = MJPEGServer(fps=30, width=160, height=120).start()
    cam = OpenCVCamera(name="cam", source=srv.url, buffer_size=16, reconnect_delay=0.02,
                       reconnect_max_delay=0.05, read_timeout=0.5)
    try:
        cam.open()
        time.sleep(0.7)  # fill the ring past its capacity
        assert len(cam._ring) == 16
        port = srv.port
        srv.stop()  # the source dies mid-stream
        t_kill = time.monotonic()
        rss0 = _rss_mb()
        time.sleep(1.5)
        with pytest.raises(StaleError, match=r"'cam'.*reconnect"):
            cam.read_latest(max_age=0.3)
        assert cam.state == "reconnecting" and cam.reconnects >= 5
        assert len(cam._ring) == 16  # bounded however long the outage lasts
        assert _rss_mb() - rss0 < 30, "memory grew while reconnecting"
        srv = MJPEGServer(fps=30, width=160, height=120, port=port).start()  # the source comes back
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (cam.state != "running" or
                                               time.monotonic() - cam._ring.latest().t > 0.1):
            time.sleep(0.02)
        s = cam.read_latest(max_age=0.2)
        assert s.t > t_kill and cam.state == "running"
    finally:
        cam.close()
        srv.stop()
