"""The Sensor contract (DESIGN.md "Sensor"): samples stamped with time.monotonic(), a bounded ring buffer,
and a background reader thread that survives a dying source by reconnecting.

Every driver returns ``Sample(t, data, seq)``: ``t`` is the ``time.monotonic()`` capture time (one clock
for every sensor and process on the machine; never ``time.time()``, which jumps with NTP), ``data`` is
keyed by observation key, ``seq`` counts samples per sensor so drops are visible.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from policystack.spec import Spec
from sensors.errors import SensorConfigError, SensorError, StaleError

log = logging.getLogger(__name__)


@dataclass
class Sample:
    t: float  # time.monotonic() capture time (estimate) of this sample
    data: dict[str, np.ndarray]  # keyed by observation key
    seq: int  # per-sensor counter; gaps mean dropped samples
    t_device: float | None = None  # the device's own clock (RealSense ms, file position ms, sample index)


@dataclass
class SensorConfig:
    """Fields every driver shares (a YAML rig entry sets them next to ``type``)."""

    name: str = "sensor"
    max_age: float = 0.5  # read_latest(None) raises StaleError when the newest sample is older (s)
    buffer_size: int = 64  # samples kept in the ring buffer; bounds memory
    open_timeout: float = 5.0  # open() waits this long for the first sample (s)
    reconnect: bool = True  # try to reopen a source that died mid-stream
    reconnect_delay: float = 0.1  # first wait between reconnect attempts (s), doubled up to max
    reconnect_max_delay: float = 2.0
    fail_after: int = 3  # consecutive failed reads before the source counts as dead

    def validate(self) -> None:
        if not self.name or not str(self.name).replace("_", "").replace("-", "").isalnum():
            raise SensorConfigError(f"sensor name {self.name!r} must be a non-empty identifier "
                                    f"(it becomes part of the observation key)")
        for f in ("max_age", "open_timeout", "reconnect_delay", "reconnect_max_delay"):
            if getattr(self, f) <= 0:
                raise SensorConfigError(f"sensor {self.name!r}: {f} must be > 0, got {getattr(self, f)}")
        if self.buffer_size < 2:
            raise SensorConfigError(f"sensor {self.name!r}: buffer_size must be >= 2, got {self.buffer_size}")
        if self.fail_after < 1:
            raise SensorConfigError(f"sensor {self.name!r}: fail_after must be >= 1")


class RingBuffer:
    """A bounded, thread-safe, time-ordered buffer of samples with "newest at or before t" lookups."""

    def __init__(self, capacity: int):
        self._items: deque[Sample] = deque(maxlen=capacity)
        self._cond = threading.Condition()
        self.capacity = capacity

    def push(self, s: Sample) -> None:
        with self._cond:
            self._items.append(s)
            self._cond.notify_all()

    def latest(self) -> Sample | None:
        with self._cond:
            return self._items[-1] if self._items else None

    def at(self, t: float) -> Sample | None:
        """The newest sample with ``s.t <= t`` (like message_filters' Cache.getElemBeforeTime)."""
        with self._cond:
            for s in reversed(self._items):
                if s.t <= t:
                    return s
        return None

    def wait_newer(self, seq: int, timeout: float) -> Sample | None:
        """Block until a sample with ``s.seq > seq`` exists; return the newest one (None on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._items or self._items[-1].seq <= seq:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    if self._items and self._items[-1].seq > seq:
                        break
                    return None
            return self._items[-1]

    def times(self) -> np.ndarray:
        with self._cond:
            return np.array([s.t for s in self._items])

    def __len__(self) -> int:
        return len(self._items)


class SourceEnded(Exception):
    """Raised by a driver's _read() when its source ended for good (a file played once): no reconnect."""


class Sensor:
    """Base of every driver: context manager, ``features``, and the read API on the ring buffer."""

    config: SensorConfig

    def __init__(self, config: SensorConfig):
        config.validate()
        self.config = config
        self.name = config.name
        self._ring = RingBuffer(config.buffer_size)
        self._opened = False
        self._seq = 0
        self._last_read_seq = -1
        self.state = "closed"  # closed | running | reconnecting | ended | failed
        self.last_error: str | None = None
        self.reconnects = 0  # reconnect attempts made
        self.failures = 0  # failed reads in total

    # --- contract -------------------------------------------------------------------------------------
    @property
    def features(self) -> Spec:
        raise NotImplementedError

    def open(self) -> "Sensor":
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def read_latest(self, max_age: float | None = None) -> Sample:
        """The newest sample; StaleError if there is none or it is older than ``max_age`` (default: config)."""
        self._check_open()
        max_age = self.config.max_age if max_age is None else max_age
        s = self._ring.latest()
        if s is None:
            raise StaleError(f"sensor {self.name!r}: no sample yet ({self._why()})")
        age = time.monotonic() - s.t
        if age > max_age:
            raise StaleError(f"sensor {self.name!r}: newest sample is {age * 1e3:.0f} ms old "
                             f"(max_age {max_age * 1e3:.0f} ms; {self._why()})")
        self._last_read_seq = s.seq
        return s

    def at(self, t: float) -> Sample | None:
        """The newest sample captured at or before ``t`` (time.monotonic()), or None."""
        self._check_open()
        return self._ring.at(t)

    def wait(self, timeout: float = 1.0) -> Sample:
        """The next sample newer than the last one read_latest()/wait() returned (blocks up to ``timeout``)."""
        self._check_open()
        s = self._ring.wait_newer(self._last_read_seq, timeout)
        if s is None:
            raise StaleError(f"sensor {self.name!r}: no new sample within {timeout * 1e3:.0f} ms ({self._why()})")
        self._last_read_seq = s.seq
        return s

    def stats(self) -> dict[str, Any]:
        """Rate and health, for logs, the CLI and benchmarks."""
        ts = self._ring.times()
        gaps = np.diff(ts)[-30:]  # recent intervals; a median is not fooled by an outage
        fps = 1.0 / float(np.median(gaps)) if len(gaps) >= 2 and np.median(gaps) > 0 else 0.0
        return {"name": self.name, "state": self.state, "samples": self._seq, "buffered": len(self._ring),
                "fps": float(fps), "reconnects": self.reconnects, "failures": self.failures,
                "last_error": self.last_error}

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, state={self.state})"

    # --- helpers for drivers --------------------------------------------------------------------------
    def _push(self, t: float, data: dict[str, np.ndarray], t_device: float | None = None) -> Sample:
        s = Sample(t=t, data=data, seq=self._seq, t_device=t_device)
        self._seq += 1
        self._ring.push(s)
        return s

    def _check_open(self) -> None:
        if not self._opened:
            raise SensorError(f"sensor {self.name!r} is not open: call open() or use it as a context manager")

    def _why(self) -> str:
        why = f"source {self.state}"
        if self.last_error:
            why += f", last error: {self.last_error}"
        if self.reconnects:
            why += f", {self.reconnects} reconnect attempt(s)"
        return why


