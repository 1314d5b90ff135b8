"""Virtual devices for tests, benchmarks and demos: real library code paths, no hardware.

- video files (MJPG .avi, what UVC webcams and tactile sensors send) with the frame index drawn in;
- a loopback MJPEG-over-HTTP server (``python -m sensors.virtual mjpeg``), the same FFmpeg demux path
  as an IP camera;
- a RealSense recording written by ``rs.software_device`` + ``rs.recorder`` (no camera needed);
- a private PulseAudio daemon with a null sink whose monitor is the capture device (see
  sensors.virtual_audio).

Recipes measured in specs/sensors_feasibility.md §6.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BITS = 16


# --- frames with their index drawn in ------------------------------------------------------------------
def _cells(h: int, w: int) -> tuple[int, int]:
    side = min(h, w) // 2
    return side // 4, side  # cell size, side of the 4x4 code block


def draw_index(img: np.ndarray, index: int) -> np.ndarray:
    """Draw ``index`` (16 bits) as a 4x4 grid of black/white cells in the top-left corner (in place)."""
    cell, _ = _cells(*img.shape[:2])
    for b in range(BITS):
        r, c = divmod(b, 4)
        img[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = 255 if (index >> b) & 1 else 0
    return img


def read_index(img: np.ndarray) -> int:
    """Decode the index drawn by draw_index (robust to JPEG noise and RGB/BGR order)."""
    cell, _ = _cells(*img.shape[:2])
    m = max(1, cell // 4)
    v = 0
    for b in range(BITS):
        r, c = divmod(b, 4)
        patch = img[r * cell + m:(r + 1) * cell - m, c * cell + m:(c + 1) * cell - m]
        if patch.mean() > 127:
            v |= 1 << b
    return v


def make_frame(index: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A BGR frame: a colour gradient, a moving disc, and the index code."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (x * 255 // max(1, width - 1)).astype(np.uint8)
    img[..., 1] = (y * 255 // max(1, height - 1)).astype(np.uint8)
    img[..., 2] = (40 * seed + 3 * index) % 256
    cx = int((0.5 + 0.35 * np.cos(index / 8.0)) * width)
    cy = int((0.6 + 0.25 * np.sin(index / 8.0)) * height)
    rr = max(2, min(width, height) // 10)
    img[(x - cx) ** 2 + (y - cy) ** 2 < rr * rr] = (30, 200, 240)
    return draw_index(img, index)


def write_test_video(path: str | os.PathLike, n_frames: int = 90, fps: float = 30.0, width: int = 320,
                     height: int = 240, fourcc: str = "MJPG", seed: int = 0, frames=None) -> Path:
    """Write an MJPG .avi whose frame i shows index i (or the given BGR ``frames``)."""
    import cv2
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), (width, height))
    if not w.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write {path} with fourcc {fourcc!r}")
    try:
        it = frames if frames is not None else (make_frame(i, width, height, seed) for i in range(n_frames))
        for f in it:
            w.write(f)
    finally:
        w.release()
    return path


# --- loopback MJPEG-over-HTTP server ---------------------------------------------------------------
def serve_mjpeg(port: int = 0, fps: float = 30.0, width: int = 320, height: int = 240, n_distinct: int = 300,
                host: str = "127.0.0.1", announce=print) -> None:
    """Serve ``multipart/x-mixed-replace`` JPEG frames on ``http://host:port/stream.mjpg`` at ``fps``."""
    import cv2
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    jpegs = [cv2.imencode(".jpg", make_frame(i, width, height), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
             for i in range(n_distinct)]
    boundary = b"frame"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def do_GET(self):
            if self.path.split("?")[0] not in ("/", "/stream.mjpg"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            t0, k = time.monotonic(), 0
            try:
                while True:
                    due = t0 + k / fps
                    left = due - time.monotonic()
                    if left > 0:
                        time.sleep(left)
                    elif left < -1.0 / fps:  # fell behind: restart the schedule instead of bursting
                        t0, k = time.monotonic(), 0
                    jpg = jpegs[self.server.counter % n_distinct]  # indices continue across clients
                    self.server.counter += 1
                    self.wfile.write(b"--" + boundary + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(jpg)).encode() + b"\r\n\r\n" + jpg + b"\r\n")
                    self.wfile.flush()
                    k += 1
            except (BrokenPipeError, ConnectionResetError):
                return

    srv = ThreadingHTTPServer((host, port), Handler)
    srv.daemon_threads = True
    srv.counter = 0
    announce(f"PORT {srv.server_address[1]}", flush=True)
    srv.serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MJPEGServer:
    """The MJPEG server in a child process (so a test can kill it mid-stream and start it again)."""

    def __init__(self, fps: float = 30.0, width: int = 320, height: int = 240, port: int = 0):
        self.fps, self.width, self.height, self.port = fps, width, height, port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self, timeout: float = 20.0) -> "MJPEGServer":
        cmd = [sys.executable, "-m", "sensors.virtual", "mjpeg", "--port", str(self.port), "--fps", str(self.fps),
               "--width", str(self.width), "--height", str(self.height)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if not line.startswith("PORT ") or time.monotonic() > deadline:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"MJPEG server did not start: {line!r} {err}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            for s in (self.proc.stdout, self.proc.stderr):
                s.close()
            self.proc = None

    def __enter__(self) -> "MJPEGServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- RealSense recording without a camera ------------------------------------------------------------
def _rs_intrinsics(rs, w: int, h: int):
    i = rs.intrinsics()
    i.width, i.height = w, h
    i.fx = i.fy = 0.9 * w
    i.ppx, i.ppy = (w - 1) / 2.0, (h - 1) / 2.0
    i.model = rs.distortion.brown_conrady
    i.coeffs = [0.0] * 5
    return i


def realsense_recording_ext() -> str:
    """pyrealsense2 >= 2.59 records only ROS 2 .db3; older versions record ROS 1 .bag."""
    import pyrealsense2 as rs
    major, minor = (int(x) for x in rs.__version__.split(".")[:2])
    return ".db3" if (major, minor) >= (2, 59) else ".bag"


def realsense_depth_mm(i: int, w: int, h: int) -> np.ndarray:
    """Depth of synthetic frame i in mm: a left-right ramp 500 + 10 i ... + 200 mm (all pixels valid)."""
    x = np.arange(w, dtype=np.int64)[None, :]
    return np.broadcast_to(500 + 10 * i + (200 * x) // max(1, w - 1), (h, w)).astype(np.uint16)


def write_realsense_recording(path: str | os.PathLike, width: int = 424, height: int = 240, fps: int = 30,
                              n_frames: int = 60, pace: bool = True, depth_fn=realsense_depth_mm) -> Path:
    """Record synthetic colour (index drawn in) + depth (``depth_fn(i, w, h)`` mm) with rs.software_device.

    Real-time playback reproduces the recorder's arrival times, so ``pace=True`` writes at ``fps``.
    Two rules from librealsense's own tests: every pixel buffer stays alive until the recorder is
    closed, and a software_video_frame object is never reused (reuse corrupts the heap).
    """
    import pyrealsense2 as rs
    path = Path(path)
    if path.suffix != realsense_recording_ext():
        raise ValueError(f"pyrealsense2 {rs.__version__} records {realsense_recording_ext()}, not {path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    dev = rs.software_device()
    ds, cs = dev.add_sensor("Depth"), dev.add_sensor("Color")
    ds.add_read_only_option(rs.option.depth_units, 0.001)
    profs = []
    for s, st, fmt, bpp, uid in ((ds, rs.stream.depth, rs.format.z16, 2, 0),
                                 (cs, rs.stream.color, rs.format.rgb8, 3, 1)):
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = st, 0, uid
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = width, height, fps, bpp, fmt
        vs.intrinsics = _rs_intrinsics(rs, width, height)
        profs.append(s.add_video_stream(vs).as_video_stream_profile())
    ext = rs.extrinsics()
    ext.rotation = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    ext.translation = [0.0, 0.0, 0.0]  # co-located: alignment keeps the injected depth values
    profs[0].register_extrinsics_to(profs[1], ext)
    dev.create_matcher(rs.matchers.dlr_c)
    rec = rs.recorder(str(path), dev)
    q = rs.frame_queue(2 * n_frames + 10, keep_frames=True)
    ds.open(profs[0])
    cs.open(profs[1])
    ds.start(q)
    cs.start(q)
    keep, t0 = [], time.monotonic()
    for i in range(n_frames):
        if pace:
            left = t0 + i / fps - time.monotonic()
            if left > 0:
                time.sleep(left)
        depth = np.ascontiguousarray(depth_fn(i, width, height), dtype=np.uint16)
        color = np.ascontiguousarray(make_frame(i, width, height)[..., ::-1])  # BGR -> RGB
        keep += [depth, color]
        for s, p, arr, bpp in ((ds, profs[0], depth, 2), (cs, profs[1], color, 3)):
            f = rs.software_video_frame()
            f.pixels, f.bpp, f.stride = arr, bpp, width * bpp
            f.timestamp, f.domain = 1000 + i * 1000.0 / fps, rs.timestamp_domain.hardware_clock
            f.frame_number, f.profile = i, p
            s.on_video_frame(f)
    ds.stop()
    cs.stop()
    ds.close()
    cs.close()
    rec.pause()
    del rec
    del keep
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sensors.virtual", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mjpeg", help="serve a loopback MJPEG stream on 127.0.0.1")
    m.add_argument("--port", type=int, default=0)
    m.add_argument("--fps", type=float, default=30.0)
    m.add_argument("--width", type=int, default=320)
    m.add_argument("--height", type=int, default=240)
    v = sub.add_parser("video", help="write an MJPG .avi with the frame index drawn in")
    v.add_argument("path")
    v.add_argument("--frames", type=int, default=90)
    v.add_argument("--fps", type=float, default=30.0)
    v.add_argument("--width", type=int, default=320)
    v.add_argument("--height", type=int, default=240)
    r = sub.add_parser("realsense", help="write a synthetic RealSense recording (.db3 on pyrealsense2>=2.59)")
    r.add_argument("path")
    r.add_argument("--frames", type=int, default=60)
    r.add_argument("--fps", type=int, default=30)
    a = p.parse_args(argv)
    if a.cmd == "mjpeg":
        try:
            serve_mjpeg(a.port, a.fps, a.width, a.height)
        except KeyboardInterrupt:
            pass
    elif a.cmd == "video":
        print(write_test_video(a.path, a.frames, a.fps, a.width, a.height))
    else:
        print(write_realsense_recording(a.path, n_frames=a.frames, fps=a.fps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
