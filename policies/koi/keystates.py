"""Key states of an expert demo and the expert weighting nu built from them (KOI, spec §1.6).

*Semantic* key states ("what to do") are the frames where sub-goals complete. KOI asks GPT-4-turbo;
no remote model is reachable here, so the shipped providers are offline:

- ``ManualKeyStates``: a user-given ``keyidx`` list (1-based, as in KOI's README).
- ``SimPhaseKeyStates``: the simulator's task phases along a scripted demo (Meta-World): the frame
  where the manipulated object starts to move (the robot has engaged it), the rising edge of
  ``grasp_success`` when it is not already true at the start, and the first ``success`` frame (the goal).
- ``GripperKeyStates``: sign flips of the gripper command (grasp / release) plus the final frame.
- ``VLMKeyStates``: the pluggable interface for a vision-language model: any ``query(images, prompt)``
  callable returning one picture index per sub-step; frames are sub-sampled every ``stride`` as KOI does.

*Motion* key states ("how to do") are, inside each interval between semantic key states, the frame with
the largest dense optical flow (OpenCV Farneback, KOI's single-scale parameters).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

log = logging.getLogger(__name__)

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114])
# KOI's Farneback parameters: single scale (no pyramid), small window
FARNEBACK = dict(pyr_scale=0.0, levels=0, winsize=5, iterations=5, poly_n=7, poly_sigma=1.2)
# OpenCV's Farneback returns spurious flow in a thin band at the image border even for two identical
# frames (measured on a 64x64 Meta-World frame: norm 15 at the border, exactly 0 inside; a real arm
# motion step is ~20-45). KOI sums the whole field; we drop this band so that no motion means no flow.
# ``border=0`` restores KOI's exact sum. Both give the same motion key on our demos.
FLOW_BORDER = 5


@dataclass
class Demo:
    """One expert trajectory at agent-step rate. ``frames[t]`` is the camera frame after step t
    (``frames[0]`` the reset frame); ``actions[t]`` (t >= 1) the action that produced frame t."""

    frames: np.ndarray                       # (T, H, W, 3) uint8
    actions: np.ndarray                      # (T, A) float32; actions[0] is a zero placeholder
    states: np.ndarray | None = None         # (T, S) proprioception/object state
    infos: list[dict[str, float]] = field(default_factory=list)   # per frame, infos[0] = {} (reset)
    task: str = ""

    def __len__(self) -> int:
        return len(self.frames)


# ----- optical flow --------------------------------------------------------------------------------
def to_gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB (uint8 or float) -> float64 gray, KOI's weights."""
    return np.asarray(frame, dtype=np.float64) @ GRAY_WEIGHTS


def flow_magnitude(a: np.ndarray, b: np.ndarray, border: int = FLOW_BORDER) -> float:
    """Frobenius norm of the Farneback flow field between two RGB frames (``border`` px band dropped)."""
    import cv2
    ga, gb = to_gray(a), to_gray(b)
    flow = cv2.calcOpticalFlowFarneback(ga, gb, None, flags=cv2.OPTFLOW_FARNEBACK_GAUSSIAN, **FARNEBACK)
    if border > 0 and min(flow.shape[:2]) > 2 * border:
        flow = flow[border:-border, border:-border]
    return float(np.linalg.norm(flow))


def flow_magnitudes(frames: np.ndarray, border: int = FLOW_BORDER) -> np.ndarray:
    """F_t = ||flow(frame_t, frame_{t+1})||_F for t = 0..T-2."""
    return np.array([flow_magnitude(frames[t], frames[t + 1], border) for t in range(len(frames) - 1)])


def motion_key_states(flow: np.ndarray, semantic: Sequence[int]) -> list[int]:
    """In each interval [S_i, S_{i+1}) (with S_0 = 0), the frame after the largest flow: S_i + argmax + 1."""
    bounds = [0] + [int(s) for s in semantic]
    keys = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        seg = flow[lo:hi]
        if len(seg):
            keys.append(lo + int(np.argmax(seg)) + 1)
    return keys


