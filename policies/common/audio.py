"""Log-Mel audio frontend matching MS-Bot's (torch/numpy only; no torchaudio here).

MS-Bot turns the last 3 s of 16 kHz audio into 6 chunks of 0.5 s and takes a log-Mel spectrogram of
each: power spectrum (Hann window 400 = 25 ms, hop 160 = 10 ms, ``center=False``), 64 HTK-scale Mel
bands without area normalisation (torchaudio's ``MelSpectrogram`` defaults), ``log(x + 1e-8)``.
3 s -> (6, 64, 48). Real microphones record at 44.1/48 kHz, so :func:`resample` converts first
(windowed-sinc, like ``torchaudio.functional.resample``).

Stable API (the sensors' microphone driver and the MS-Bot loaders use it):
  ``LogMelFrontend(sample_rate=16000, n_fft=400, hop_length=160, n_mels=64, n_chunks=6, window_s=3.0)``
  ``frontend(wave)`` -> (..., n_chunks, n_mels, frames) for a torch tensor or numpy array (..., N)
  ``frontend.log_mel(wave)`` -> (..., n_mels, frames) over the whole signal
  ``frontend.output_shape(n_samples)``; ``frontend.window_samples``; ``resample(wave, orig, new)``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn

__all__ = ["LogMelFrontend", "mel_filterbank", "resample", "hz_to_mel", "mel_to_hz"]


def hz_to_mel(f):
    """HTK Mel scale (torchaudio's default ``mel_scale="htk"``)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, sample_rate: int, n_mels: int, f_min: float = 0.0,
                   f_max: float | None = None) -> np.ndarray:
    """Triangular Mel filters, shape (n_freqs, n_mels), peak 1, no area normalisation."""
    f_max = sample_rate / 2.0 if f_max is None else f_max
    all_freqs = np.linspace(0.0, sample_rate // 2, n_freqs)
    m_pts = np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    f_pts = mel_to_hz(m_pts)
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up)).astype(np.float32)


class LogMelFrontend(nn.Module):
    """3-s audio window -> chunked log-Mel spectrogram, as MS-Bot's data loader computes it."""

    def __init__(self, sample_rate: int = 16000, n_fft: int = 400, hop_length: int = 160, n_mels: int = 64,
                 n_chunks: int = 6, window_s: float = 3.0, center: bool = False, eps: float = 1e-8,
                 f_min: float = 0.0, f_max: float | None = None) -> None:
        super().__init__()
        if n_fft <= 0 or hop_length <= 0 or n_mels <= 0 or n_chunks <= 0 or sample_rate <= 0:
            raise ValueError("LogMelFrontend: sample_rate, n_fft, hop_length, n_mels, n_chunks must be > 0")
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.n_chunks = int(n_chunks)
        self.window_s = float(window_s)
        self.center = bool(center)
        self.eps = float(eps)
        self.window_samples = int(round(self.window_s * self.sample_rate))
        if self.window_samples % self.n_chunks:
            raise ValueError(f"window of {self.window_samples} samples does not split into {n_chunks} chunks")
        self.chunk_samples = self.window_samples // self.n_chunks
        if not self.center and self.chunk_samples < self.n_fft:
            raise ValueError(f"chunk of {self.chunk_samples} samples is shorter than n_fft={n_fft}")
        # periodic Hann window, as torch.hann_window's default (and torchaudio's)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        fb = mel_filterbank(self.n_fft // 2 + 1, self.sample_rate, self.n_mels, f_min, f_max)
        self.register_buffer("fbank", torch.from_numpy(fb), persistent=False)

    # -- shapes ------------------------------------------------------------------------------
    def n_frames(self, n_samples: int) -> int:
        if self.center:
            return n_samples // self.hop_length + 1
        return (n_samples - self.n_fft) // self.hop_length + 1

    def output_shape(self, n_samples: int | None = None) -> tuple[int, int, int]:
        """(n_chunks, n_mels, frames per chunk) for a window of ``n_samples`` (default: window_samples)."""
        n = self.window_samples if n_samples is None else int(n_samples)
        if n % self.n_chunks:
            raise ValueError(f"{n} samples do not split into {self.n_chunks} chunks")
        return self.n_chunks, self.n_mels, self.n_frames(n // self.n_chunks)

    # -- transforms --------------------------------------------------------------------------
    def log_mel(self, wave):
        """(..., N) waveform -> (..., n_mels, frames) log-Mel power spectrogram."""
        x, to_numpy = _as_tensor(wave)
        shape = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1]).to(self.window.dtype)
        if not self.center and flat.shape[-1] < self.n_fft:
            raise ValueError(f"signal of {flat.shape[-1]} samples is shorter than n_fft={self.n_fft}")
        spec = torch.stft(flat, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.n_fft,
                          window=self.window.to(flat.device), center=self.center, pad_mode="reflect",
                          normalized=False, onesided=True, return_complex=True)
        power = spec.real.square() + spec.imag.square()                       # (B, F, frames)
        mel = torch.matmul(power.transpose(-1, -2), self.fbank.to(flat.device)).transpose(-1, -2)
        out = torch.log(mel + self.eps).reshape(*shape, self.n_mels, mel.shape[-1])
        return out.numpy() if to_numpy else out

    def forward(self, wave):
        """(..., N) waveform, N = window_samples (or any multiple of n_chunks) -> (..., n_chunks, n_mels, frames).

        A shorter window is left-padded with zeros (the start of an episode), a longer one is cut to
        its last ``window_samples`` samples, so the result always describes the most recent audio.
        """
        x, to_numpy = _as_tensor(wave)
        n = x.shape[-1]
        if n < self.window_samples:
            x = torch.nn.functional.pad(x, (self.window_samples - n, 0))
        elif n > self.window_samples:
            x = x[..., n - self.window_samples:]
        chunks = x.reshape(*x.shape[:-1], self.n_chunks, self.chunk_samples)
        out = self.log_mel(chunks)
        return out.numpy() if to_numpy else out

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"n_mels={self.n_mels}, n_chunks={self.n_chunks}, window_s={self.window_s}")


