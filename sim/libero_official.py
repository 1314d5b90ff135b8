"""Official LIBERO demonstration files <-> policystack Episodes.

Official layout (LIBERO ``scripts/create_dataset.py``)::

    data                  attrs: env_name, problem_info (JSON: problem_name, domain_name,
                                 language_instruction), macros_image_convention ("opengl"),
                                 env_args (JSON), bddl_file_name, bddl_file_content, num_demos, total
    data/demo_i           attrs: num_samples, model_file (MJCF), init_state
    data/demo_i/obs/      agentview_rgb, eye_in_hand_rgb (T,H,W,3 uint8, rows bottom-up under "opengl"),
                          gripper_states (T,2), joint_states (T,7), ee_states (T,6), ee_pos (T,3), ee_ori (T,3)
    data/demo_i/          actions (T,7), states (T,S), robot_states (T,9), rewards, dones

Reading maps the cameras to ``observation.images.{agentview,wrist}`` (turned right side up) and builds
``observation.state`` = [ee_pos, ee_ori, gripper_states, joint_states], the env's 15-D state, so a
policy trained on official files runs on ``policystack/LIBERO-*`` envs unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from policystack import keys as K
from policystack.dataset import Episode, read_episodes, read_file_attrs
from policystack.errors import DatasetError

OFFICIAL_KEY_MAP = {"agentview_rgb": K.image_key("agentview"), "eye_in_hand_rgb": K.image_key("wrist")}
PROPRIO_KEYS = ("ee_pos", "ee_ori", "ee_states", "gripper_states", "joint_states")


def _language(attrs: dict, path: Path, how: str) -> str:
    """'benchmark': LIBERO's task-name rule (what its eval and our envs use); 'problem_info': the file's text."""
    pinfo = attrs.get("problem_info") if isinstance(attrs.get("problem_info"), dict) else {}
    text = str(pinfo.get("language_instruction", ""))
    if how == "problem_info":
        return text
    if how != "benchmark":
        return how  # an explicit instruction
    from sim.libero_suites import language_from_name
    bddl = attrs.get("bddl_file_name")
    if isinstance(bddl, str) and bddl.endswith(".bddl"):
        return language_from_name(Path(bddl).stem)
    if path.stem.endswith("_demo"):
        return language_from_name(path.stem[: -len("_demo")])
    return text


def _state(obs: dict[str, np.ndarray], where: str) -> np.ndarray:
    if "ee_pos" in obs and "ee_ori" in obs:
        ee = np.concatenate([obs["ee_pos"], obs["ee_ori"]], -1)
    elif "ee_states" in obs:
        ee = obs["ee_states"][:, :6]
    else:
        raise DatasetError(f"{where} has no end-effector obs (ee_pos/ee_ori or ee_states); it has {sorted(obs)}")
    for k in ("gripper_states", "joint_states"):
        if k not in obs:
            raise DatasetError(f"{where} lacks obs {k!r}; it has {sorted(obs)}")
    return np.concatenate([ee, obs["gripper_states"], obs["joint_states"]], -1).astype(np.float32)


def read_official_demos(path: str | os.PathLike, limit: int | None = None, with_states: bool = False,
                        language: str = "benchmark", keep_raw: bool = False) -> list[Episode]:
    """Episodes from an official LIBERO demo file, with our observation keys (see module docstring).

    ``language``: 'benchmark' (default; the instruction our envs give), 'problem_info', or a literal text.
    ``keep_raw`` keeps the file's proprio datasets (ee_pos, ...) beside ``observation.state``.
    """
    path = Path(path)
    attrs = read_file_attrs(path)
    flip = str(attrs.get("macros_image_convention", "opengl")) == "opengl"
    text = _language(attrs, path, language)
    episodes = read_episodes(path, key_map=OFFICIAL_KEY_MAP, limit=limit, with_states=with_states)
    for i, ep in enumerate(episodes):
        where = f"{path}:demo {i}"
        ep.obs[K.STATE] = _state(ep.obs, where)
        for key in list(ep.obs):
            if key.startswith(K.IMAGES + ".") and flip:
                ep.obs[key] = np.ascontiguousarray(ep.obs[key][:, ::-1])
            elif key in PROPRIO_KEYS and not keep_raw:
                del ep.obs[key]
            elif key not in PROPRIO_KEYS and not key.startswith(K.OBS_PREFIX):
                del ep.obs[key]  # other official extras (e.g. z-buffer depth without its near/far planes)
        ep.task = text
        ep.attrs.pop("model_file", None)  # MJCF text: large and only needed for replay in LIBERO itself
    return episodes


def axisangle2quat(v: np.ndarray) -> np.ndarray:
    """axis * angle -> (x, y, z, w), robosuite's convention."""
    v = np.asarray(v, np.float64)
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = angle / 2
    axis = np.divide(v, angle, out=np.zeros_like(v), where=angle > 1e-12)
    return np.concatenate([axis * np.sin(half), np.cos(half)], -1)


