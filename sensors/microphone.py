"""Microphone via sounddevice/PortAudio: an input stream into a ring buffer, sample index <-> monotonic time
by a line fit over callback arrival times, and windows of audio ending at a given time.

Why not ``n / samplerate`` or PortAudio's ``inputBufferAdcTime`` (specs/sensors_feasibility.md §3):
- ``inputBufferAdcTime`` is in a different clock on each host API (monotonic, wall clock, JACK frames);
- the sample clock drifts against CLOCK_MONOTONIC (PulseAudio 16 kHz ran at 15994 Hz, PipeWire at
  15932 Hz), so a nominal rate is 0.4 % off after a few seconds.
Each callback adds an anchor (samples captured so far, time.monotonic() at the callback); the slope
of a least-squares line over the last ``fit_seconds`` of anchors is the measured sample rate, and the
line is shifted down to pass under every anchor, since scheduling can delay a callback but never make
it early. The line maps any time to a sample position and back.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from policystack import keys as K
from policystack.config import register_config
from policystack.spec import Feature, Spec
from sensors.base import Sample, Sensor, SensorConfig
from sensors.errors import DeviceNotFoundError, SensorConfigError, SensorError, StaleError

log = logging.getLogger(__name__)

_open_streams = 0  # PortAudio can only be re-initialised (to see new devices) when no stream is open
_stuck_streams = 0  # streams whose abort never returned; while any exist, Pa_Terminate would block too
_pa_lock = threading.Lock()


def import_sd():
    try:
        import sounddevice as sd
    except OSError as e:  # "PortAudio library not found"
        raise SensorError(f"sounddevice cannot load PortAudio: {e} (apt-get install libportaudio2)") from e
    return sd


def refresh_portaudio() -> bool:
    """Re-enumerate audio devices (a sound server started after import). False if streams are open."""
    sd = import_sd()
    with _pa_lock:
        if _open_streams:
            return False
        sd._terminate()
        sd._initialize()
        return True


def close_stream_bounded(stream, label: str, timeout: float) -> bool:
    """Abort and close a PortAudio stream on a helper thread; False if it did not finish in ``timeout`` s.

    Why: when the sound server dies under a stream, ``Pa_AbortStream`` on ALSA's pulse device can block
    forever (measured here in about 1 of 5 kills), and so would the watchdog or ``close()`` calling it.
    An abandoned stream stays counted as open, so PortAudio is not re-initialised under it, and
    sounddevice's exit handler is unregistered while one exists: its ``Pa_Terminate`` would hang exit.
    """
    sd = import_sd()
    done, late = threading.Event(), threading.Event()

    def reap() -> None:
        global _open_streams, _stuck_streams
        try:
            stream.abort()
            stream.close()
        except Exception as e:
            log.debug("%s: close failed: %s", label, e)
        with _pa_lock:
            _open_streams -= 1
            if late.is_set():
                _stuck_streams -= 1
                log.info("%s: the abandoned stream closed after all", label)
                if not _stuck_streams:
                    atexit.register(sd._exit_handler)
            done.set()

    threading.Thread(target=reap, name=f"{label}-close", daemon=True).start()
    if done.wait(timeout):
        return True
    global _stuck_streams
    with _pa_lock:
        if done.is_set():
            return True
        late.set()
        _stuck_streams += 1
        if _stuck_streams == 1:
            atexit.unregister(sd._exit_handler)
    log.warning("%s: closing the audio stream did not return within %.2f s (sound server gone?); "
                "abandoned it", label, timeout)
    return False


def list_inputs() -> list[dict]:
    """Audio input devices PortAudio sees: index, name, host API, channels, default rate."""
    try:
        sd = import_sd()
    except SensorError:
        return []
    apis = sd.query_hostapis()
    return [{"index": i, "name": d["name"], "hostapi": apis[d["hostapi"]]["name"],
             "channels": d["max_input_channels"], "default_samplerate": d["default_samplerate"]}
            for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


def _lower_slope(n: np.ndarray, t: np.ndarray, rounds: int = 2) -> float:
    """Slope of t over n fitted to the earliest arrivals: least squares, then refits on the anchors at
    or below the median residual, so callbacks delayed by a busy CPU do not tilt the line."""
    keep = np.ones(len(n), bool)
    b = a = 0.0
    for _ in range(rounds + 1):
        nk, tk = n[keep], t[keep]
        nm, tm = nk.mean(), tk.mean()
        b = float(((nk - nm) * (tk - tm)).sum() / ((nk - nm) ** 2).sum())
        a = tm - b * nm
        r = t - (a + b * n)
        new = r <= np.median(r[keep])
        if new.sum() < 8:
            break
        keep = new
    return b


def msbot_features(wave: np.ndarray, sample_rate: int, frontend=None):
    """MS-Bot's audio input: resample to the frontend's rate (16 kHz), then
    ``policies.common.audio.LogMelFrontend`` -> (channels, 6, 64, 48) for a 3 s window."""
    try:
        from policies.common.audio import LogMelFrontend, resample
    except ImportError as e:
        raise SensorError("log-mel features need policies/common/audio.py (LogMelFrontend)") from e
    frontend = frontend or LogMelFrontend(sample_rate=16000, window_s=wave.shape[-1] / sample_rate)
    if sample_rate != frontend.sample_rate:
        wave = resample(wave, sample_rate, frontend.sample_rate)
    return frontend(wave)


@register_config("sensor", "microphone")
@dataclass
class MicrophoneConfig(SensorConfig):
    device: int | str | None = None  # PortAudio index or name ("pulse", "default", part of a name); None: default
    sample_rate: int = 16000
    channels: int = 1
    window_seconds: float = 1.0  # length of observation.audio.<name> (the N most recent samples)
    buffer_seconds: float = 10.0  # ring buffer length; bounds memory
    blocksize: int = 0  # frames per callback (0: sample_rate // 50, i.e. 20 ms)
    latency: str = "low"  # PortAudio latency hint: "low", "high" or seconds as text
    fit_seconds: float = 5.0  # anchors used for the sample-index <-> time line fit
    stall_timeout: float = 0.5  # no callback for this long: the stream is dead, reopen it
    close_timeout: float = 0.5  # a stream whose abort takes longer is abandoned (see close_stream_bounded)
    input_delay: float | None = 0.0  # capture of a block's last sample -> its callback (s); None: PortAudio's
    # reported input latency (measured here: too large for PulseAudio, sound found 25 ms before it was played)

    def validate(self) -> None:
        super().validate()
        if self.sample_rate <= 0 or self.channels <= 0:
            raise SensorConfigError(f"microphone {self.name!r}: sample_rate and channels must be > 0")
        if not 0 < self.window_seconds <= self.buffer_seconds:
            raise SensorConfigError(f"microphone {self.name!r}: need 0 < window_seconds ({self.window_seconds}) "
                                    f"<= buffer_seconds ({self.buffer_seconds})")
        if min(self.fit_seconds, self.stall_timeout, self.close_timeout) <= 0:
            raise SensorConfigError(f"microphone {self.name!r}: fit_seconds, stall_timeout and close_timeout "
                                    f"must be > 0")


class Microphone(Sensor):
    """Audio windows ``observation.audio.<name>``: float32 (channels, N), N = window_seconds * sample_rate."""

    config: MicrophoneConfig

    def __init__(self, config: MicrophoneConfig | None = None, **kw):
        super().__init__(config or MicrophoneConfig(**kw))
        c = self.config
        self._cap = int(round(c.buffer_seconds * c.sample_rate))
        self._buf = np.zeros((self._cap, c.channels), np.float32)
        self._n = 0  # samples captured in total (ring write position = _n % _cap)
        self._anchors: deque[tuple[int, float]] = deque(maxlen=max(64, int(c.fit_seconds * 200)))
        self._lock = threading.Lock()
        self._fit: tuple[float, float] | None = None  # (a, b): t = a + b * n
        self._fit_n = -1
        self._stream = None
        self._gen = 0  # stream generation: a closed (or abandoned) stream's late callbacks are dropped
        self._last_cb = 0.0
        self._cb_count = 0
        self._seg_n = 0
        self._n_real = 0  # samples up to the last real callback (the silence padding an outage is not audio)
        self.overflows = 0
        self.device_name: str | None = None
        self.in_latency = 0.0

    # --- contract -------------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        return K.audio_key(self.name)

    @property
    def n_window(self) -> int:
        return int(round(self.config.window_seconds * self.config.sample_rate))

    @property
    def features(self) -> Spec:
        return Spec.of([Feature(self.key, (self.config.channels, self.n_window), "float32")])

    def open(self) -> "Microphone":
        if self._opened:
            return self
        with self._lock:  # a reopened microphone starts a fresh timeline
            self._n, self._fit, self._fit_n, self._seg_n, self._n_real = 0, None, -1, 0, 0
            self._anchors.clear()
            self._buf[:] = 0
        self._last_read_seq = -1
        self._start_stream()
        self._opened = True
        self.state = "running"
        deadline = time.monotonic() + self.config.open_timeout
        while self._n == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        if self._n == 0:
            self.close()
            raise SensorError(f"microphone {self.name!r} ({self.device_name}): stream started but no audio "
                              f"within {self.config.open_timeout:.1f} s")
        stop = threading.Event()
        self._stop = stop
        self._watchdog = threading.Thread(target=self._watch, args=(stop,), name=f"sensor-{self.name}", daemon=True)
        self._watchdog.start()
        return self

    def close(self) -> None:
        if not self._opened:
            return
        if getattr(self, "_stop", None) is not None:
            self._stop.set()
            self._watchdog.join(timeout=5.0)
        self._close_stream()
        self._opened = False
        self.state = "closed"

    def read_latest(self, max_age: float | None = None) -> Sample:
        self._check_open()
        max_age = self.config.max_age if max_age is None else max_age
        s = self.window(time.monotonic(), self.config.window_seconds)
        age = time.monotonic() - s.t
        if age > max_age:
            raise StaleError(f"microphone {self.name!r}: newest audio is {age * 1e3:.0f} ms old "
                             f"(max_age {max_age * 1e3:.0f} ms; {self._why()})")
        self._last_read_seq = s.seq
        return s

    def at(self, t: float) -> Sample | None:
        """The observation window ending at ``t`` (or at the newest sample, if ``t`` is not captured yet)."""
        self._check_open()
        if self._n == 0 or self.time_of(0) > t:
            return None
        return self.window(t, self.config.window_seconds)

    def wait(self, timeout: float = 1.0) -> Sample:
        self._check_open()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._n > self._last_read_seq:
                return self.read_latest(max_age=float("inf"))
            time.sleep(0.002)
        raise StaleError(f"microphone {self.name!r}: no new audio within {timeout * 1e3:.0f} ms ({self._why()})")

    def stats(self) -> dict:
        a, b = self.clock()
        return {"name": self.name, "state": self.state, "samples": self._n, "buffered": min(self._n, self._cap),
                "fps": 1.0 / b if b > 0 else 0.0, "measured_rate": 1.0 / b if b > 0 else 0.0,
                "reconnects": self.reconnects, "failures": self.failures, "overflows": self.overflows,
                "input_latency": self.in_latency, "last_error": self.last_error}

    # --- time mapping -----------------------------------------------------------------------------------
    def clock(self) -> tuple[float, float]:
        """(a, b) of t = a + b * n, where n samples had been captured by time t (b = 1 / measured rate)."""
        with self._lock:
            return self._clock_locked()

    def _clock_locked(self) -> tuple[float, float]:
        if self._fit is not None and self._fit_n == self._n:
            return self._fit
        nominal = 1.0 / self.config.sample_rate
        anchors = list(self._anchors)
        if not anchors:
            return (0.0, nominal)
        fresh = [p for p in anchors if p[0] > self._seg_n]  # after a reconnect, fit the new stream only
        anchors = fresh or anchors
        t_last = anchors[-1][1]
        pts = np.array([p for p in anchors if p[1] >= t_last - self.config.fit_seconds], np.float64)
        if len(pts) >= 8 and pts[-1, 1] - pts[0, 1] >= 0.5:
            b = _lower_slope(pts[:, 0], pts[:, 1])
            if not 0.9 * nominal < b < 1.1 * nominal:  # a burst/outage in the window: trust the nominal rate
                b = nominal
        else:  # too few anchors for a fit yet: the nominal rate
            b = nominal
            pts = np.array(anchors[-8:], np.float64)
        # scheduling only ever delays a callback: the line goes under every anchor (the earliest arrivals)
        a = float(np.min(pts[:, 1] - b * pts[:, 0]))
        self._fit, self._fit_n = (a, b), self._n
        return self._fit

    def time_of(self, n: int) -> float:
        """The monotonic time by which ``n`` samples had been captured (time of sample n-1's end)."""
        a, b = self.clock()
        return a + b * n

    def window(self, t: float, seconds: float | None = None) -> Sample:
        """The audio ending at ``t`` as a Sample: data (channels, N) float32, ``s.t`` the time of its last
        sample (earlier than ``t`` when ``t`` is not captured yet), ``seq`` the total sample count at its end.
        Samples before the stream started (or already overwritten) are zeros. The window never ends past
        the last real callback, so during an outage its ``t`` falls behind (stale), not forward (silence)."""
        self._check_open()
        c = self.config
        N = int(round((c.window_seconds if seconds is None else seconds) * c.sample_rate))
        if N > self._cap:
            raise SensorConfigError(f"microphone {self.name!r}: window of {N} samples exceeds the "
                                    f"{self._cap}-sample buffer (raise buffer_seconds)")
        with self._lock:
            a, b = self._clock_locked()
            n_total = self._n
            end = int(np.floor((t - a) / b))
            end = max(0, min(end, self._n_real))  # never past real audio: an outage shows as skew
            start = end - N
            lo = max(start, n_total - self._cap, 0)
            out = np.zeros((c.channels, N), np.float32)
            if end > lo:
                idx = np.arange(lo, end) % self._cap
                out[:, lo - start:] = self._buf[idx].T
        return Sample(t=a + b * end, data={self.key: out}, seq=end, t_device=float(end))

    def log_mel(self, t: float, seconds: float = 3.0, frontend=None):
        """MS-Bot audio features of the ``seconds`` ending at ``t`` (see :func:`msbot_features`)."""
        return msbot_features(self.window(t, seconds).data[self.key], self.config.sample_rate, frontend)

    # --- stream ---------------------------------------------------------------------------------------
    def _resolve(self, sd) -> int:
        want = self.config.device
        inputs = list_inputs()
        have = "; ".join(f"[{d['index']}] {d['name']} ({d['hostapi']})" for d in inputs) or "none"
        if want is None or want == "":
            idx = sd.default.device[0]
            if idx is None or idx < 0:
                if inputs:
                    return inputs[0]["index"]
                raise DeviceNotFoundError(f"microphone {self.name!r}: no audio input device (PortAudio sees: {have})")
            return int(idx)
        if isinstance(want, int) or str(want).isdigit():
            if any(d["index"] == int(want) for d in inputs):
                return int(want)
        else:
            exact = [d["index"] for d in inputs if d["name"] == want]
            part = [d["index"] for d in inputs if str(want).lower() in d["name"].lower()]
            if exact or part:
                return (exact or part)[0]
        raise DeviceNotFoundError(f"microphone {self.name!r}: no audio input device {want!r} "
                                  f"(inputs: {have})")

    def _start_stream(self, pad_gap: bool = False) -> None:
        global _open_streams
        sd = import_sd()
        c = self.config
        try:
            dev = self._resolve(sd)
        except DeviceNotFoundError:
            if not refresh_portaudio():  # a sound server may have started after import
                raise
            dev = self._resolve(sd)
        self.device_name = sd.query_devices(dev)["name"]
        latency = c.latency
        try:
            latency = float(latency)
        except ValueError:
            pass

        def failed(e):
            return SensorError(f"microphone {self.name!r}: cannot open {self.device_name!r} at "
                               f"{c.sample_rate} Hz x {c.channels} ch: {e}")
        try:
            stream = sd.InputStream(device=dev, channels=c.channels, samplerate=c.sample_rate,
                                    blocksize=c.blocksize or c.sample_rate // 50, dtype="float32",
                                    latency=latency, callback=functools.partial(self._callback, self._gen))
        except sd.PortAudioError as e:
            raise failed(e) from e
        with _pa_lock:
            _open_streams += 1
        self._stream = stream
        self.in_latency = float(stream.latency) if c.input_delay is None else float(c.input_delay)
        self._last_cb = time.monotonic()
        self._cb_count = 0
        if pad_gap:
            self._pad_gap()
        self._seg_n = self._n  # anchors beyond this sample count belong to the new stream
        try:
            stream.start()
        except sd.PortAudioError as e:
            self._close_stream()
            raise failed(e) from e

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        with self._lock:
            self._gen += 1
        close_stream_bounded(stream, f"microphone {self.name!r}", self.config.close_timeout)

    def _callback(self, gen, indata, frames, time_info, status) -> None:
        t = time.monotonic()
        with self._lock:
            if gen != self._gen:
                return
            if status.input_overflow:
                self.overflows += 1
            i = self._n % self._cap
            k = min(frames, self._cap - i)
            self._buf[i:i + k] = indata[:k]
            if k < frames:
                self._buf[:frames - k] = indata[k:]
            self._n += frames
            self._n_real = self._n
            self._anchors.append((self._n, t - self.in_latency))
            self._last_cb = t
            self._cb_count += 1

    def _watch(self, stop: threading.Event) -> None:
        """Reopen the stream when callbacks stop (device unplugged, sound server died)."""
        delay = self.config.reconnect_delay
        while not stop.wait(0.05):
            stalled = time.monotonic() - self._last_cb > self.config.stall_timeout
            dead = self._stream is None or not self._stream.active
            if not (stalled or dead):
                if self.state != "running" and self._cb_count > 0:
                    self.state = "running"
                    log.info("microphone %r: audio flowing again after %d reconnect attempt(s)",
                             self.name, self.reconnects)
                    delay = self.config.reconnect_delay
                continue
            if self.state == "running":
                self.failures += 1
                self.last_error = ("stream stopped" if dead else
                                   f"no audio callback for {time.monotonic() - self._last_cb:.2f} s")
                log.warning("microphone %r: %s; reconnecting", self.name, self.last_error)
                if not self.config.reconnect:
                    self.state = "failed"
                    return
            self.state = "reconnecting"
            self.reconnects += 1  # counted first: closing a dead stream can take close_timeout
            self._close_stream()
            try:
                self._start_stream(pad_gap=True)
                self._last_cb = time.monotonic()  # give the new stream stall_timeout to deliver
            except Exception as e:
                self.last_error = f"reconnect: {type(e).__name__}: {e}"
                stop.wait(delay)
                delay = min(2 * delay, self.config.reconnect_max_delay)

    def _pad_gap(self) -> None:
        """Fill the outage with silence so one line keeps mapping sample index <-> time across it."""
        with self._lock:
            a, b = self._clock_locked()
            gap = int((time.monotonic() - (a + b * self._n)) / b)
            gap = max(0, min(gap, self._cap))
            for s in range(0, gap, 4096):
                m = min(4096, gap - s)
                i = self._n % self._cap
                k = min(m, self._cap - i)
                self._buf[i:i + k] = 0
                self._buf[:m - k] = 0
                self._n += m
            if gap:
                self._anchors.append((self._n, a + b * self._n))
