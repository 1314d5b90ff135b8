"""Contact sheet of a rig: a grid of what each sensor delivers at a few ticks, as one PNG.

Rows are ticks, columns are observation keys: images and tactile as pictures, depth with a
colour map (metres), audio as a waveform over its window with its spectrogram; each title shows
the sensor's skew at that tick.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from policystack import keys as K
from sensors.rig import Rig, RigObservation


def snapshots(rig: Rig, n: int = 4, interval: float = 0.5) -> list[RigObservation]:
    """``n`` observations ``interval`` seconds apart (the rig must be open)."""
    out = [rig.wait_ready()]
    t0 = time.monotonic()
    for k in range(1, n):
        left = t0 + k * interval - time.monotonic()
        if left > 0:
            time.sleep(left)
        out.append(rig.wait_ready())
    return out


def contact_sheet(ticks: list[RigObservation], path: str | os.PathLike, title: str = "", dpi: int = 80,
                  sensor_of: dict[str, str] | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = list(ticks[0].obs)
    sensor_of = sensor_of or {}
    rows, cols = len(ticks), len(keys)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    t_ref = ticks[0].t
    for r, o in enumerate(ticks):
        for c, k in enumerate(keys):
            ax = axes[r][c]
            v = o.obs[k]
            mod = K.modality_of(k)
            name = sensor_of.get(k, K.short_name(k))
            if mod == "depth":
                im = ax.imshow(v, cmap="viridis")
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="m")
            elif mod == "audio":
                x = v[0]
                ax.specgram(x, NFFT=256, Fs=1.0, noverlap=128, cmap="magma") if np.any(x) else ax.plot(x)
                ax.set_aspect("auto")
                ax2 = ax.twinx()
                ax2.plot(np.linspace(0, len(x), len(x)), x, color="w", lw=0.4, alpha=0.7)
                ax2.set_ylim(-1, 1)
                ax2.set_yticks([])
            else:
                ax.imshow(v)
            skew = o.skew.get(name)
            ax.set_title(f"{K.short_name(k)} t+{o.t - t_ref:.2f}s" + (f" skew {skew * 1e3:.0f}ms" if skew is not None else ""),
                         fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def preview(rig: Rig, path: str | os.PathLike, n: int = 4, interval: float = 0.5, title: str = "") -> Path:
    ticks = snapshots(rig, n, interval)
    sensor_of = {k: name for name, s in rig.sensors.items() for k in s.features.keys()}
    return contact_sheet(ticks, path, title=title, sensor_of=sensor_of)
