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


def spectrogram_db(x: np.ndarray, n_fft: int = 512, hop: int = 160) -> np.ndarray:
    """(freq, frames) power in dB re full scale, floored at -120 dB (silence stays finite)."""
    x = np.asarray(x, np.float64)
    if len(x) < n_fft:
        x = np.pad(x, (n_fft - len(x), 0))
    n = 1 + (len(x) - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(x, (n, n_fft), (x.strides[0] * hop, x.strides[0]))
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2 / (n_fft / 4) ** 2
    return 10 * np.log10(spec.T + 1e-12)


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


def contact_sheet(ticks: list[RigObservation], path: str | os.PathLike, title: str = "", dpi: int = 70,
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
                ax.imshow(spectrogram_db(x), origin="lower", aspect="auto", cmap="magma", vmin=-90, vmax=0,
                          extent=(0, len(x), 0, 1))
                ax.plot(np.arange(len(x)), 0.5 + 0.5 * np.clip(x, -1, 1), color="w", lw=0.3, alpha=0.8)
                ax.set_xlim(0, len(x))
                ax.set_ylim(0, 1)
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
