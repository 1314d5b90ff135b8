"""A virtual microphone: a private PulseAudio daemon whose null sink's monitor is the capture device.

No kernel modules (no snd-aloop) are needed, and nothing shared is touched: the daemon gets its own
XDG_RUNTIME_DIR and HOME, clients find it through PULSE_SERVER, and autospawn is off. A 10 ms silent
keep-alive stream plays into the sink, because an idle null sink renders its monitor in ~2 s bursts
(specs/sensors_feasibility.md §3, §6). Other processes (sox, espeak-ng, paplay) play into the sink and
PortAudio reads the monitor through ALSA's ``pulse`` device (libasound2-plugins).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TOOLS = {"pulseaudio": "pulseaudio", "pactl": "pulseaudio-utils", "pacat": "pulseaudio-utils"}
ALSA_PULSE_CONF = "/usr/share/alsa/alsa.conf.d/pulse.conf"


def missing_audio_tools(players: tuple[str, ...] = ("sox",)) -> list[str]:
    """Debian packages whose tools are absent (empty: a virtual microphone can run here)."""
    missing = {pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None}
    for p in players:
        if shutil.which(p) is None:
            missing.add(p)
    if not os.path.exists(ALSA_PULSE_CONF):
        missing.add("libasound2-plugins")
    return sorted(missing)


class PulseAudioVirtualMic:
    """Start/stop the private daemon; ``apply()`` points this process's PortAudio at it.

    Use as a context manager; ``env`` is the environment for player subprocesses.
    """

    def __init__(self, rate: int = 16000, channels: int = 1, root: str | os.PathLike | None = None,
                 sink: str = "vsink"):
        self.rate, self.channels, self.sink = rate, channels, sink
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="pa-virtual-"))
        self.daemon: subprocess.Popen | None = None
        self.keepalive: subprocess.Popen | None = None
        self._saved_env: dict[str, str | None] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "run" / "native"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env_vars)
        return env

    @property
    def env_vars(self) -> dict[str, str]:
        return {"XDG_RUNTIME_DIR": str(self.root / "run"), "HOME": str(self.root / "home"),
                "PULSE_SERVER": f"unix:{self.socket}", "PULSE_SINK": self.sink,
                "PULSE_CLIENTCONFIG": str(self.root / "client.conf")}

    def start(self, timeout: float = 10.0) -> "PulseAudioVirtualMic":
        missing = missing_audio_tools(players=())
        if missing:
            raise RuntimeError(f"virtual microphone needs Debian packages: {' '.join(missing)}")
        (self.root / "run").mkdir(parents=True, exist_ok=True)
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "run", 0o700)
        (self.root / "client.conf").write_text("autospawn = no\n")
        (self.root / "ci.pa").write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-null-sink sink_name={self.sink} rate={self.rate} channels={self.channels}\n"
            f"set-default-sink {self.sink}\n"
            f"set-default-source {self.sink}.monitor\n")
        log_file = self.root / "pulse.log"
        self.daemon = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(self.root / "ci.pa"), "--daemonize=no", "--exit-idle-time=-1",
             "--disallow-exit", f"--log-target=file:{log_file}"],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            ok = subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode == 0
            if ok:
                break
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                text = log_file.read_text()[-2000:] if log_file.exists() else ""
                self.stop()
                raise RuntimeError(f"PulseAudio did not start: {text}")
            time.sleep(0.05)
        # keep-alive: without a playing stream the idle null sink renders its monitor in ~2 s bursts
        self.keepalive = subprocess.Popen(
            ["pacat", "--playback", f"--device={self.sink}", f"--rate={self.rate}", f"--channels={self.channels}",
             "--format=s16le", "--latency-msec=10"],
            env=self.env, stdin=open("/dev/zero", "rb"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while b"pacat" not in subprocess.run(["pactl", "list", "sink-inputs"], env=self.env,
                                              capture_output=True).stdout.lower():
            if self.keepalive.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("PulseAudio keep-alive stream (pacat) did not connect")
            time.sleep(0.02)
        # the idle sink queued a ~2 s block before the keep-alive asked for 10 ms; let it drain, or the
        # first capture stream waits for it
        while self.sink_latency() > 0.05:
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("PulseAudio null sink latency did not drop below 50 ms")
            time.sleep(0.05)
        return self

    def sink_latency(self) -> float:
        """The null sink's current latency in seconds (from ``pactl list sinks``)."""
        out = subprocess.run(["pactl", "list", "sinks"], env=self.env, capture_output=True, text=True).stdout
        m = re.search(r"Latency: (\d+) usec", out)
        return int(m.group(1)) / 1e6 if m else float("inf")

    def apply(self) -> None:
        """Point this process at the daemon (env vars) and make PortAudio re-enumerate devices."""
        from sensors.microphone import refresh_portaudio
        if self._saved_env is None:
            self._saved_env = {k: os.environ.get(k) for k in self.env_vars}
        os.environ.update(self.env_vars)
        refresh_portaudio()

    def restore(self) -> None:
        if self._saved_env is None:
            return
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env = None

    def kill_daemon(self) -> None:
        """Kill the sound server (a fault test: the capture device dies mid-stream)."""
        for p in (self.keepalive, self.daemon):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(5)
        self.keepalive = self.daemon = None

    def stop(self) -> None:
        self.kill_daemon()
        self.restore()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PulseAudioVirtualMic":
        self.start()
        self.apply()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class SoxFeeder:
    """A sox process playing raw 16-bit audio from our pipe into the virtual sink.

    Between sounds nothing is written, so the player idles (the keep-alive stream keeps the sink
    running) and a sound written now starts after the player's small start-up buffer: ``play()``
    returns the monotonic time the samples entered the pipe, the "known time" the tests compare
    against. (Feeding continuous silence instead lets a backlog grow, because the sink's clock runs
    ~0.2 % slower than CLOCK_MONOTONIC.)
    """

    def __init__(self, mic: PulseAudioVirtualMic, rate: int | None = None):
        self.mic, self.rate = mic, rate or mic.rate
        self.proc: subprocess.Popen | None = None

    def start(self) -> "SoxFeeder":
        if shutil.which("sox") is None:
            raise RuntimeError("sox is not installed (apt-get install sox)")
        self.proc = subprocess.Popen(
            ["sox", "-q", "--buffer", "320", "-t", "raw", "-r", str(self.rate), "-e", "signed", "-b", "16",
             "-c", "1", "-", "-t", "alsa", "pulse"],
            env=self.mic.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def play(self, samples: np.ndarray) -> float:
        """Write float samples in [-1, 1]; returns the monotonic time they were written."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("sox feeder is not running")
        pcm = np.clip(np.asarray(samples, np.float32) * 32767, -32768, 32767).astype(np.int16).tobytes()
        t = time.monotonic()
        self.proc.stdin.write(pcm)
        self.proc.stdin.flush()
        return t

    def tone(self, freq: float = 1000.0, seconds: float = 0.1, amp: float = 0.5) -> float:
        n = int(seconds * self.rate)
        return self.play(amp * np.sin(2 * np.pi * freq * np.arange(n) / self.rate))

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.kill()
        self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> "SoxFeeder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def tone_onset(x: np.ndarray, rate: int, freq: float = 1000.0, frame: float = 0.005, thresh: float = 0.1) -> int | None:
    """Index of the first sample where a ``freq`` tone starts (RMS of short frames crosses ``thresh``)."""
    x = np.asarray(x, np.float64).reshape(-1)
    n = max(1, int(frame * rate))
    m = len(x) // n
    if m == 0:
        return None
    rms = np.sqrt((x[:m * n].reshape(m, n) ** 2).mean(1))
    hits = np.nonzero(rms > thresh)[0]
    if not len(hits):
        return None
    i = hits[0] * n  # refine to the first sample above a fraction of the amplitude within that frame
    seg = np.abs(x[max(0, i - n):i + n])
    above = np.nonzero(seg > thresh)[0]
    return max(0, i - n) + int(above[0]) if len(above) else i
