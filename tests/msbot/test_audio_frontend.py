"""The shared log-Mel frontend (policies/common/audio.py) computes MS-Bot's audio input."""

import numpy as np
import pytest
import torch

from policies.common.audio import LogMelFrontend, hz_to_mel, mel_filterbank, mel_to_hz, resample


def test_three_seconds_give_six_chunks_of_64_mels_by_48_frames():
    f = LogMelFrontend()
    assert f.output_shape() == (6, 64, 48)
    x = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
    assert f(x).shape == (6, 64, 48)
    assert f(torch.from_numpy(x)).shape == (6, 64, 48)
    assert f(torch.zeros(4, 1, 48000)).shape == (4, 1, 6, 64, 48)


def test_numpy_and_torch_inputs_agree_and_int16_is_scaled():
    f = LogMelFrontend()
    x = (np.random.default_rng(1).standard_normal(48000) * 3000).astype(np.int16)
    a = f(x)
    b = f(torch.from_numpy(x.astype(np.float32) / 32768.0)).numpy()
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_silence_is_log_eps_and_short_windows_are_left_padded():
    f = LogMelFrontend()
    out = f(np.zeros(48000, np.float32))
    np.testing.assert_allclose(out, np.log(1e-8), atol=1e-5)
    tail = np.random.default_rng(2).standard_normal(8000).astype(np.float32)
    short = f(tail)                              # only the newest 0.5 s: goes into the last chunk
    np.testing.assert_allclose(short[:5], np.log(1e-8), atol=1e-5)
    full = f(np.concatenate([np.zeros(40000, np.float32), tail]))
    np.testing.assert_allclose(short, full, atol=1e-5)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 4000.0])
def test_a_tone_peaks_in_the_mel_band_of_its_frequency(freq):
    f = LogMelFrontend()
    t = np.arange(48000) / 16000
    out = f(np.sin(2 * np.pi * freq * t).astype(np.float32))
    band = int(out[2].mean(-1).argmax())
    centres = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(8000), 66))[1:-1]
    assert abs(centres[band] - freq) <= 0.12 * freq + 40


def test_filterbank_is_triangles_with_unit_peaks():
    fb = mel_filterbank(201, 16000, 64)
    assert fb.shape == (201, 64)
    assert np.all(fb >= 0) and np.all(fb.max(0) <= 1.0 + 1e-6) and fb.max() > 0.9


def test_resample_44k1_to_16k_keeps_frequency_and_amplitude():
    t = np.arange(44100) / 44100
    y = resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 44100, 16000)
    assert y.shape == (16000,)
    ref = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    np.testing.assert_allclose(y[200:-200], ref[200:-200], atol=2e-3)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError):
        LogMelFrontend(n_chunks=7)                      # 48000 samples do not split in 7
    with pytest.raises(ValueError):
        LogMelFrontend(n_fft=0)
