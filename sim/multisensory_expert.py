"""Scripted expert for the peg-in-keyway task, and demonstration recording to HDF5.

The expert reads the simulator (privileged): the hole position (stage 0), whether the key is blocked
by the plate (stage 1, the wrench the finger pads feel) and whether the latch has clicked (stage 2).
It only uses MS-Bot-style primitives: wait, ±x, ±y, down, rotate (+yaw).

Demo files follow the HDF5 episode contract (``policystack.dataset``); per-step stage labels are
written as an episode dataset ``data/demo_<i>/stage`` (int64 (T,)) and read by
:func:`read_stage_labels`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from policystack import keys as K
from policystack.dataset import Episode, EpisodeWriter
from policystack.errors import DatasetError

log = logging.getLogger(__name__)

PRIMITIVES = {
    "wait": (0.0, 0.0, 0.0, 0.0),
    "+x": (1.0, 0.0, 0.0, 0.0), "-x": (-1.0, 0.0, 0.0, 0.0),
    "+y": (0.0, 1.0, 0.0, 0.0), "-y": (0.0, -1.0, 0.0, 0.0),
    "down": (0.0, 0.0, -1.0, 0.0),
    "rotate": (0.0, 0.0, 0.0, 1.0),
}
STAGE_DATASET = "stage"
EXECUTED_DATASET = "executed_actions"   # what was executed (differs from the label under DART noise)


def primitive(name: str) -> np.ndarray:
    return np.asarray(PRIMITIVES[name], np.float32)


class PegKeywayExpert:
    """callable(obs) -> action (float32 (4,)), for the env it was made from."""

    def __init__(self, env, block_force: float = 0.3):
        self.env = env
        self.block_force = block_force

    def name(self) -> str:
        env = self.env
        d = env.data
        stage = env.stage
        if stage == 0:              # align x first, then y (a deterministic order: no tie-breaking labels)
            err = env.hole_xy - d.qpos[:2]
            if abs(err[0]) >= 0.004:
                return "+x" if err[0] > 0 else "-x"
            if abs(err[1]) >= 0.004:
                return "+y" if err[1] > 0 else "-y"
            stage = 1
        if stage == 1:
            force, _ = env.contact_wrench()
            return "rotate" if force[2] > self.block_force else "down"
        return "wait" if env.latched else "down"

    def __call__(self, obs: Any = None) -> np.ndarray:
        return primitive(self.name())


def generate_demos(out_path: str | Path, n_episodes: int, init_seed: int = 1, start_index: int = 0,
                   env_kwargs: dict | None = None, dart_prob: float = 0.0, progress: bool = True) -> Path:
    """Record successful expert episodes (the task is always solvable; failures are skipped and logged).

    ``dart_prob``: in stage 0 the executed action is, with this probability, a random lateral
    primitive while the recorded label stays the expert's (DART-style recovery data).
    """
    from tqdm import tqdm
    from sim.multisensory_env import MultiSensoryEnv

    kwargs = dict(env_kwargs or {})
    kwargs["init_seed"] = init_seed
    env = MultiSensoryEnv(**kwargs)
    expert = env.expert()
    spec = env.spec_features
    out_path = Path(out_path)
    if out_path.exists():
        out_path.unlink()
    rng = np.random.default_rng([init_seed, 12345])
    lateral = ["+x", "-x", "+y", "-y"]
    written = skipped = 0
    env_args = {"env_name": "policystack/MultiSensory-" + env.task_name, "env_kwargs": kwargs}
    with EpisodeWriter(out_path, env_args=env_args, features=spec, language=env.instruction) as writer:
        index = start_index
        bar = tqdm(total=n_episodes, desc="multisensory demos", disable=not progress)
        while written < n_episodes:
            obs, info = env.reset(options={"init_state_index": index})
            frames: dict[str, list] = {k: [] for k in obs if k != K.TASK}
            actions, stages, rewards, executed = [], [], [], []
            done = False
            while not done:
                for k in frames:
                    frames[k].append(obs[k])
                stages.append(info["stage"])
                label = expert(obs)
                act = label
                if dart_prob > 0 and env.stage == 0 and rng.random() < dart_prob:
                    act = primitive(lateral[int(rng.integers(4))])
                actions.append(label)
                executed.append(act)
                obs, r, term, trunc, info = env.step(act)
                rewards.append(r)
                done = term or trunc
            if info["is_success"]:
                T = len(actions)
                ep = Episode(obs={k: np.stack(v) for k, v in frames.items()},
                             actions=np.stack(actions).astype(np.float32),
                             rewards=np.asarray(rewards, np.float32),
                             dones=np.eye(1, T, T - 1, dtype=np.uint8)[0], task=env.instruction,
                             attrs={"init_state_index": index, "keyway_yaw": env.keyway_yaw,
                                    "latch_z": env.latch_z})
                name = writer.add(ep)
                writer.data[name].create_dataset(STAGE_DATASET, data=np.asarray(stages, np.int64))
                writer.data[name].create_dataset(EXECUTED_DATASET, data=np.stack(executed).astype(np.float32))
                writer.f.flush()
                written += 1
                bar.update(1)
            else:
                skipped += 1
                log.warning("expert failed on init state %d (%d steps); skipped", index, len(actions))
            index += 1
        bar.close()
    env.close()
    if skipped:
        log.info("%d expert episodes failed and were skipped", skipped)
    return out_path


def read_stage_labels(path: str | Path, limit: int | None = None) -> list[np.ndarray]:
    """Per-step stage labels of each episode (same order as ``read_episodes``)."""
    return _read_per_step(path, STAGE_DATASET, np.int64, limit, required=True)


def read_executed_actions(path: str | Path, limit: int | None = None) -> list[np.ndarray] | None:
    """Executed actions per episode (None when the file does not have them: then executed = labels)."""
    return _read_per_step(path, EXECUTED_DATASET, np.float32, limit, required=False)


def _read_per_step(path, name: str, dtype, limit, required: bool):
    import h5py
    from policystack.dataset import _demo_sort_key

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise DatasetError(f"{path} is not an episode file: no 'data' group")
        names = sorted((n for n in f["data"].keys() if n.startswith("demo")), key=_demo_sort_key)[:limit]
        out = []
        for n in names:
            g = f["data"][n]
            if name not in g:
                if required:
                    raise DatasetError(f"{path}:{n} has no per-step '{name}' dataset")
                return None
            out.append(np.asarray(g[name][()], dtype))
        return out
