"""MS-Bot samples from our HDF5 episodes, sensor-rig recordings and MS-Bot's own on-disk format."""

import numpy as np
import pytest
import torch

from policies.base import make_policy
from policies.msbot import MSBotConfig
from policies.msbot.data import MSBotDataset, classify_actions, stitch_rig_audio
from policies.msbot.msbot_format import (load_msbot_folder, preprocess_peg, preprocess_pour,
                                         write_msbot_episode)
from policies.msbot.tokens import INDEX_SUFFIX
from policystack import keys as K
from policystack.dataset import Episode, features_of
from policystack.errors import DatasetError

PRIMS = np.array([[0, 0], [1, 0], [0, 1]], np.float32)


def toy_episodes(n=3, T=20, seed=0):
    rng = np.random.default_rng(seed)
    eps = []
    for _ in range(n):
        obs = {K.image_key("cam"): rng.integers(0, 255, (T, 16, 16, 3), dtype=np.uint8),
               K.tactile_key("pad"): rng.standard_normal((T, 2, 4, 4)).astype(np.float32),
               K.audio_key("mic"): (0.1 * rng.standard_normal((T, 1, 3200))).astype(np.float32),
               K.STATE: rng.standard_normal((T, 2)).astype(np.float32)}
        acts = PRIMS[rng.integers(0, 3, T)]
        eps.append(Episode(obs=obs, actions=acts, rewards=np.zeros(T, np.float32),
                           dones=np.eye(1, T, T - 1, dtype=np.uint8)[0]))
    stages = [np.repeat([0, 1, 2], [7, 7, T - 14]) for _ in range(n)]
    return eps, stages


def test_history_holds_only_past_actions_and_stage_weights_follow_labels():
    eps, stages = toy_episodes()
    ds = MSBotDataset(eps, [K.image_key("cam")], 4, PRIMS, 5, stages, 3, 2, 1)
    b = ds.get_batch([0, 6, 7])
    cls = classify_actions(eps[0].actions, PRIMS)
    assert b[K.image_key("cam")].shape == (3, 4, 16, 16, 3)
    assert b["action_history"][0].tolist() == [-1] * 5                         # nothing before t = 0
    assert b["action_history"][1].tolist() == cls[1:6].tolist()                # t = 6: actions 1..5
    assert np.array_equal(b[K.image_key("cam")][0, 0], eps[0].obs[K.image_key("cam")][0])   # repeated start
    assert b["stage"].tolist() == [0, 0, 1]
    assert b["stage_weights"][1].tolist() == [0, 0, 1]                         # boundary window: both zero
    with pytest.raises(DatasetError):
        MSBotDataset(eps, [K.image_key("cam")], 4, PRIMS, 5, stages[:1], 3)
    # with DART-style demos the history is what was executed, the target what the expert wanted
    executed = [np.roll(ep.actions, 1, axis=0) for ep in eps]
    ds = MSBotDataset(eps, [K.image_key("cam")], 4, PRIMS, 5, stages, 3, executed=executed)
    b = ds.get_batch([6])
    assert b["action_history"][0].tolist() == classify_actions(executed[0], PRIMS)[1:6].tolist()
    torch.testing.assert_close(b["action"][0], torch.from_numpy(eps[0].actions[6]))


def test_deduplicated_batches_give_the_same_tokens():
    eps, stages = toy_episodes()
    spec = features_of(eps)
    cfg = MSBotConfig(n_obs_steps=15, primitives=PRIMS.tolist())
    cfg.tokenizer.channels, cfg.tokenizer.token_dim, cfg.tokenizer.audio_stream = 8, 16, True
    policy = make_policy(cfg, spec).eval()
    keys = [k for k in policy.config.input_spec.keys()]
    plain = MSBotDataset(eps, keys, 15, PRIMS, 10, stages, 3, zero_pad_keys=[K.audio_key("mic")])
    dedup = MSBotDataset(eps, keys, 15, PRIMS, 10, stages, 3, layout=policy.tokenizer.layout())
    rows = list(range(0, 20)) + [25, 39]                     # early (padded) and late samples
    a, b = plain.get_batch(rows), dedup.get_batch(rows)
    assert b[K.image_key("cam")].shape[0] < 6 * len(rows)    # fewer frames to encode
    assert K.audio_key("mic") + INDEX_SUFFIX in b
    with torch.no_grad():
        ta, _ = policy.tokenizer(a)
        tb, _ = policy.tokenizer(b)
    for k in ta:
        torch.testing.assert_close(ta[k], tb[k], atol=1e-4, rtol=1e-4)


def test_rig_audio_is_restitched_into_three_second_windows():
    sr, N, T = 16000, 16000, 12
    stream = np.random.default_rng(0).standard_normal(N + (T - 1) * 3200).astype(np.float32)
    ticks = np.arange(T) * 0.2
    ends = N + np.arange(T) * 3200
    windows = np.stack([stream[e - N:e][None] for e in ends])          # the rig's 1-s windows per tick
    ep = Episode(obs={K.audio_key("mic"): windows}, actions=np.zeros((T, 1), np.float32),
                 rewards=np.zeros(T, np.float32), dones=np.zeros(T, np.uint8))
    stitch_rig_audio([ep], [ticks], K.audio_key("mic"), sr, window_s=3.0)
    out = ep.obs[K.audio_key("mic")]
    assert out.shape == (T, 1, 48000)
    padded = np.concatenate([np.zeros(48000, np.float32), stream])
    for i in (0, 5, T - 1):
        np.testing.assert_allclose(out[i, 0], padded[ends[i]:ends[i] + 48000])