# ----- expert weighting nu -------------------------------------------------------------------------
@dataclass(frozen=True)
class NuWeights:
    semantic: float = 0.15       # intermediate semantic key states
    final: float = 0.35          # the last semantic key state (the goal)
    motion: float = 0.05
    semantic_var: float = 10.0   # variances (not std) of the Gaussian bumps, in frames
    motion_var: float = 25.0


def gaussian(x: np.ndarray, mu: float, var: float) -> np.ndarray:
    return np.exp(-(x - mu) ** 2 / (2 * var)) / np.sqrt(2 * np.pi * var)


def expert_weighting(length: int, semantic: Sequence[int], motion: Sequence[int] = (),
                     w: NuWeights = NuWeights()) -> np.ndarray:
    """nu over ``length`` expert frames: uniform + Gaussian bumps at key states, normalised.

    ``semantic`` is sorted, 0-based; its last entry is the goal. With no key states nu is uniform (ROT).
    """
    if length < 1:
        raise ValueError("expert trajectory is empty")
    x = np.arange(length, dtype=np.float64)
    nu = np.full(length, 1.0 / length)
    sem = sorted(int(s) for s in semantic)
    if sem:
        for s in sem[:-1]:
            nu += w.semantic * gaussian(x, s, w.semantic_var)
        nu += w.final * gaussian(x, sem[-1], w.semantic_var)
    for m in motion:
        nu += w.motion * gaussian(x, int(m), w.motion_var)
    return nu / nu.sum()


def uniform_weighting(length: int) -> np.ndarray:
    return np.full(length, 1.0 / length)


# ----- semantic key-state providers ----------------------------------------------------------------
class SemanticKeyStates(Protocol):
    """Anything that maps a demo to sorted, 0-based semantic key frame indices (last = goal)."""

    def __call__(self, demo: Demo) -> list[int]: ...


def _clean(keys: Sequence[int], length: int, min_gap: int = 1) -> list[int]:
    out: list[int] = []
    for k in sorted(int(k) for k in keys):
        k = min(max(k, 0), length - 1)
        if not out or k - out[-1] >= min_gap:
            out.append(k)
        else:
            out[-1] = k  # merge near-duplicates towards the later (completed) frame
    return out


@dataclass
class ManualKeyStates:
    """User-given key frames; ``one_based`` follows KOI's README (``keyidx`` as 1-based indices)."""

    keyidx: Sequence[int]
    one_based: bool = True

    def __call__(self, demo: Demo) -> list[int]:
        off = 1 if self.one_based else 0
        keys = [int(k) - off for k in self.keyidx]
        if any(k < 0 or k >= len(demo) for k in keys):
            raise ValueError(f"key indices {list(self.keyidx)} fall outside a demo of {len(demo)} frames")
        return _clean(keys, len(demo))


@dataclass
class SimPhaseKeyStates:
    """Sub-goal completions read off the simulator along a scripted Meta-World demo.

    - engaged: first frame where the object (``state[obj_slice]``) is more than ``move_threshold`` m from
      where it rests after the first step (the arm has reached and is acting on it);
    - grasped: rising edge of ``info['grasp_success']`` (only if false at the first step; several
      Meta-World tasks report it as always true);
    - goal: the first frame with ``info['success']``; the last frame when the demo never succeeds.
    """

    obj_slice: tuple[int, int] = (4, 7)
    move_threshold: float = 0.015
    min_gap: int = 3

    def __call__(self, demo: Demo) -> list[int]:
        T = len(demo)
        keys: list[int] = []
        if demo.states is not None and T > 2:
            obj = np.asarray(demo.states)[:, self.obj_slice[0]:self.obj_slice[1]]
            moved = np.linalg.norm(obj - obj[1], axis=1) > self.move_threshold
            moved[:2] = False
            if moved.any():
                keys.append(int(np.argmax(moved)))
        infos = demo.infos[1:] if demo.infos else []
        grasp = np.array([float(i.get("grasp_success", 0.0)) > 0 for i in infos], dtype=bool)
        if len(grasp) and not grasp[0] and grasp.any():
            keys.append(int(np.argmax(grasp)) + 1)
        success = np.array([float(i.get("success", i.get("is_success", 0.0))) > 0 for i in infos], dtype=bool)
        goal = int(np.argmax(success)) + 1 if success.any() else T - 1
        keys = [k for k in keys if k < goal] + [goal]
        return _clean(keys, T, self.min_gap)


