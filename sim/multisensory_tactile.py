"""Finger-pad taxels from the contact wrench on the held peg.

The two finger pads (normals ±y in the peg frame) hold the peg; whatever the environment pushes on
the peg, the pads push back. A small linear-elastic pad model turns that wrench into per-taxel
pressure and shear, the fields a GelSight-style sensor images:

* pressure: grip preload, ±Fy/2 (squeeze one pad, relieve the other), a gradient along the pad's
  vertical axis from the tilting torque Tx (opposite on the two pads);
* shear along the pad's horizontal axis u: Fx/2, ∓Tz/(2r) from twisting, rotational field from Ty;
* shear along the vertical axis v: Fz/2, ±Tx/(2r), rotational field from Ty.

All fields are shaped by the Gaussian contact patch. Output: float32 (6, n, n) =
[pressure, shear_u, shear_v] for the +y pad then the -y pad.
"""

from __future__ import annotations

import numpy as np

from sim.multisensory_assets import PEG_RADIUS

PAD_HALF = 0.009       # taxel grid spans ±9 mm on each pad
PATCH_SIGMA = 0.004    # contact patch (Gaussian) width
GRIP = 1.0             # preload pressure (arbitrary units ~ N)


class FingerPads:
    def __init__(self, n_taxels: int = 12):
        self.n = int(n_taxels)
        c = np.linspace(-PAD_HALF, PAD_HALF, self.n)
        self.v, self.u = np.meshgrid(c[::-1], c, indexing="ij")   # row = vertical (top first), col = u
        self.g = np.exp(-(self.u ** 2 + self.v ** 2) / (2 * PATCH_SIGMA ** 2))
        self.uv = self.u / PAD_HALF, self.v / PAD_HALF

    def taxels(self, force: np.ndarray, torque: np.ndarray, rng: np.random.Generator | None = None,
               noise: float = 0.02, offset: np.ndarray | None = None) -> np.ndarray:
        """``force``/``torque`` (peg frame, on the peg, about the grasp centre) -> (6, n, n) float32."""
        fx, fy, fz = (float(x) for x in force)
        tx, ty, tz = (float(x) for x in torque)
        g, (un, vn) = self.g, self.uv
        r = PEG_RADIUS
        out = np.empty((6, self.n, self.n), np.float64)
        for i, side in enumerate((1.0, -1.0)):
            pressure = g * (GRIP + side * fy / 2 - side * (tx / r) * vn)
            shear_u = g * (fx / 2 - side * tz / (2 * r) + (ty / r) * vn)
            shear_v = g * (fz / 2 + side * tx / (2 * r) - (ty / r) * un)
            out[3 * i:3 * i + 3] = (pressure, shear_u, shear_v)
        if offset is not None:
            out += offset
        if rng is not None and noise > 0:
            out += noise * rng.standard_normal(out.shape)
        return out.astype(np.float32)
