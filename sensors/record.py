"""Record a rig to HDF5 episodes (policystack.dataset layout) with the timing of every sample.

Per episode, besides ``obs/<key>`` (T, ...) and ``actions`` (T, A) — A = 0 when nothing commands the
robot — the group ``timing`` holds what LeRobot's recorder drops: ``t`` (the tick times asked for)
and, per sensor, ``<name>/t`` (capture times), ``<name>/seq`` (per-sensor counters; gaps are drops)
and ``<name>/skew``. All times are time.monotonic() seconds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from policystack import keys as K
from policystack.dataset import Episode, EpisodeWriter
from policystack.errors import ConfigError, DatasetError
from policystack.spec import Feature, Spec
from sensors.rig import Rig, RigObservation, run_loop

log = logging.getLogger(__name__)


def record_episode(rig: Rig, steps: int, rate: float | None = None, task: str = "",
                   action_fn: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
                   progress: bool = False) -> tuple[Episode, dict[str, np.ndarray], dict[str, Any]]:
    """Tick the (open) rig ``steps`` times at ``rate`` Hz -> (episode, timing arrays, loop summary).

    Stale ticks are skipped and counted (``stale_steps``), so one late frame does not end a recording.
    """
    if steps < 1:
        raise ConfigError(f"record: steps must be >= 1, got {steps}")
    ticks: list[RigObservation] = []
    actions: list[np.ndarray] = []

    def on_step(o: RigObservation) -> None:
        ticks.append(o)
        if action_fn is not None:
            actions.append(np.asarray(action_fn(o.obs), np.float32).reshape(-1))

    summary = run_loop(rig, steps, rate, on_step=on_step, skip_stale=True, progress=progress)
    if not ticks:
        raise DatasetError(f"record: every tick was stale; first errors: {summary['errors']}")
    T = len(ticks)
    obs = {k: np.stack([o.obs[k] for o in ticks]) for k in ticks[0].obs}
    act = np.stack(actions) if actions else np.zeros((T, 0), np.float32)
    dones = np.zeros(T, np.uint8)
    dones[-1] = 1
    timing = {"t": np.array([o.t for o in ticks])}
    for name in rig.sensors:
        timing[f"{name}/t"] = np.array([o.samples[name].t for o in ticks])
        timing[f"{name}/seq"] = np.array([o.samples[name].seq for o in ticks], np.int64)
        timing[f"{name}/skew"] = np.array([o.skew[name] for o in ticks])
    ep = Episode(obs=obs, actions=act, rewards=np.zeros(T, np.float32), dones=dones, task=task,
                 attrs={"rate": float(rate or rig.rate), "stale_steps": int(summary["stale_steps"]),
                        "sensors": ",".join(rig.sensors)})
    return ep, timing, summary


def write_episode(writer: EpisodeWriter, ep: Episode, timing: dict[str, np.ndarray]) -> str:
    """Add the episode, then its timing arrays as datasets under ``data/demo_i/timing``."""
    name = writer.add(ep)
    g = writer.data[name].require_group("timing")
    for k, v in timing.items():
        g.create_dataset(k, data=v)
    writer.f.flush()
    return name


def rig_dataset_features(rig: Rig, action_dim: int = 0, task: str = "") -> Spec:
    feats = list(rig.features) + [Feature(K.ACTION, (action_dim,), "float32")]
    if task:
        feats.append(Feature(K.TASK, (), "str"))
    return Spec.of(feats)


def record(rig: Rig, out: str | os.PathLike, episodes: int = 1, seconds: float = 5.0, rate: float | None = None,
           task: str = "", progress: bool = True, between: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Open-loop recording of ``episodes`` episodes of ``seconds`` each into ``out`` (appends)."""
    rate = rate or rig.rate
    steps = max(1, int(round(seconds * rate)))
    out = Path(out)
    report: dict[str, Any] = {"path": str(out), "episodes": []}
    with EpisodeWriter(out, env_args={"env_name": "sensor_rig", "type": "rig",
                                      "sensors": {n: type(s).__name__ for n, s in rig.sensors.items()}},
                       features=rig_dataset_features(rig, 0, task), language=task or None) as w:
        for i in range(episodes):
            if between is not None and i:
                between(i)
            ep, timing, summary = record_episode(rig, steps, rate, task=task, progress=progress)
            name = write_episode(w, ep, timing)
            log.info("record: %s: %d steps (%d stale) -> %s", name, len(ep), summary["stale_steps"], out)
            report["episodes"].append({"name": name, "steps": len(ep), **summary})
    return report