def _as_tensor(wave) -> tuple[torch.Tensor, bool]:
    if isinstance(wave, torch.Tensor):
        return wave.float(), False
    arr = np.asarray(wave)
    if arr.dtype == np.int16:  # raw PCM -> [-1, 1), as soundfile/torchaudio load it
        arr = arr.astype(np.float32) / 32768.0
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)), True


@lru_cache(maxsize=16)
def _sinc_kernel(orig: int, new: int, width: int, rolloff: float) -> tuple[torch.Tensor, int]:
    base = min(orig, new) * rolloff
    w = int(math.ceil(width * orig / base))
    idx = torch.arange(-w, w + orig, dtype=torch.float64)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx
    t = (t * base).clamp(-width, width)
    window = torch.cos(t * math.pi / width / 2) ** 2
    t = t * math.pi
    scale = base / orig
    kernel = torch.where(t == 0, torch.tensor(1.0, dtype=t.dtype), torch.sin(t) / t) * window * scale
    return kernel.to(torch.float32), w


def resample(wave, orig_sr: int, new_sr: int, lowpass_filter_width: int = 6, rolloff: float = 0.99):
    """Band-limited (Hann-windowed sinc) resampling along the last axis, e.g. 44.1 kHz -> 16 kHz."""
    x, to_numpy = _as_tensor(wave)
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError("resample: sample rates must be > 0")
    if orig_sr == new_sr:
        return x.numpy() if to_numpy else x
    g = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // g, int(new_sr) // g
    kernel, w = _sinc_kernel(orig, new, lowpass_filter_width, rolloff)
    shape = x.shape[:-1]
    n = x.shape[-1]
    flat = x.reshape(-1, 1, n)
    flat = torch.nn.functional.pad(flat, (w, w + orig))
    y = torch.nn.functional.conv1d(flat, kernel.to(flat.dtype), stride=orig)      # (B, new, n_blocks)
    y = y.transpose(1, 2).reshape(flat.shape[0], -1)
    target = int(math.ceil(new * n / orig))
    out = y[..., :target].reshape(*shape, target)
    return out.numpy() if to_numpy else out