@dataclass
class GripperKeyStates:
    """Grasp/release sub-goals from sign flips of the gripper command (``actions[:, -1]``) + the final frame."""

    min_gap: int = 3

    def __call__(self, demo: Demo) -> list[int]:
        g = np.sign(np.asarray(demo.actions)[1:, -1])
        flips = [t + 1 for t in range(1, len(g)) if g[t] != g[t - 1] and g[t] != 0]
        return _clean(flips + [len(demo) - 1], len(demo), self.min_gap)


VLMQuery = Callable[[list[np.ndarray], str], Sequence[int]]


@dataclass
class VLMKeyStates:
    """KOI's VLM route: show frames ``(i+1)*stride - 1`` and ask for the most relevant picture per sub-step.

    ``query(images, prompt)`` is any callable (a local model, or a REST client written by the user) that
    returns one 0-based picture index per sub-step. The prompt follows KOI's wording.
    """

    query: VLMQuery
    substeps: Sequence[str]
    stride: int = 10

    def prompt(self) -> str:
        steps = " ".join(f"{i + 1}. {s}" for i, s in enumerate(self.substeps))
        return (f"The pictures show a robot doing a task in order. The task has these steps: {steps} "
                f"Give the index of the most relevant picture for each step, as a python list.")

    def __call__(self, demo: Demo) -> list[int]:
        idx = [(i + 1) * self.stride - 1 for i in range(len(demo) // self.stride)]
        if not idx:
            raise ValueError(f"demo of {len(demo)} frames is shorter than the VLM stride {self.stride}")
        picks = list(self.query([demo.frames[i] for i in idx], self.prompt()))
        if len(picks) != len(self.substeps):
            raise ValueError(f"VLM returned {len(picks)} indices for {len(self.substeps)} sub-steps: {picks}")
        if any(not 0 <= int(p) < len(idx) for p in picks):
            raise ValueError(f"VLM picture indices {picks} outside 0..{len(idx) - 1}")
        return _clean([idx[int(p)] for p in picks], len(demo))


def make_semantic_provider(kind: str, keyidx: Sequence[int] | None = None) -> SemanticKeyStates:
    """By name, for configs: 'sim' | 'manual' | 'gripper'. (A VLM provider is built in code.)"""
    if kind == "sim":
        return SimPhaseKeyStates()
    if kind == "gripper":
        return GripperKeyStates()
    if kind == "manual":
        if not keyidx:
            raise ValueError("semantic key states 'manual' need a non-empty keyidx list")
        return ManualKeyStates(list(keyidx))
    raise ValueError(f"unknown semantic key-state provider {kind!r}; choose sim, manual or gripper")


# ----- everything together -------------------------------------------------------------------------
@dataclass
class KeyStates:
    semantic: list[int]
    motion: list[int]
    flow: np.ndarray
    nu: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"semantic": self.semantic, "motion": self.motion}


def compute_key_states(demo: Demo, provider: SemanticKeyStates, weights: NuWeights = NuWeights(),
                       use_motion: bool = True) -> KeyStates:
    """Semantic keys from ``provider``, motion keys from Farneback flow, and nu (spec §1.6)."""
    sem = provider(demo)
    flow = flow_magnitudes(demo.frames) if use_motion and len(demo) > 1 else np.zeros(max(len(demo) - 1, 0))
    motion = motion_key_states(flow, sem) if use_motion else []
    nu = expert_weighting(len(demo), sem, motion, weights)
    log.info("key states: semantic %s, motion %s", sem, motion)
    return KeyStates(sem, motion, flow, nu)
