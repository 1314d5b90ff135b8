"""Expert demos for KOI at agent-step rate, with what key-state extraction needs (states, infos).

Generated directly from the env's scripted expert (Meta-World's shipped policies), each expert action
held for ``action_repeat`` env steps, exactly as the agent acts, so BC and the OT reward compare like
with like. Also reads demos from a policystack HDF5 episode file (then sub-sampled by ``action_repeat``;
infos are absent, so simulator key states use the object trajectory and the final frame as the goal).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from policystack import keys as K
from policystack.checkpoint import atomic_write_bytes
from policystack.errors import DatasetError
from policies.koi.keystates import Demo

log = logging.getLogger(__name__)


def rollout_expert(env: Any, expert: Any, init_state_index: int, steps: int, action_repeat: int,
                   image_key: str) -> tuple[Demo, bool]:
    """One expert episode of ``steps`` agent steps (not stopped at success); returns (demo, succeeded)."""
    obs, _ = env.reset(options={"init_state_index": init_state_index})
    frames, states, actions, infos = [obs[image_key]], [obs[K.STATE]], [np.zeros(env.action_space.shape, np.float32)], [{}]
    success = False
    for _ in range(steps):
        a = np.asarray(expert(obs[K.STATE]), np.float32)
        info: dict = {}
        for _ in range(action_repeat):
            obs, _, _, _, info = env.step(a)
            success |= bool(info.get("is_success", False))
        frames.append(obs[image_key])
        states.append(obs[K.STATE])
        actions.append(a)
        infos.append({k: float(v) for k, v in info.items() if np.isscalar(v)})
    demo = Demo(np.stack(frames), np.stack(actions), np.stack(states), infos, task=obs.get(K.TASK, ""))
    return demo, success


def generate_demos(env: Any, n: int, steps: int, action_repeat: int, image_key: str,
                   max_tries: int | None = None, require_success: bool = True) -> list[Demo]:
    """``n`` successful expert demos from init states 0, 1, ... of ``env`` (failed ones are skipped
    unless ``require_success`` is off, e.g. for episodes too short to finish the task)."""
    expert = env.unwrapped.expert()
    demos, i = [], 0
    max_tries = max_tries or 5 * n
    while len(demos) < n and i < max_tries:
        demo, ok = rollout_expert(env, expert, i, steps, action_repeat, image_key)
        if ok or not require_success:
            demos.append(demo)
        else:
            log.warning("expert failed from init state %d; skipped", i)
        i += 1
    if len(demos) < n:
        raise DatasetError(f"the scripted expert succeeded in only {len(demos)} of {i} episodes")
    return demos


def save_demos(demos: Sequence[Demo], path: Path) -> None:
    import io
    import json
    arrays: dict[str, np.ndarray] = {}
    for i, d in enumerate(demos):
        arrays[f"frames_{i}"] = d.frames
        arrays[f"actions_{i}"] = d.actions
        if d.states is not None:
            arrays[f"states_{i}"] = d.states
        arrays[f"infos_{i}"] = np.frombuffer(json.dumps(d.infos).encode(), dtype=np.uint8)
        arrays[f"task_{i}"] = np.frombuffer(d.task.encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, n=np.array(len(demos)), **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_demos(path: Path) -> list[Demo]:
    import json
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"demo file {path} does not exist")
    with np.load(path) as z:
        out = []
        for i in range(int(z["n"])):
            out.append(Demo(z[f"frames_{i}"], z[f"actions_{i}"],
                            z[f"states_{i}"] if f"states_{i}" in z else None,
                            json.loads(z[f"infos_{i}"].tobytes().decode()), z[f"task_{i}"].tobytes().decode()))
    return out


def demos_from_hdf5(path: Path, image_key: str, n: int, action_repeat: int) -> list[Demo]:
    """Demos from a policystack HDF5 file (e.g. ``policystack demos``), sub-sampled to agent steps."""
    from policystack.dataset import read_episodes
    eps = read_episodes(path, keys=[image_key, K.STATE], limit=n)
    if not eps:
        raise DatasetError(f"{path} holds no episodes")
    out = []
    for ep in eps:
        if image_key not in ep.obs:
            raise DatasetError(f"{path} has no {image_key!r}; it has {sorted(ep.obs)}")
        # obs[t] is seen before actions[t]; agent frame k is env frame k * action_repeat
        idx = np.arange(0, len(ep), action_repeat)
        frames = ep.obs[image_key][idx]
        acts = np.concatenate([np.zeros((1, ep.actions.shape[1]), np.float32), ep.actions[idx[:-1]]])
        states = ep.obs[K.STATE][idx] if K.STATE in ep.obs else None
        out.append(Demo(frames, acts.astype(np.float32), states, [], task=ep.task))
    return out