def write_official_demos(path: str | os.PathLike, episodes: Sequence[Episode], suite: str, task_index: int,
                         env_kwargs: dict | None = None) -> Path:
    """Write our episodes (with ``observation.state`` and ``states``) in the official LIBERO layout."""
    import h5py

    from sim.libero_suites import task_info
    info = task_info(suite, task_index)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    problem = {"problem_name": info.problem_name.lower(), "domain_name": "robosuite",
               "language_instruction": info.bddl_language}
    env_args = {"type": 1, "env_name": info.name, "problem_name": problem["problem_name"],
                "bddl_file": str(info.bddl_file), "env_kwargs": dict(env_kwargs or {})}
    total = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        data.attrs["env_name"] = info.name
        data.attrs["problem_info"] = json.dumps(problem)
        data.attrs["macros_image_convention"] = "opengl"
        data.attrs["env_args"] = json.dumps(env_args)
        data.attrs["bddl_file_name"] = str(info.bddl_file)
        data.attrs["bddl_file_content"] = info.bddl_file.read_text()
        for i, ep in enumerate(episodes):
            if ep.states is None:
                raise DatasetError(f"episode {i} has no simulator states; the official layout needs them")
            s = np.asarray(ep.obs[K.STATE], np.float64)
            g = data.create_group(f"demo_{i}")
            o = g.create_group("obs")
            o.create_dataset("ee_pos", data=s[:, 0:3])
            o.create_dataset("ee_ori", data=s[:, 3:6])
            o.create_dataset("ee_states", data=s[:, 0:6])
            o.create_dataset("gripper_states", data=s[:, 6:8])
            o.create_dataset("joint_states", data=s[:, 8:15])
            for ours, theirs in ((K.image_key("agentview"), "agentview_rgb"), (K.image_key("wrist"), "eye_in_hand_rgb")):
                if ours in ep.obs:
                    o.create_dataset(theirs, data=np.ascontiguousarray(ep.obs[ours][:, ::-1]),
                                     compression="gzip", compression_opts=4)
            g.create_dataset("actions", data=np.asarray(ep.actions, np.float64))
            g.create_dataset("states", data=np.asarray(ep.states, np.float64))
            quat = axisangle2quat(s[:, 3:6])
            g.create_dataset("robot_states", data=np.concatenate([s[:, 6:8], s[:, 0:3], quat], -1))
            rewards = np.zeros(len(ep), np.uint8)
            dones = np.zeros(len(ep), np.uint8)
            rewards[-1] = dones[-1] = 1
            g.create_dataset("rewards", data=rewards)
            g.create_dataset("dones", data=dones)
            g.attrs["num_samples"] = len(ep)
            g.attrs["init_state"] = np.asarray(ep.states[0], np.float64)
            total += len(ep)
        data.attrs["num_demos"] = len(episodes)
        data.attrs["total"] = total
    os.replace(tmp, path)
    return path
