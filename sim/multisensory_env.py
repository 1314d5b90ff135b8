"""A multi-sensory MuJoCo task: peg insertion with a hidden keyway and a snap latch.

Each stage needs a different sense (MS-Bot's "modality temporality"):

* stage 0, align (vision): move the peg over the hole. The hole's position is random and only the
  camera sees it (the state holds the hand pose, not the hole).
* stage 1, find the keyway (touch): lower the peg; the key lands on the hidden keyed plate, so rotate
  until it drops into the slot. The keyway's yaw is random and invisible (under the hole marker);
  the finger pads feel the key resting on the plate (axial force + off-axis torque).
* stage 2, insert (audio): push down until the snap latch clicks, then hold still. The latch depth is
  random; pushing again after the click breaks it (failure).

Observation: ``observation.images.<cam>`` uint8 HxWx3 (default ``wrist``, a camera on the hand looking
down past the peg; ``front`` and ``side`` are fixed scene cameras), ``observation.audio.<mic>`` float32 (1, N)
(the last ``audio_window_s`` seconds at 16 kHz, synthesised from contact events),
``observation.tactile.<sensor>`` float32 (6, n, n) finger-pad taxels, ``observation.state`` float32 (4,)
hand set-point (x, y, z, yaw) and ``task``. Action: float32 (4,) in [-1, 1] = (dx, dy, dz, dyaw) in
units of 8 mm, 8 mm, 5 mm, 0.1 rad per 0.2-s step (5 Hz, MS-Bot's control rate).

``info``: ``is_success``, ``stage`` (0/1/2, from the task's physical phase), ``init_state_index``,
``latched``, ``broken``, ``impacts`` (contact sounds this step). Init state ``i`` is drawn from a
generator seeded by ``(init_seed, i)``. Distractors: ``visual_distractor`` none|color|mess|both,
``audio_distractor`` none|noise, ``tactile_distractor`` none|noise (``distractor_level`` scales them).
``nuisance`` (0 = off) gives every episode the mild, natural variation a real rig records in the senses a
stage does not need (room noise, gel drift, lighting/colour): per episode and per sense a level drawn
from U(0, nuisance) on the distractor's scale (board/table colour blended that far towards a random
colour; no clutter). An explicitly enabled distractor overrides the nuisance of its sense.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from policystack import keys as K
from policystack.spec import Feature, Spec
from sim.multisensory_assets import (BOARD_RGBA, BOARD_TOP, GRASP_OFFSET, N_CLUTTER, PEG_HALF_LEN,
                                     TABLE_RGBA, build_mjcf, yaw_quat)
from sim.multisensory_audio import SAMPLE_RATE, BackgroundNoise, ContactAudio
from sim.multisensory_tactile import FingerPads
from sim.render import FastRenderer, ensure_headless_gl
from sim.wrappers import take_init_state_index

log = logging.getLogger(__name__)

TASKS = {"peg-keyway": "insert the keyed peg into the hole until the latch clicks"}
CAMERAS = ("front", "side", "wrist")
STATE_NAMES = ("hand_x", "hand_y", "hand_z", "hand_yaw")
ACTION_NAMES = ("dx", "dy", "dz", "dyaw")
STEP_SCALE = np.array([0.008, 0.008, 0.005, 0.1])     # metres / radians per unit action
COMPLIANCE = np.array([0.003, 0.003, 0.003, 0.05])    # max set-point lead over the peg (bounded force)
START_BOTTOM = 0.075                                   # peg bottom height at reset
STAGE_NAMES = ("align", "keyway", "insert")
VISUAL_DISTRACTORS = ("none", "color", "mess", "both")
SIMPLE_DISTRACTORS = ("none", "noise")
STILL = 0.3                                            # |action| below this on every axis = holding still
HOLD_STEPS = 2                                         # still steps after the click that complete the task


def _size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


class MultiSensoryEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(self, task: str = "peg-keyway", cameras: Sequence[str] = ("wrist",),
                 image_size: int | Sequence[int] = 64, audio_window_s: float = 3.0, mic: str = "mic",
                 tactile_sensor: str = "fingers", n_taxels: int = 12, init_seed: int = 0,
                 max_episode_steps: int = 60, visual_distractor: str = "none",
                 audio_distractor: str = "none", tactile_distractor: str = "none",
                 distractor_level: float = 1.0, nuisance: float = 0.0, terminate_on_success: bool = True,
                 render_mode: str | None = "rgb_array", render_camera: str = "front"):
        if task not in TASKS:
            raise ValueError(f"unknown multisensory task {task!r}; choose from {sorted(TASKS)}")
        bad = [c for c in tuple(cameras) + (render_camera,) if c not in CAMERAS]
        if bad:
            raise ValueError(f"unknown camera {bad[0]!r}; choose from {CAMERAS}")
        if visual_distractor not in VISUAL_DISTRACTORS:
            raise ValueError(f"visual_distractor must be one of {VISUAL_DISTRACTORS}, got {visual_distractor!r}")
        for name, v in (("audio_distractor", audio_distractor), ("tactile_distractor", tactile_distractor)):
            if v not in SIMPLE_DISTRACTORS:
                raise ValueError(f"{name} must be one of {SIMPLE_DISTRACTORS}, got {v!r}")
        if audio_window_s <= 0:
            raise ValueError("audio_window_s must be > 0")
        if not 0.0 <= nuisance <= 1.0:
            raise ValueError(f"nuisance must be in [0, 1], got {nuisance!r}")
        self.task_name = task
        self.instruction = TASKS[task]
        self.cameras = tuple(cameras)
        self.height, self.width = _size(image_size)
        self.mic, self.tactile_sensor = mic, tactile_sensor
        self.n_taxels = int(n_taxels)
        self.init_seed = int(init_seed)
        self.max_episode_steps = int(max_episode_steps)
        self.visual_distractor = visual_distractor
        self.audio_distractor = audio_distractor
        self.tactile_distractor = tactile_distractor
        self.distractor_level = float(distractor_level)
        self.nuisance = float(nuisance)
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode
        self.render_camera = render_camera

        self.model = mujoco.MjModel.from_xml_string(build_mjcf())
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.control_dt = 0.2
        self.n_substeps = int(round(self.control_dt / m.opt.timestep))
        self.step_samples = int(round(self.control_dt * SAMPLE_RATE))
        self.audio_samples = int(round(audio_window_s * SAMPLE_RATE))
        self._peg_body = m.body("peg").id
        self._board_body = m.body("board").id
        self._plate_body = m.body("plate").id
        self._peg_geoms = {m.geom("peg").id, m.geom("key").id}
        self._g_board = m.geom("board_visual").id
        self._g_table = m.geom("table").id
        self._g_clutter = [m.geom(f"clutter{i}").id for i in range(N_CLUTTER)]
        self._clutter_defaults = (m.geom_size[self._g_clutter].copy(), m.geom_rgba[self._g_clutter].copy())
        self._pads = FingerPads(self.n_taxels)
        self._renderer: FastRenderer | None = None
        self._video_renderer: FastRenderer | None = None
        self._audio = ContactAudio(np.random.default_rng(0))
        self._background: BackgroundNoise | None = None
        self._next_index = 0
        self.init_state_index = -1

        obs_spaces: dict[str, spaces.Space] = {K.STATE: spaces.Box(-np.inf, np.inf, (4,), np.float32)}
        for cam in self.cameras:
            obs_spaces[K.image_key(cam)] = spaces.Box(0, 255, (self.height, self.width, 3), np.uint8)
        obs_spaces[K.audio_key(mic)] = spaces.Box(-np.inf, np.inf, (1, self.audio_samples), np.float32)
        obs_spaces[K.tactile_key(tactile_sensor)] = spaces.Box(
            -np.inf, np.inf, (6, self.n_taxels, self.n_taxels), np.float32)
        obs_spaces[K.TASK] = spaces.Text(max_length=256, min_length=0,
                                         charset=frozenset(map(chr, range(32, 127))))
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)

    # ----- spec -----------------------------------------------------------------------------
    @property
    def spec_features(self) -> Spec:
        feats = [Feature(K.STATE, (4,), "float32", names=STATE_NAMES)]
        for cam in self.cameras:
            feats.append(Feature(K.image_key(cam), (self.height, self.width, 3), "uint8"))
        feats.append(Feature(K.audio_key(self.mic), (1, self.audio_samples), "float32"))
        feats.append(Feature(K.tactile_key(self.tactile_sensor), (6, self.n_taxels, self.n_taxels), "float32"))
        feats.append(Feature(K.TASK, (), "str"))
        feats.append(Feature(K.ACTION, (4,), "float32", names=ACTION_NAMES, low=-1, high=1))
        return Spec.of(feats)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    # ----- reset ----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.init_state_index = index = take_init_state_index(self, seed, options)
        rng = np.random.default_rng([self.init_seed, index])
        m, d = self.model, self.data
        # the task layout: hole on the 8-mm step grid around the start (+ ±1 mm jitter), keyway, latch
        steps = rng.integers(-4, 5, size=2)
        self.hole_xy = steps * 0.008 + rng.uniform(-0.001, 0.001, size=2)
        self.keyway_yaw = float(rng.uniform(0.25, 1.25))
        self.latch_z = float(BOARD_TOP - 0.01 - rng.uniform(0.004, 0.024))   # peg-bottom height of the click
        start_bottom = START_BOTTOM + float(rng.uniform(-0.002, 0.002))
        m.body_pos[self._board_body] = (self.hole_xy[0], self.hole_xy[1], 0.0)
        m.body_quat[self._plate_body] = yaw_quat(self.keyway_yaw)
        self._apply_distractors(np.random.default_rng([self.init_seed, index, 1]),
                                np.random.default_rng([self.init_seed, index, 5]))
        mujoco.mj_resetData(m, d)
        d.qpos[:] = (0.0, 0.0, start_bottom + PEG_HALF_LEN, 0.0)
        d.ctrl[:] = d.qpos[:4]
        mujoco.mj_forward(m, d)
        self._target = d.qpos[:4].copy()
        self._noise_rng = np.random.default_rng([self.init_seed, index, 2])
        self._audio.reset(np.random.default_rng([self.init_seed, index, 3]))
        self._background = (BackgroundNoise(np.random.default_rng([self.init_seed, index, 4]),
                                            level=0.05 * self._audio_level)
                            if self._audio_level > 0 else None)
        self._audio_buf = np.zeros((1, self.audio_samples), np.float32)
        self._contact_last: dict[tuple[int, int], int] = {}
        self._substep = 0
        self._steps = 0
        self._still = 0
        self.latched = self.broken = False
        self._wrench = (np.zeros(3), np.zeros(3))
        self._impacts = 0
        self._stage = self._phase()
        info = {"init_state_index": index, "is_success": False, "stage": self._stage,
                "latched": False, "broken": False, "impacts": 0}
        return self._obs(), info

    def _apply_distractors(self, rng: np.random.Generator, nuisance_rng: np.random.Generator) -> None:
        m = self.model
        vd = self.visual_distractor
        m.geom_rgba[self._g_board] = BOARD_RGBA
        m.geom_rgba[self._g_table] = TABLE_RGBA
        m.geom_size[self._g_clutter], m.geom_rgba[self._g_clutter] = self._clutter_defaults
        m.geom_pos[self._g_clutter] = (0.0, 0.0, -1.0)
        # per-sense levels this episode: the distractor's when enabled, else the natural nuisance
        # (its own generator, so enabling nuisance leaves every distractor draw unchanged)
        n_vis, n_aud, n_tac = nuisance_rng.uniform(0.0, self.nuisance, size=3)
        self._audio_level = self.distractor_level if self.audio_distractor == "noise" else float(n_aud)
        self._tactile_level = self.distractor_level if self.tactile_distractor == "noise" else float(n_tac)
        # the tactile drift: a per-episode field on the pads (gel ageing / temperature)
        self._tactile_offset = None
        drift = rng.standard_normal((6, 1, 1)) if self.tactile_distractor == "noise" else \
            nuisance_rng.standard_normal((6, 1, 1))
        if self._tactile_level > 0:
            self._tactile_offset = 0.3 * self._tactile_level * drift * np.ones((6, self.n_taxels, self.n_taxels))
        if vd == "none" and n_vis > 0:
            for g, rgba in ((self._g_board, BOARD_RGBA), (self._g_table, TABLE_RGBA)):
                m.geom_rgba[g] = (*((1 - n_vis) * np.asarray(rgba[:3]) + n_vis * nuisance_rng.uniform(0.1, 0.9, 3)), 1.0)
        if vd in ("color", "both"):
            hue = rng.uniform(0, 1, size=3)
            m.geom_rgba[self._g_board] = (*(0.15 + 0.8 * hue), 1.0)
            m.geom_rgba[self._g_table] = (*rng.uniform(0.1, 0.9, size=3), 1.0)
        if vd in ("mess", "both"):
            n = max(1, int(round(N_CLUTTER * min(1.0, self.distractor_level))))
            for g in self._g_clutter[:n]:
                for _ in range(50):   # rejection-sample a spot on the board away from the hole
                    xy = self.hole_xy + rng.uniform(-0.08, 0.08, size=2)
                    if np.linalg.norm(xy - self.hole_xy) > 0.04:
                        break
                half = rng.uniform(0.006, 0.016, size=3)
                m.geom_size[g] = half
                m.geom_pos[g] = (xy[0], xy[1], BOARD_TOP + half[2])
                m.geom_rgba[g] = (*rng.uniform(0, 1, size=3), 1.0)

    # ----- physics --------------------------------------------------------------------------
    def _peg_bottom(self) -> float:
        return float(self.data.qpos[2] - PEG_HALF_LEN)

    def _phase(self) -> int:
        """Stage from the physical state: 2 once the key is in the slot, 1 once over the hole."""
        if self._peg_bottom() < BOARD_TOP - 0.002:
            return 2
        if np.all(np.abs(self.data.qpos[:2] - self.hole_xy) < 0.004):
            return 1
        return 0

    def _contacts(self, record_wrench: bool, acc: list) -> None:
        m, d = self.model, self.data
        peg_pos = d.xpos[self._peg_body]
        f6 = np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = int(c.geom1), int(c.geom2)
            if g1 in self._peg_geoms:
                sign, other, mine = -1.0, g2, g1
            elif g2 in self._peg_geoms:
                sign, other, mine = 1.0, g1, g2
            else:
                continue
            if c.dist > 0:
                continue
            frame = c.frame.reshape(3, 3)
            key = (mine, other)
            last = self._contact_last.get(key, -10 ** 9)
            if self._substep - last > 10:       # a new touch (not chatter of an existing one)
                r = c.pos - peg_pos
                v = d.qvel
                vel = np.array([v[0] - v[3] * r[1], v[1] + v[3] * r[0], v[2]])
                speed = abs(float(vel @ frame[0]))
                if speed > 0.004:
                    off = (self._substep % self.n_substeps) * self.step_samples // self.n_substeps
                    self._audio.add("thud", min(1.0, speed / 0.06) * 0.8, off)
                    self._impacts += 1
            self._contact_last[key] = self._substep
            if record_wrench:
                mujoco.mj_contactForce(m, d, i, f6)
                f = sign * frame.T @ f6[:3]
                acc[0] += f
                acc[1] += np.cross(c.pos - acc[2], f)

    def step(self, action):
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (4,):
            raise ValueError(f"MultiSensory action must have shape (4,), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or inf: {action}")
        action = np.clip(action, -1.0, 1.0)
        m, d = self.model, self.data
        start = self._target.copy()
        goal = start + action.astype(np.float64) * STEP_SCALE
        if self.latched and action[2] < -STILL:
            self.broken = True               # pushing after the click breaks the latch
        self._impacts = 0
        ramp = self.n_substeps // 2
        n_avg = 20
        acc = [np.zeros(3), np.zeros(3), np.zeros(3)]
        for k in range(self.n_substeps):
            cmd = start + (goal - start) * min(1.0, (k + 1) / ramp)
            cmd = np.clip(cmd, d.qpos[:4] - COMPLIANCE, d.qpos[:4] + COMPLIANCE)
            d.ctrl[:] = cmd
            mujoco.mj_step(m, d)
            self._substep += 1
            record = k >= self.n_substeps - n_avg
            if record:   # torques about the grasp centre (the peg only yaws, so it is straight above)
                acc[2] = d.xpos[self._peg_body] + np.array([0.0, 0.0, GRASP_OFFSET])
            self._contacts(record, acc)
            if not self.latched and self._peg_bottom() <= self.latch_z:
                self.latched = True
                off = k * self.step_samples // self.n_substeps
                self._audio.add("click", float(self._noise_rng.uniform(0.6, 0.9)), off)
        self._target = np.asarray(d.ctrl[:4], dtype=np.float64).copy()
        R = d.xmat[self._peg_body].reshape(3, 3)
        self._wrench = (R.T @ (acc[0] / n_avg), R.T @ (acc[1] / n_avg))
        self._steps += 1
        self._stage = self._phase()
        still = bool(np.all(np.abs(action) < STILL))
        self._still = self._still + 1 if (self.latched and still) else 0
        success = self.latched and not self.broken and self._still >= HOLD_STEPS
        terminated = (success and self.terminate_on_success) or self.broken
        truncated = self._steps >= self.max_episode_steps and not terminated
        obs = self._obs(new_audio=True)
        info = {"is_success": bool(success), "init_state_index": self.init_state_index,
                "stage": int(self._stage), "latched": bool(self.latched), "broken": bool(self.broken),
                "impacts": int(self._impacts)}
        return obs, (1.0 if success else 0.0), bool(terminated), bool(truncated), info

    # ----- observation ----------------------------------------------------------------------
    def _ensure_renderer(self) -> FastRenderer:
        if self._renderer is None:
            ensure_headless_gl()
            self._renderer = FastRenderer(self.model, self.height, self.width, True)
        return self._renderer

    def contact_wrench(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean contact force/torque on the peg over the step's last 40 ms (peg frame, grasp centre)."""
        return self._wrench[0].copy(), self._wrench[1].copy()

    def _obs(self, new_audio: bool = False) -> dict[str, Any]:
        obs: dict[str, Any] = {K.STATE: self._target.astype(np.float32)}
        if self.cameras:
            r = self._ensure_renderer()
            for cam in self.cameras:
                obs[K.image_key(cam)] = r.rgb(self.data, cam)
        if new_audio:
            n = self.step_samples
            extra = self._background.render(n, self._audio) if self._background is not None else 0.0
            chunk = self._audio.render(n) + extra
            if n >= self.audio_samples:
                self._audio_buf[0] = chunk[-self.audio_samples:]
            else:
                self._audio_buf[0, :-n] = self._audio_buf[0, n:]
                self._audio_buf[0, -n:] = chunk
        obs[K.audio_key(self.mic)] = self._audio_buf.copy()
        obs[K.tactile_key(self.tactile_sensor)] = self._pads.taxels(
            self._wrench[0], self._wrench[1], self._noise_rng,
            noise=0.02 + 0.15 * self._tactile_level, offset=self._tactile_offset)
        obs[K.TASK] = self.instruction
        return obs

    def render(self):
        """A 224² frame of ``render_camera`` for videos."""
        if self._video_renderer is None:
            ensure_headless_gl()
            self._video_renderer = FastRenderer(self.model, 224, 224, True)
        return self._video_renderer.rgb(self.data, self.render_camera)

    def close(self):
        for r in (self._renderer, self._video_renderer):
            if r is not None:
                r.close()
        self._renderer = self._video_renderer = None

    # ----- privileged helpers (expert, tests) -----------------------------------------------
    @property
    def stage(self) -> int:
        return self._stage

    def expert(self):
        """Scripted expert: callable(obs) -> action; it reads the simulator (privileged), not obs."""
        from sim.multisensory_expert import PegKeywayExpert
        return PegKeywayExpert(self)
