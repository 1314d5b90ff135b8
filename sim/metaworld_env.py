"""Meta-World v3 as a gymnasium env with policystack observation keys.

Observation: ``observation.state`` (39-D, goal observable, names in STATE_NAMES; or with
``state="proprio"`` only the robot's own 4-D hand position + gripper opening, so that a pixel policy
must find objects and goals in the images), optional
``observation.images.<cam>`` (uint8 HxWx3) and ``observation.depth.<cam>`` (float32 metres), and
``task`` (the instruction). Init state ``i`` is the i-th draw of Meta-World's own task sampler from a
generator seeded by ``(init_seed, i)``: episode i of a task always starts from the same state, and
different ``init_seed`` values give disjoint splits (demos use 1, evaluation 0 by default).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from policystack import keys as K
from policystack.spec import Feature, Spec
from sim.metaworld_tasks import INSTRUCTIONS, STATE_NAMES, resolve_tasks
from sim.render import FastRenderer, ensure_headless_gl
from sim.wrappers import take_init_state_index

log = logging.getLogger(__name__)

CAMERAS = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")
# cameras whose model frame yields an upside-down image (see specs/sim_feasibility.md)
_FLIP = {"corner": (True, False), "corner2": (True, True), "corner3": (True, False)}


def _size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


class MetaWorldEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(self, task: str = "reach-v3", cameras: Sequence[str] = (), image_size: int | Sequence[int] = 84,
                 depth: bool = False, init_seed: int = 0, max_episode_steps: int = 500,
                 terminate_on_success: bool = True, fast_render: bool = True,
                 render_mode: str | None = "rgb_array", render_camera: str = "corner2", state: str = "full"):
        (task,) = resolve_tasks(task)
        if state not in ("full", "proprio"):
            raise ValueError(f"state must be 'full' or 'proprio', got {state!r}")
        self.state_mode = state
        self._state_dim = 39 if state == "full" else 4
        self._full_state = np.zeros(39, np.float32)
        bad = [c for c in cameras if c not in CAMERAS]
        if bad:
            raise ValueError(f"unknown Meta-World camera {bad[0]!r}; choose from {CAMERAS}")
        import metaworld
        self.task_name = task
        self.instruction = INSTRUCTIONS[task]
        self.cameras = tuple(cameras)
        self.height, self.width = _size(image_size)
        self.use_depth = depth
        self.init_seed = int(init_seed)
        self.max_episode_steps = int(max_episode_steps)
        self.terminate_on_success = terminate_on_success
        self.fast_render = fast_render
        self.render_mode = render_mode
        self.render_camera = render_camera
        env = metaworld.ALL_V3_ENVIRONMENTS[task]()
        env._partially_observable = False   # goal in the state, as in MT benchmarks
        if "sawyer_observation_space" in env.__dict__:  # cached with the goal bounds zeroed
            del env.sawyer_observation_space
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env._set_task_called = True
        env.max_path_length = max(env.max_path_length, self.max_episode_steps)
        self._env = env
        self._renderer: FastRenderer | None = None
        self._video_renderer: FastRenderer | None = None
        self._next_index = 0
        self.init_state_index = -1
        self._steps = 0

        obs_spaces: dict[str, spaces.Space] = {
            K.STATE: spaces.Box(-np.inf, np.inf, (self._state_dim,), np.float32)}
        for cam in self.cameras:
            obs_spaces[K.image_key(cam)] = spaces.Box(0, 255, (self.height, self.width, 3), np.uint8)
            if depth:
                obs_spaces[K.depth_key(cam)] = spaces.Box(0, np.inf, (self.height, self.width), np.float32)
        obs_spaces[K.TASK] = spaces.Text(max_length=256, min_length=0,
                                         charset=frozenset(map(chr, range(32, 127))))
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)

    # ----- spec -----------------------------------------------------------------------------
    @property
    def spec_features(self) -> Spec:
        feats = [Feature(K.STATE, (self._state_dim,), "float32", names=STATE_NAMES[: self._state_dim])]
        for cam in self.cameras:
            feats.append(Feature(K.image_key(cam), (self.height, self.width, 3), "uint8"))
            if self.use_depth:
                feats.append(Feature(K.depth_key(cam), (self.height, self.width), "float32"))
        feats.append(Feature(K.TASK, (), "str"))
        feats.append(Feature(K.ACTION, (4,), "float32", names=("dx", "dy", "dz", "gripper"), low=-1, high=1))
        return Spec.of(feats)

    # ----- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        self.init_state_index = index = take_init_state_index(self, seed, options)
        env = self._env
        env.np_random = np.random.default_rng([self.init_seed, index])
        env._freeze_rand_vec = False
        state, _ = env.reset()
        self._steps = 0
        return self._obs(state), {"init_state_index": index, "is_success": False}

    def step(self, action):
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (4,):
            raise ValueError(f"Meta-World action must have shape (4,), got {action.shape}")
        if not np.isfinite(action).all():
            raise ValueError(f"action contains NaN or inf: {action}")
        if np.abs(action).max() > 1.0:
            action = np.clip(action, -1.0, 1.0)
        state, reward, _, _, info = self._env.step(action)
        self._steps += 1
        success = info["success"] > 0
        terminated = success and self.terminate_on_success
        truncated = self._steps >= self.max_episode_steps and not terminated
        info["is_success"] = success
        info["init_state_index"] = self.init_state_index
        return self._obs(state), float(reward), terminated, truncated, info

    def _ensure_renderer(self) -> FastRenderer:
        if self._renderer is None:
            ensure_headless_gl()
            self._renderer = FastRenderer(self._env.model, self.height, self.width, self.fast_render)
        return self._renderer

    def _flip(self, img: np.ndarray, cam: str) -> np.ndarray:
        v, h = _FLIP.get(cam, (False, False))
        if v:
            img = img[::-1]
        if h:
            img = img[:, ::-1]
        return np.ascontiguousarray(img)

    def _obs(self, state: np.ndarray) -> dict[str, Any]:
        self._full_state = np.asarray(state, np.float32)
        obs: dict[str, Any] = {K.STATE: self._full_state if self._state_dim == 39 else self._full_state[:4].copy()}
        if self.cameras:
            r = self._ensure_renderer()
            for cam in self.cameras:
                obs[K.image_key(cam)] = self._flip(r.rgb(self._env.data, cam), cam)
                if self.use_depth:
                    obs[K.depth_key(cam)] = self._flip(r.depth(self._env.data, cam), cam)
        obs[K.TASK] = self.instruction
        return obs

    def render(self):
        """A frame for videos from ``render_camera`` (uses the obs renderer when sizes match)."""
        if self._video_renderer is None:
            self._video_renderer = FastRenderer(self._env.model, 224, 224, self.fast_render)
        return self._flip(self._video_renderer.rgb(self._env.data, self.render_camera), self.render_camera)

    def close(self):
        for r in (self._renderer, self._video_renderer):
            if r is not None:
                r.close()
        self._renderer = self._video_renderer = None
        self._env.close()

    # ----- experts --------------------------------------------------------------------------
    @property
    def expert_state(self) -> np.ndarray:
        """The full 39-D simulator state of the last observation (what the scripted expert reads)."""
        return self._full_state

    def expert(self):
        """Meta-World's shipped scripted policy for this task: callable(state 39-D) -> action."""
        from metaworld.policies import ENV_POLICY_MAP
        pol = ENV_POLICY_MAP[self.task_name]()

        def act(state: np.ndarray) -> np.ndarray:
            with warnings.catch_warnings():  # "Constant(s) may be too high": the env clips anyway
                warnings.simplefilter("ignore", UserWarning)
                a = pol.get_action(np.asarray(state, np.float64))
            return np.clip(np.asarray(a, np.float32), -1, 1)
        return act
