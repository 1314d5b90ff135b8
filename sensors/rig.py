"""A rig: several sensors from one YAML file, answering "the observation at time t" with each sensor's skew.

    rate: 10            # Hz of preview/record loops
    lag: 0.0            # observation time = now - lag (lets slower sensors deliver first)
    max_skew: 0.2       # seconds, or {sensor_name: seconds}; default: each sensor's max_age
    sensors:
      - {type: opencv, name: front, source: 0, width: 640, height: 480, fps: 30}
      - {type: realsense, name: wrist, serial: "123456789"}
      - {type: microphone, name: mic, device: pulse, window_seconds: 1.0}
      - {type: tactile, name: gel, kind: gelsight_mini, serial: 2BXX-ABCD}

For each sensor the rig takes the newest frame captured at or before t (cameras, tactile) or the
audio window ending at t (microphones); skew = t - that sample's capture time. A skew above the
sensor's bound is a StaleError naming the sensor, never a silently old observation.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from policystack.config import config_class, from_dict
from policystack.errors import ConfigError, UnknownNameError
from policystack.spec import Feature, Spec
from sensors.base import Sample, Sensor
from sensors.errors import SensorError, StaleError

log = logging.getLogger(__name__)

# type -> (module, driver class); modules import their heavy libraries lazily
SENSOR_TYPES: dict[str, tuple[str, str]] = {
    "opencv": ("sensors.opencv_camera", "OpenCVCamera"),
    "realsense": ("sensors.realsense", "RealSenseCamera"),
    "microphone": ("sensors.microphone", "Microphone"),
    "tactile": ("sensors.tactile", "TactileSensor"),
}


def make_sensor(cfg: Mapping[str, Any]) -> Sensor:
    """Build one driver from a YAML entry ``{type: opencv|realsense|microphone|tactile, name: ..., ...}``."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"a sensor entry must be a mapping with 'type' and 'name', got {cfg!r}")
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind is None:
        raise ConfigError(f"sensor entry {cfg!r} has no 'type' (one of {', '.join(SENSOR_TYPES)})")
    if kind not in SENSOR_TYPES:
        raise UnknownNameError(f"unknown sensor type {kind!r}; known: {', '.join(SENSOR_TYPES)}")
    module, cls_name = SENSOR_TYPES[kind]
    mod = importlib.import_module(module)
    config = from_dict(config_class("sensor", kind), cfg)
    return getattr(mod, cls_name)(config)


@dataclass
class RigObservation:
    t: float  # the time asked for
    obs: dict[str, np.ndarray]
    skew: dict[str, float]  # per sensor: t - capture time of the sample used
    samples: dict[str, Sample] = field(default_factory=dict)


