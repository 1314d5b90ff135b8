"""Headless MuJoCo rendering made fast on software GL (llvmpipe): one renderer per env, no MSAA,
no shadows, no reflections by default (specs/sim_feasibility.md: 8-10x faster on llvmpipe).

``mujoco.Renderer`` makes its own GL context current on every render, which avoids gymnasium's
two-renderers-in-one-process bug (garbage or blank frames).
"""

from __future__ import annotations

import atexit
import os
import weakref

import mujoco
import numpy as np

_LIVE: "weakref.WeakSet[FastRenderer]" = weakref.WeakSet()


def _close_all() -> None:
    # free GL contexts while EGL is still loaded; at interpreter teardown __del__ would raise EGLError noise
    for r in list(_LIVE):
        try:
            r.close()
        except Exception:
            pass


def ensure_headless_gl() -> None:
    """Pick EGL when no GL platform was chosen (GLFW fails without a display)."""
    if not os.environ.get("MUJOCO_GL"):
        os.environ["MUJOCO_GL"] = "egl"
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl" if os.environ["MUJOCO_GL"] == "egl" else "osmesa")


class FastRenderer:
    def __init__(self, model: mujoco.MjModel, height: int, width: int, fast: bool = True):
        ensure_headless_gl()
        if fast:
            model.vis.quality.offsamples = 0  # must precede GL context creation
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        self.fast = fast
        self._r = mujoco.Renderer(model, height, width)
        self._depth_on = False
        if not _LIVE and not getattr(_close_all, "registered", False):
            # registered after mujoco's EGL module (imported with the first context), so it runs first
            atexit.register(_close_all)
            _close_all.registered = True
        _LIVE.add(self)

    def _scene(self, data: mujoco.MjData, camera: str | int) -> None:
        self._r.update_scene(data, camera=camera)
        if self.fast:
            self._r.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._r.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def rgb(self, data: mujoco.MjData, camera: str | int) -> np.ndarray:
        if self._depth_on:
            self._r.disable_depth_rendering()
            self._depth_on = False
        self._scene(data, camera)
        return self._r.render().copy()

    def depth(self, data: mujoco.MjData, camera: str | int) -> np.ndarray:
        """Depth in metres along the camera axis (float32 H x W)."""
        if not self._depth_on:
            self._r.enable_depth_rendering()
            self._depth_on = True
        self._scene(data, camera)
        return self._r.render().astype(np.float32, copy=True)

    def close(self) -> None:
        if self._r is not None:
            self._r.close()
            self._r = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
