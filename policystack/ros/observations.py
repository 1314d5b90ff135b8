"""Per-tick observation assembly from per-topic buffers (pure numpy; the node feeds it messages).

Each input keeps a short buffer of decoded values stamped in ns. At a tick ``t`` the observation holds,
per key, the newest value stamped at or before ``t`` (cameras, state), or for a ``window`` input the
last ``window`` samples of the chunks stamped at or before ``t`` (audio, tactile, F/T), and a list of
problems (missing, too old, NaN/inf) that make the node hold instead of acting.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from policystack import keys as K
from policystack.spec import Spec
from policystack.ros.topics import InputConfig


@dataclass
class InputStats:
    received: int = 0
    rejected: int = 0
    last_reject: str = ""


class InputBuffer:
    def __init__(self, cfg: InputConfig, maxlen: int = 64):
        self.cfg = cfg
        self.buf: collections.deque[tuple[int, Any]] = collections.deque(maxlen=max(maxlen, cfg.depth))
        self.stats = InputStats()

    def add(self, stamp: int, value: Any) -> None:
        self.stats.received += 1
        if self.buf and stamp < self.buf[-1][0]:   # out of order: keep the buffer sorted
            items = sorted([*self.buf, (stamp, value)], key=lambda x: x[0])
            self.buf.clear()
            self.buf.extend(items)
        else:
            self.buf.append((stamp, value))

    def reject(self, reason: str) -> None:
        self.stats.rejected += 1
        self.stats.last_reject = reason

    def newest_at_or_before(self, t: int) -> tuple[int, Any] | None:
        for stamp, value in reversed(self.buf):
            if stamp <= t:
                return stamp, value
        return None

    def exact(self, t: int) -> tuple[int, Any] | None:
        for stamp, value in reversed(self.buf):
            if stamp == t:
                return stamp, value
            if stamp < t:
                break
        return None

    def window_at(self, t: int, n: int) -> tuple[int, np.ndarray] | None:
        """Last ``n`` samples (along the last axis) of the chunks stamped at or before ``t``."""
        chunks, have, newest = [], 0, None
        for stamp, value in reversed(self.buf):
            if stamp > t:
                continue
            newest = stamp if newest is None else newest
            chunks.append(np.asarray(value))
            have += chunks[-1].shape[-1]
            if have >= n:
                break
        if newest is None or have < n:
            return None
        return newest, np.concatenate(chunks[::-1], axis=-1)[..., -n:]


@dataclass
class Assembled:
    obs: dict[str, Any]
    ages_ms: dict[str, float]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class ObservationAssembler:
    """Holds one buffer per input; thread-safe (callbacks add, the tick assembles)."""

    def __init__(self, inputs: Mapping[str, InputConfig], required: Spec, instruction: str = ""):
        self.inputs = dict(inputs)
        self.required = required
        self.instruction = instruction
        self.buffers = {name: InputBuffer(cfg, maxlen=max(64, cfg.depth * 4)) for name, cfg in inputs.items()}
        self.by_key = {cfg.key: name for name, cfg in inputs.items()}
        self._lock = threading.Lock()

    def add(self, name: str, stamp: int, value: Any) -> None:
        with self._lock:
            self.buffers[name].add(stamp, value)

    def reject(self, name: str, reason: str) -> None:
        with self._lock:
            self.buffers[name].reject(reason)

    def clear(self) -> None:
        with self._lock:
            for b in self.buffers.values():
                if b.cfg.key != K.TASK:   # the latched instruction is not re-sent
                    b.buf.clear()

    def _pick(self, buf: InputBuffer, t: int, exact: bool):
        cfg = buf.cfg
        if cfg.window:
            return buf.window_at(t, cfg.window)
        if exact and cfg.has_header:
            return buf.exact(t)
        return buf.newest_at_or_before(t) if cfg.has_header else (buf.buf[-1] if buf.buf else None)

    def assemble(self, t: int, exact: bool = False, check_age: bool = True) -> Assembled:
        """The observation at tick ``t`` (ns). ``exact``: headered inputs must carry stamp ``t`` (lockstep)."""
        obs: dict[str, Any] = {}
        ages: dict[str, float] = {}
        problems: list[str] = []
        with self._lock:
            for feat in self.required:
                key = feat.key
                name = self.by_key.get(key)
                if name is None:
                    if key == K.TASK and self.instruction:
                        obs[key] = self.instruction
                        continue
                    problems.append(f"{key}: no input mapped")
                    continue
                buf = self.buffers[name]
                got = self._pick(buf, t, exact)
                if got is None:
                    if key == K.TASK and self.instruction:
                        obs[key] = self.instruction
                        continue
                    what = "no message" if not buf.buf else ("no message stamped at the tick" if exact else
                                                             "no message at or before the tick")
                    if buf.cfg.window and buf.buf:
                        what = f"fewer than window={buf.cfg.window} samples buffered"
                    problems.append(f"{key}: {what} on {buf.cfg.topic}")
                    continue
                stamp, value = got
                age = (t - stamp) / 1e9 if buf.cfg.has_header else 0.0
                ages[key] = round(age * 1e3, 3)
                if check_age and buf.cfg.max_age > 0 and age > buf.cfg.max_age:
                    problems.append(f"{key}: stale, {age:.3f} s old > max_age {buf.cfg.max_age} s on {buf.cfg.topic}")
                    continue
                if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                    problems.append(f"{key}: contains NaN/inf on {buf.cfg.topic}")
                    continue
                obs[key] = value
        return Assembled(obs, ages, problems)

    def stats(self) -> dict[str, dict]:
        with self._lock:
            return {b.cfg.key: {"received": b.stats.received, "rejected": b.stats.rejected,
                                **({"last_reject": b.stats.last_reject} if b.stats.last_reject else {})}
                    for b in self.buffers.values()}
