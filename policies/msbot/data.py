"""MS-Bot training samples from episodes: observation history, action class history, stage labels
and soft-boundary gate weights.

Sources: our HDF5 episodes (sim demos with a per-step ``stage`` dataset; sensor-rig recordings whose
audio windows are re-stitched into 3-s windows) and MS-Bot's own on-disk folders
(:mod:`policies.msbot.msbot_format`). All audio goes through the same log-Mel frontend in the policy.

Deliberate difference from the reference preprocessing: the action history holds only the actions
*before* the sample (the reference appends the current label first, which leaks it at training time).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from policystack import keys as K
from policystack.dataset import Episode, read_episodes
from policystack.errors import DatasetError
from policies.common.audio import resample
from policies.msbot.multisensory_policy import HISTORY_KEY, STAGE_KEY, STAGE_WEIGHTS_KEY
from policies.msbot.stage import soft_boundary_weights
from policies.msbot.tokens import INDEX_SUFFIX

log = logging.getLogger(__name__)


def classify_actions(actions: np.ndarray, primitives: np.ndarray) -> np.ndarray:
    """Nearest primitive (L2) of each action row."""
    a = np.asarray(actions, np.float32).reshape(-1, primitives.shape[1])
    d = ((a[:, None, :] - primitives[None]) ** 2).sum(-1)
    return d.argmin(-1).astype(np.int64)


class MSBotDataset(torch.utils.data.Dataset):
    """Sample (e, t): obs frames t-n+1..t (first frame repeated), action t, classes of actions < t."""

    def __init__(self, episodes: Sequence[Episode], obs_keys: Sequence[str], n_obs_steps: int,
                 primitives: np.ndarray, history_len: int, stages: Sequence[np.ndarray] | None = None,
                 n_stages: int = 1, boundary_before: int = 0, boundary_after: int = 0,
                 layout: dict | None = None, zero_pad_keys: Sequence[str] = (),
                 executed: Sequence[np.ndarray] | None = None):
        """``layout`` (``tokenizer.layout()``): hand over de-duplicated frames / audio chunks instead of
        stacked histories (same tokens, each frame encoded once per batch). ``zero_pad_keys``: history
        before the episode start is zeros for these keys (audio streams: silence), not the first frame.
        ``executed``: the actions actually executed per episode (the action history is made of these, as
        at run time; they differ from the labels when demos were collected with DART noise)."""
        self.episodes = list(episodes)
        self.zero_pad = set(zero_pad_keys)
        if layout and layout["audio_stream"]:
            self.zero_pad |= set(layout["audio_keys"])
        self.layout = layout
        self._streams: dict[tuple[str, int], np.ndarray] = {}
        self.obs_keys = [k for k in obs_keys if k != K.TASK]
        self.n_obs, self.L = n_obs_steps, history_len
        self.primitives = np.asarray(primitives, np.float32)
        self.classes = [classify_actions(ep.actions, self.primitives) for ep in self.episodes]
        if executed is not None:
            if [len(x) for x in executed] != [len(ep) for ep in self.episodes]:
                raise DatasetError("executed actions do not match the episodes' lengths")
            self.history_classes = [classify_actions(x, self.primitives) for x in executed]
        else:
            self.history_classes = self.classes
        self.stages = None
        if stages is not None:
            if len(stages) != len(self.episodes):
                raise DatasetError(f"{len(stages)} stage-label arrays for {len(self.episodes)} episodes")
            for i, (s, ep) in enumerate(zip(stages, self.episodes)):
                if len(s) != len(ep):
                    raise DatasetError(f"episode {i}: {len(s)} stage labels for {len(ep)} steps")
            self.stages = [np.asarray(s, np.int64) for s in stages]
            self.weights = [soft_boundary_weights(s, n_stages, boundary_before, boundary_after)
                            for s in self.stages]
        self.index = np.array([(e, t) for e, ep in enumerate(self.episodes) for t in range(len(ep))],
                              dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        return {k: (v[0] if torch.is_tensor(v) else v) for k, v in self.get_batch([i]).items()}

    def get_batch(self, indices) -> dict:
        idx = self.index[np.asarray(indices, np.int64)]
        dedupe = set(self.layout["keys"]) if self.layout else set()
        out: dict = {k: [] for k in self.obs_keys if k not in dedupe}
        acts, hist, stg, wts = [], [], [], []
        for e, t in idx:
            ep = self.episodes[e]
            raw = np.arange(t - self.n_obs + 1, t + 1)
            frames = np.clip(raw, 0, len(ep) - 1)
            for k in out:
                if self.n_obs == 1:
                    out[k].append(ep.obs[k][t])
                elif k in self.zero_pad and raw[0] < 0:
                    x = ep.obs[k][frames].copy()
                    x[raw < 0] = 0
                    out[k].append(x)
                else:
                    out[k].append(ep.obs[k][frames])
            acts.append(ep.actions[t])
            h = np.full(self.L, -1, np.int64)
            past = self.history_classes[e][max(0, t - self.L):t]
            if len(past):
                h[self.L - len(past):] = past
            hist.append(h)
            if self.stages is not None:
                stg.append(self.stages[e][t])
                wts.append(self.weights[e][t])
        batch = {k: torch.from_numpy(np.stack(v)) for k, v in out.items()}
        for k in dedupe:
            unique, index = self._dedupe(k, idx)
            batch[k] = torch.from_numpy(unique)
            batch[k + INDEX_SUFFIX] = torch.from_numpy(index)
        batch[K.ACTION] = torch.from_numpy(np.stack(acts).astype(np.float32))
        batch[HISTORY_KEY] = torch.from_numpy(np.stack(hist))
        if self.stages is not None:
            batch[STAGE_KEY] = torch.from_numpy(np.asarray(stg, np.int64))
            batch[STAGE_WEIGHTS_KEY] = torch.from_numpy(np.stack(wts))
        return batch

    # ----- de-duplicated frames ---------------------------------------------------------------
    def _dedupe(self, key: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lay = self.layout
        seen: dict[tuple, int] = {}
        items: list[np.ndarray] = []
        sel = np.asarray(lay["frames"])
        audio = key in lay["audio_keys"]
        n_tok = lay["n_chunks"] if audio else len(sel)
        index = np.zeros((len(idx), n_tok), np.int64)
        for row, (e, t) in enumerate(idx):
            pieces = self._audio_chunks(key, int(e), int(t)) if audio else \
                [((int(e), int(f)), None) for f in np.clip(t - self.n_obs + 1 + sel, 0, len(self.episodes[e]) - 1)]
            for j, (ident, arr) in enumerate(pieces):
                u = seen.get(ident)
                if u is None:
                    u = seen[ident] = len(items)
                    items.append(arr if arr is not None else self.episodes[ident[0]].obs[key][ident[1]])
                index[row, j] = u
        return np.stack(items), index

    def _audio_chunks(self, key: str, e: int, t: int) -> list[tuple[tuple, np.ndarray]]:
        """The n_chunks audio chunks of sample (e, t), each with an identity shared by equal chunks."""
        lay = self.layout
        W, n_chunks = lay["audio_window"], lay["n_chunks"]
        wc = W // n_chunks
        obs = self.episodes[e].obs[key]                                     # (T, C, N)
        T, C, N = obs.shape
        if lay["audio_stream"] and self.n_obs * N >= W:
            # the stream with silence before the episode start: equal chunks of neighbours are shared
            stream = self._streams.get((key, e))
            if stream is None:
                stream = np.concatenate([np.zeros((C, W), obs.dtype), obs.transpose(1, 0, 2).reshape(C, T * N)], -1)
                self._streams[(key, e)] = stream
            start = (t + 1) * N                                              # = window start in the padded stream
            chunks = []
            for j in range(n_chunks):
                a = start + j * wc
                ident = ("zeros",) if a + wc <= W else (e, "s", a)
                chunks.append((ident, stream[:, a:a + wc]))
            return chunks
        if lay["audio_stream"]:
            raw = np.arange(t - self.n_obs + 1, t + 1)
            x = obs[np.clip(raw, 0, T - 1)].copy()
            x[raw < 0] = 0
            flat = x.transpose(1, 0, 2).reshape(C, -1)
        else:
            flat = obs[t]
        if flat.shape[-1] < W:
            flat = np.concatenate([np.zeros((C, W - flat.shape[-1]), flat.dtype), flat], axis=-1)
        flat = flat[:, -W:]
        return [((e, "t", t, j), flat[:, j * wc:(j + 1) * wc]) for j in range(n_chunks)]

    def all_actions(self) -> np.ndarray:
        return np.concatenate([ep.actions for ep in self.episodes])


def load_hdf5(path: str | Path, keys: Sequence[str] | None = None, limit: int | None = None,
              with_stages: bool = True) -> tuple[list[Episode], list[np.ndarray] | None]:
    """Our HDF5 episodes and, when the file has them, per-step stage labels (``data/demo_i/stage``).
    Executed actions (``data/demo_i/executed_actions``), when present, go to ``ep.attrs["executed"]``."""
    from sim.multisensory_expert import read_executed_actions, read_stage_labels

    episodes = read_episodes(path, keys=keys, limit=limit)
    stages = None
    if with_stages:
        try:
            stages = read_stage_labels(path, limit=limit)
        except DatasetError as e:
            log.info("no stage labels in %s (%s); training without the gate penalty", path, e)
    executed = read_executed_actions(path, limit=limit)
    if executed is not None:
        for ep, x in zip(episodes, executed):
            ep.attrs["executed"] = x
    return episodes, stages


def executed_of(episodes: Sequence[Episode]) -> list[np.ndarray] | None:
    if all("executed" in ep.attrs for ep in episodes):
        return [np.asarray(ep.attrs["executed"], np.float32) for ep in episodes]
    return None


def stitch_rig_audio(episodes: Sequence[Episode], timing: Sequence[np.ndarray], key: str, sample_rate: int,
                     window_s: float = 3.0, target_rate: int = 16000) -> None:
    """Sensor-rig recordings store, per tick, the last N samples of the microphone; MS-Bot needs 3 s.

    Rebuild the stream from the samples new at each tick (tick times ``timing[i]``, seconds), resample
    to ``target_rate`` and replace ``obs[key]`` with (T, C, window) windows ending at each tick (in place).
    """
    for ep, t in zip(episodes, timing):
        x = np.asarray(ep.obs[key], np.float32)                      # (T, C, N)
        T, C, N = x.shape
        pieces = [x[0]]
        for i in range(1, T):
            new = int(round((t[i] - t[i - 1]) * sample_rate))
            new = min(max(new, 0), N)
            if new:
                pieces.append(x[i][:, N - new:])
        stream = np.concatenate(pieces, axis=-1)
        ends = np.cumsum([N] + [p.shape[-1] for p in pieces[1:]])
        if sample_rate != target_rate:
            stream = np.asarray(resample(stream, sample_rate, target_rate))
            ends = np.round(ends * target_rate / sample_rate).astype(np.int64)
        win = int(round(window_s * target_rate))
        padded = np.concatenate([np.zeros((C, win), np.float32), stream], axis=-1)
        ep.obs[key] = np.stack([padded[:, e:e + win] for e in ends]).astype(np.float32)


def load_rig_hdf5(path: str | Path, audio_sample_rate: int = 16000, window_s: float = 3.0,
                  limit: int | None = None) -> list[Episode]:
    """Episodes recorded with our sensor rig (``sensors.record``), audio re-stitched to 3-s windows."""
    import h5py

    episodes = read_episodes(path, limit=limit)
    timing = []
    with h5py.File(path, "r") as f:
        names = sorted((n for n in f["data"] if n.startswith("demo")), key=lambda n: int(n.rsplit("_", 1)[-1]))
        for n in names[:len(episodes)]:
            g = f["data"][n]
            if "timing" not in g or "t" not in g["timing"]:
                raise DatasetError(f"{path}:{n} has no timing/t (not a sensor-rig recording)")
            timing.append(np.asarray(g["timing"]["t"][()], np.float64))
    for key in [k for k in episodes[0].obs if K.modality_of(k) == "audio"]:
        stitch_rig_audio(episodes, timing, key, audio_sample_rate, window_s)
    return episodes