def test_reference_label_and_stage_rules():
    kept, raw, stages = preprocess_pour([0] * 12 + [2, 2, 0, 4, 4, 0, 0, 3, 0, 3])
    assert kept[0] == 11 and raw[0] == 0                       # waits at t <= 10 skipped
    assert 14 not in kept                                      # wait after a backward move: dropped
    assert raw[kept.index(20)] == 3                            # wait after rotate-back -> rotate-back
    assert stages[kept.index(15)] == 1 and stages[kept.index(17)] == 2 and stages[-1] == 3
    kept, raw, stages = preprocess_peg([1, 0, 0, 5, 6, 0, 6, 5, 5, 0])
    assert raw == [1, 5, 5, 5, 6, 6, 6, 5, 5, 0]
    assert stages == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]


def _write_pour(folder, t0=1000.0, n_ticks=24, click_at=3.05):
    rng = np.random.default_rng(0)
    ticks = t0 + 0.2 * np.arange(n_ticks)
    acts = [0] * 12 + [2, 2, 4, 4, 4, 0, 0, 0, 3, 3, 0, 3][:n_ticks - 12]
    frames = [np.full((48, 64, 3), 10 * i % 255, np.uint8) for i in range(int(n_ticks * 0.2 * 10) + 10)]
    ft = t0 - 0.5 + 0.1 * np.arange(len(frames))
    audio = np.zeros(int(44100 * (ticks[-1] - t0 + 1.0)), np.float32)
    k = int(44100 * click_at)
    audio[k:k + 200] = 0.8 * np.sin(np.arange(200) * 0.6)
    return write_msbot_episode(folder, acts, ticks, rng.standard_normal((n_ticks, 6)), frames, ft, frames, ft,
                               audio=audio, audio_rate=44100, audio_span=(t0, t0 + len(audio) / 44100))


def test_msbot_pour_folder_loads_with_audio_windows(tmp_path):
    folder = _write_pour(tmp_path / "pour" / "120-40-1")
    (ep,) = load_msbot_folder(tmp_path / "pour", task="pour")
    assert ep.obs[K.image_key("rgb")].shape[1:] == (96, 128, 3)
    assert ep.obs[K.tactile_key("gelsight")].shape[1:] == (96, 128, 3)
    assert ep.obs[K.audio_key("mic")].shape[1:] == (1, 48000)
    assert ep.obs[K.STATE].shape[1:] == (8,) and ep.obs[K.STATE][0, -2:].tolist() == [120.0, 40.0]
    stages = ep.attrs["stages"]
    assert len(stages) == len(ep) and stages[0] == 0 and stages.max() == 3
    # the click (3.05 s after the stream start) sits where a 3-s window ending at each tick puts it
    raw = ep.attrs["raw_actions"]
    assert set(np.unique(raw)) <= {0, 2, 3, 4}
    ticks = [1000.0 + 0.2 * t for t in range(24)]
    kept, _, _ = preprocess_pour([0] * 12 + [2, 2, 4, 4, 4, 0, 0, 0, 3, 3, 0, 3])
    for row, t in enumerate(kept):
        w = ep.obs[K.audio_key("mic")][row, 0]
        age = (ticks[t] - 1000.0) - 3.05                         # seconds since the click
        if 0.05 < age < 2.9:
            pos = 48000 - int(age * 16000)
            assert np.abs(w[pos - 400:pos + 400]).max() > 0.3
        elif age < -0.05:
            assert np.abs(w).max() < 1e-3


def test_msbot_peg_folder_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    ticks = 50.0 + 0.2 * np.arange(10)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(30)]
    ft = 49.5 + 0.1 * np.arange(30)
    write_msbot_episode(tmp_path / "peg" / "1", [1, 0, 0, 5, 6, 0, 6, 5, 5, 0], ticks, rng.standard_normal((10, 6)),
                        frames, ft, frames, ft, depth=frames)
    (ep,) = load_msbot_folder(tmp_path / "peg" / "1")
    assert K.image_key("depth") in ep.obs and ep.actions.shape == (10, 4)
    assert ep.attrs["stages"].tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(DatasetError):
        load_msbot_folder(tmp_path / "nothing")
    (tmp_path / "peg" / "1" / "00record.txt").write_text("garbage line\n")
    with pytest.raises(DatasetError):
        load_msbot_folder(tmp_path / "peg" / "1")


def test_inference_history_equals_the_training_sample():
    """What select_action stacks at step t is exactly what the dataset gives for sample t."""
    eps, stages = toy_episodes(1)
    spec = features_of(eps)
    cfg = MSBotConfig(n_obs_steps=15, primitives=PRIMS.tolist())
    cfg.tokenizer.channels, cfg.tokenizer.token_dim, cfg.tokenizer.audio_stream = 8, 16, True
    policy = make_policy(cfg, spec).eval()
    keys = list(policy.config.input_spec.keys())
    ds = MSBotDataset(eps, keys, 15, PRIMS, 10, stages, 3, zero_pad_keys=[K.audio_key("mic")])
    policy.reset()
    for t in range(len(eps[0])):
        stacked = policy._stack_history({k: eps[0].obs[k][t] for k in keys})
        ref = ds.get_batch([t])
        for k in keys:
            torch.testing.assert_close(stacked[k], ref[k], msg=f"{k} at t={t}")