class ThreadedSensor(Sensor):
    """A driver with one reader thread: subclasses implement ``_connect``, ``_read`` and ``_disconnect``.

    ``_read()`` returns ``(t, data, t_device)`` for one sample (``t`` stamped as close to the device
    read as possible), None for a failed read, or raises SourceEnded. After ``fail_after`` failed reads
    in a row the source is dead: it is disconnected and reopened with exponential backoff while
    ``read_latest`` reports it stale. The ring buffer bounds memory however long the outage lasts.
    """

    def _connect(self) -> None:
        raise NotImplementedError

    def _read(self) -> tuple[float, dict[str, np.ndarray], float | None] | None:
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError

    def open(self) -> "ThreadedSensor":
        if self._opened:
            return self
        self._connect()  # raises DeviceNotFoundError / SensorError fast
        self._ring = RingBuffer(self.config.buffer_size)  # a reopened sensor never serves old samples
        self._last_read_seq = self._seq - 1
        self._opened = True
        self.state = "running"
        stop = threading.Event()  # owned by this thread's lifetime (no shared flag to race on)
        self._stop = stop
        self._thread = threading.Thread(target=self._loop, args=(stop,), name=f"sensor-{self.name}", daemon=True)
        self._thread.start()
        if self._ring.wait_newer(-1, self.config.open_timeout) is None:
            why = self._why()
            self.close()
            raise SensorError(f"sensor {self.name!r}: opened but no sample within "
                              f"{self.config.open_timeout:.1f} s ({why})")
        return self

    def close(self) -> None:
        if not self._opened:
            return
        self._stop.set()
        self._thread.join(timeout=5.0)
        if self._thread.is_alive():
            log.warning("sensor %r: reader thread did not stop within 5 s", self.name)
        try:
            self._disconnect()
        except Exception as e:  # closing must not raise on an already broken device
            log.debug("sensor %r: disconnect failed: %s", self.name, e)
        self._opened = False
        self.state = "closed"

    def _loop(self, stop: threading.Event) -> None:
        bad = 0
        while not stop.is_set():
            try:
                out = self._read()
            except SourceEnded as e:
                self.state, self.last_error = "ended", str(e) or "end of source"
                log.info("sensor %r: %s", self.name, self.last_error)
                return
            except Exception as e:  # a driver error is a failed read, not a dead thread
                out = None
                self.last_error = f"{type(e).__name__}: {e}"
            if out is not None:
                bad = 0
                self._push(*out)
                continue
            bad += 1
            self.failures += 1
            if self.last_error is None:
                self.last_error = "read failed"
            if bad < self.config.fail_after:
                continue
            if not self.config.reconnect:
                self.state = "failed"
                log.warning("sensor %r: source failed (%s); reconnect disabled", self.name, self.last_error)
                return
            self._reconnect(stop)
            bad = 0

    def _reconnect(self, stop: threading.Event) -> None:
        self.state = "reconnecting"
        log.warning("sensor %r: source died (%s); reconnecting", self.name, self.last_error)
        delay = self.config.reconnect_delay
        while not stop.is_set():
            try:
                self._disconnect()
            except Exception:
                pass
            self.reconnects += 1
            try:
                self._connect()
                self.state = "running"
                log.info("sensor %r: reconnected after %d attempt(s)", self.name, self.reconnects)
                return
            except Exception as e:
                self.last_error = f"reconnect: {type(e).__name__}: {e}"
            stop.wait(delay)
            delay = min(delay * 2, self.config.reconnect_max_delay)


class Pacer:
    """Ticks at a fixed period on an absolute schedule (errors do not accumulate); when the caller fell
    more than one period behind (a busy CPU), the schedule restarts instead of bursting to catch up."""

    def __init__(self, period: float):
        self.period = period
        self.reset()

    def reset(self) -> None:
        self.t0, self.k = time.monotonic(), 0

    def wait(self, stop: threading.Event | None = None) -> None:
        now = time.monotonic()
        due = self.t0 + self.k * self.period
        if now - due > self.period:
            self.t0, self.k, due = now, 0, now
        elif due > now:
            if stop is not None:
                stop.wait(due - now)
            else:
                time.sleep(due - now)
        self.k += 1