class Rig:
    """Several sensors opened together; ``observation(t)`` -> (obs dict, skew per sensor)."""

    def __init__(self, sensors: Sequence[Sensor], max_skew: float | Mapping[str, float] | None = None,
                 lag: float = 0.0, rate: float = 10.0):
        names = [s.name for s in sensors]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"rig: sensor names must be unique; repeated: {dup}")
        if not sensors:
            raise ConfigError("rig: no sensors")
        if rate <= 0 or lag < 0:
            raise ConfigError(f"rig: need rate > 0 and lag >= 0 (rate={rate}, lag={lag})")
        self.sensors: dict[str, Sensor] = {s.name: s for s in sensors}
        if isinstance(max_skew, Mapping):
            unknown = set(max_skew) - set(self.sensors)
            if unknown:
                raise ConfigError(f"rig: max_skew names unknown sensor(s) {sorted(unknown)}; sensors: {names}")
        self.max_skew = max_skew
        self.lag, self.rate = float(lag), float(rate)
        self._opened = False

    # --- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base_dir: str | os.PathLike | None = None) -> "Rig":
        d = dict(d)
        entries = d.pop("sensors", None)
        if not isinstance(entries, list) or not entries:
            raise ConfigError("rig config needs a non-empty 'sensors:' list")
        known = {"rate", "lag", "max_skew"}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"rig config: unknown key(s) {sorted(unknown)}; known: sensors, {', '.join(sorted(known))}")
        sensors = [make_sensor(_resolve_paths(e, base_dir)) for e in entries]
        return cls(sensors, max_skew=d.get("max_skew"), lag=d.get("lag", 0.0), rate=d.get("rate", 10.0))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "Rig":
        import yaml
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"rig file {path} does not exist")
        try:
            d = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"rig file {path} is not valid YAML: {e}") from e
        if isinstance(d, list):
            d = {"sensors": d}
        if not isinstance(d, dict):
            raise ConfigError(f"rig file {path}: expected a mapping with 'sensors:'")
        return cls.from_dict(d, base_dir=path.parent)

    # --- lifecycle ------------------------------------------------------------------------------------
    def open(self) -> "Rig":
        opened = []
        try:
            for s in self.sensors.values():
                s.open()
                opened.append(s)
        except Exception:
            for s in reversed(opened):
                s.close()
            raise
        self._opened = True
        self._check_keys()
        return self

    def close(self) -> None:
        for s in reversed(list(self.sensors.values())):
            try:
                s.close()
            except Exception as e:
                log.warning("rig: closing %r failed: %s", s.name, e)
        self._opened = False

    def __enter__(self) -> "Rig":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_keys(self) -> None:
        seen: dict[str, str] = {}
        for s in self.sensors.values():
            for k in s.features.keys():
                if k in seen:
                    raise ConfigError(f"rig: sensors {seen[k]!r} and {s.name!r} both provide {k!r}")
                seen[k] = s.name

    # --- observation ----------------------------------------------------------------------------------
    @property
    def features(self) -> Spec:
        feats: list[Feature] = []
        for s in self.sensors.values():
            feats += list(s.features)
        return Spec.of(feats)

    def bound(self, name: str) -> float:
        m = self.max_skew
        if isinstance(m, Mapping):
            m = m.get(name)
        return float(m) if m is not None else self.sensors[name].config.max_age

    def observe(self, t: float | None = None) -> RigObservation:
        """The observation at ``t`` (default: now - lag) with skews and the samples used."""
        if not self._opened:
            raise SensorError("rig is not open: call open() or use it as a context manager")
        t = time.monotonic() - self.lag if t is None else t
        obs: dict[str, np.ndarray] = {}
        skew: dict[str, float] = {}
        samples: dict[str, Sample] = {}
        for name, s in self.sensors.items():
            smp = s.at(t)
            if smp is None:
                raise StaleError(f"rig: sensor {name!r} has no sample at or before t={t:.3f} ({s._why()})")
            skew[name] = t - smp.t
            if skew[name] > self.bound(name):
                raise StaleError(f"rig: sensor {name!r} skew {skew[name] * 1e3:.0f} ms exceeds "
                                 f"{self.bound(name) * 1e3:.0f} ms ({s._why()})")
            obs.update(smp.data)
            samples[name] = smp
        return RigObservation(t=t, obs=obs, skew=skew, samples=samples)

    def observation(self, t: float | None = None) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """(obs keyed by observation key, skew in seconds per sensor name) at ``t`` (default now - lag)."""
        o = self.observe(t)
        return o.obs, o.skew

    def wait_ready(self, timeout: float = 5.0) -> RigObservation:
        """Block until every sensor can answer within its bound (the slowest sensor delivered)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.observe()
            except StaleError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def stats(self) -> dict[str, dict]:
        return {n: s.stats() for n, s in self.sensors.items()}


def _resolve_paths(entry: Mapping[str, Any], base_dir) -> dict:
    """Relative file paths in a rig YAML are relative to the YAML file."""
    e = dict(entry)
    if base_dir is None:
        return e
    for key in ("file", "source"):
        v = e.get(key)
        if isinstance(v, str) and v and "://" not in v and not v.startswith("/") and not v.isdigit() \
                and (Path(base_dir) / v).exists():
            e[key] = str(Path(base_dir) / v)
    return e


def run_loop(rig: Rig, steps: int, rate: float | None = None, on_step: Callable[[RigObservation], None] | None = None,
             skip_stale: bool = True, progress: bool = False) -> dict[str, Any]:
    """Tick ``steps`` times at ``rate`` Hz (absolute schedule); returns skew statistics per sensor."""
    from tqdm import tqdm
    rate = rate or rig.rate
    period = 1.0 / rate
    skews: dict[str, list[float]] = {n: [] for n in rig.sensors}
    stale, errors = 0, []
    t0 = time.monotonic()
    it = tqdm(range(steps), desc="rig", unit="step", disable=not progress)
    for k in it:
        left = t0 + k * period - time.monotonic()
        if left > 0:
            time.sleep(left)
        try:
            o = rig.observe()
        except StaleError as e:
            if not skip_stale:
                raise
            stale += 1
            errors.append(str(e))
            continue
        for n, v in o.skew.items():
            skews[n].append(v)
        if on_step is not None:
            on_step(o)
    summary = {n: skew_summary(v) for n, v in skews.items()}
    return {"steps": steps, "stale_steps": stale, "errors": errors[:5], "skew": summary,
            "wall_s": time.monotonic() - t0}


def skew_summary(v: Sequence[float]) -> dict[str, float]:
    a = np.asarray(v, np.float64)
    if not len(a):
        return {"n": 0}
    return {"n": int(len(a)), "mean_ms": float(a.mean() * 1e3), "p50_ms": float(np.median(a) * 1e3),
            "p95_ms": float(np.percentile(a, 95) * 1e3), "max_ms": float(a.max() * 1e3)}


__all__ = ["Rig", "RigObservation", "make_sensor", "run_loop", "skew_summary", "SENSOR_TYPES"]
