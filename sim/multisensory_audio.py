"""Contact-sound synthesis at 16 kHz for the multi-sensory task.

Each simulated contact event becomes a short modal sound (a few exponentially decaying partials plus
a noise burst, the standard impact-sound model): the peg hitting the wooden board is a low "thud",
the snap latch engaging is a bright metallic "click". A sound that starts near the end of a control
step rings into the next one (a carry-over buffer). Background distractors (room noise, motor hum,
knocks from elsewhere) are mixed in by :class:`BackgroundNoise`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class SoundKind:
    freqs: tuple[float, ...]     # partial frequencies (Hz)
    decays: tuple[float, ...]    # partial decay time constants (s)
    gains: tuple[float, ...]
    burst_s: float               # broadband onset burst length (s)
    burst_gain: float
    length_s: float


SOUNDS = {
    # peg / key on the wooden board: low, damped
    "thud": SoundKind((190.0, 430.0, 980.0), (0.050, 0.030, 0.015), (1.0, 0.6, 0.3), 0.004, 0.25, 0.25),
    # snap latch: bright, short, metallic
    "click": SoundKind((2900.0, 4300.0, 6100.0), (0.020, 0.014, 0.009), (1.0, 0.8, 0.5), 0.002, 0.6, 0.12),
    # a knock somewhere else in the room (background distractor): mid, woody
    "knock": SoundKind((260.0, 610.0, 1500.0), (0.040, 0.025, 0.012), (1.0, 0.5, 0.3), 0.003, 0.3, 0.2),
}


def synth(kind: str, strength: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One event's waveform; partials are jittered ±5 % and phases random, so no two events are equal."""
    s = SOUNDS[kind]
    n = int(s.length_s * sample_rate)
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    for f, tau, g in zip(s.freqs, s.decays, s.gains):
        f = f * rng.uniform(0.95, 1.05)
        out += g * np.exp(-t / tau) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    nb = max(1, int(s.burst_s * sample_rate))
    out[:nb] += s.burst_gain * rng.standard_normal(nb) * np.linspace(1.0, 0.0, nb)
    out /= max(1e-9, np.abs(out).max())
    return (strength * out).astype(np.float32)


class ContactAudio:
    """Schedules contact sounds inside a control step and renders the step's samples."""

    def __init__(self, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE, noise_floor: float = 0.002):
        self.rng = rng
        self.sample_rate = sample_rate
        self.noise_floor = noise_floor
        self._carry = np.zeros(0, np.float32)
        self._pending: list[tuple[int, np.ndarray]] = []
        self.events: list[tuple[str, float]] = []  # (kind, strength) heard in the current step

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._carry = np.zeros(0, np.float32)
        self._pending.clear()
        self.events.clear()

    def add(self, kind: str, strength: float, offset: int) -> None:
        """An event ``offset`` samples into the current step, amplitude ``strength`` (0..1)."""
        strength = float(np.clip(strength, 0.0, 1.0))
        if strength <= 0:
            return
        self._pending.append((int(offset), synth(kind, strength, self.rng, self.sample_rate)))
        self.events.append((kind, strength))

    def render(self, n: int) -> np.ndarray:
        """The ``n`` samples of the step just simulated (sensor noise floor included)."""
        total = max([n, len(self._carry)] + [o + len(w) for o, w in self._pending])
        buf = np.zeros(total, np.float32)
        buf[:len(self._carry)] += self._carry
        for o, w in self._pending:
            buf[o:o + len(w)] += w
        self._pending.clear()
        self._carry = buf[n:].copy()
        out = buf[:n] + self.noise_floor * self.rng.standard_normal(n).astype(np.float32)
        return out


class BackgroundNoise:
    """Audio distractor: coloured room noise, a motor hum and random knocks (none sounds like the click)."""

    def __init__(self, rng: np.random.Generator, level: float = 0.05, knock_rate_hz: float = 1.0,
                 sample_rate: int = SAMPLE_RATE):
        self.rng = rng
        self.level = level
        self.knock_rate = knock_rate_hz
        self.sample_rate = sample_rate
        self._phase = rng.uniform(0, 2 * np.pi)
        self._hum_f = rng.uniform(90.0, 130.0)
        self._lp = 0.0

    def render(self, n: int, audio: ContactAudio) -> np.ndarray:
        white = self.rng.standard_normal(n)
        # one-pole low-pass gives a brownish room rumble; mix with some white noise
        a = 0.97
        brown, _ = lfilter([1 - a], [1, -a], white, zi=[a * self._lp])
        self._lp = float(brown[-1]) if n else self._lp
        t = (np.arange(n) / self.sample_rate)
        hum = 0.4 * np.sin(2 * np.pi * self._hum_f * t + self._phase) + \
            0.2 * np.sin(2 * np.pi * 2 * self._hum_f * t + self._phase)
        self._phase = (self._phase + 2 * np.pi * self._hum_f * n / self.sample_rate) % (2 * np.pi)
        noise = self.level * (0.6 * white + 6.0 * brown + hum)
        # knocks from elsewhere land in the contact buffer so they can ring into the next step
        k = self.rng.poisson(self.knock_rate * n / self.sample_rate)
        for _ in range(k):
            audio.add("knock", self.rng.uniform(0.2, 0.6), int(self.rng.integers(0, n)))
        return noise.astype(np.float32)
