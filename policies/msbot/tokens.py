"""Multi-sensory tokens shared by MS-Bot and its Concat / MULSA baselines.

Each token modality (a camera, a depth camera, a microphone, a tactile sensor) becomes ``n_frames``
tokens: frames are taken evenly from the observation history (MS-Bot: 6 frames over the last 3 s),
audio is the last 3 s cut into 6 chunks and turned into log-Mel spectrograms with the shared
frontend, and every frame/chunk goes through that modality's conv trunk and a linear projection
(MS-Bot: ResNet-18 + Linear(512, 128)). Also here: the discrete action codec (MS-Bot classifies
relative-motion primitives) and the action-history LSTM.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from policystack import keys as K
from policystack.errors import SpecMismatchError
from policystack.spec import Feature, Spec
from policies.common.audio import LogMelFrontend
from policies.common.augment import color_jitter, random_shift
from policies.common.normalizer import Normalizer
from policies.common.resnet import ResNet18Trunk
from policies.msbot.configuration_msbot import TOKEN_MODALITIES, TokenizerConfig

log = logging.getLogger(__name__)


INDEX_SUFFIX = "#index"   # batch[key + INDEX_SUFFIX]: (B, n_frames) indices into de-duplicated frames


def frame_indices(n_obs: int, n_frames: int) -> list[int]:
    """Evenly spaced history indices ending at the newest frame (MS-Bot: ≈0.6 s apart over 3 s)."""
    return [int(round(i)) for i in np.linspace(0, n_obs - 1, n_frames)]


def _kind(f: Feature) -> str:
    """How a key is encoded: 'rgb' (uint8 HxWx3), 'planar' (float CxHxW), 'depth' (HxW), 'vector', 'audio'."""
    mod = K.modality_of(f.key)
    if mod == "audio":
        return "audio"
    shape = tuple(f.shape)
    if f.dtype == "uint8" and len(shape) == 3 and shape[-1] == 3:
        return "rgb"
    if mod == "depth" or len(shape) == 2:
        return "depth"
    if len(shape) == 3:
        return "planar"
    return "vector"


class FrameTrunk(nn.Module):
    """Small conv trunk for one frame (stand-in for ResNet-18). Position matters here (where the peg is
    relative to the hole, which Mel band a sound is in), so the input gets two coordinate channels
    (CoordConv) and the output keeps both the flattened map and spatial-softmax keypoints
    (expected x, y per channel), then Linear -> LayerNorm -> token."""

    def __init__(self, in_ch: int, height: int, width: int, out_dim: int, channels: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        c, h, w = in_ch + 2, height, width
        while max(h, w) > 8:
            layers += [nn.Conv2d(c, channels, 3, stride=2, padding=1), nn.ReLU()]
            c, h, w = channels, (h + 1) // 2, (w + 1) // 2
        layers += [nn.Conv2d(c, channels, 3, stride=1, padding=1), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.register_buffer("coords", torch.stack(torch.meshgrid(
            torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")), persistent=False)
        self.register_buffer("grid", torch.stack(torch.meshgrid(
            torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")).flatten(1), persistent=False)
        self.proj = nn.Sequential(nn.Linear(channels * h * w + 2 * channels, out_dim), nn.LayerNorm(out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], 1)
        fmap = self.trunk(x)                                         # (N, C, h, w)
        att = torch.softmax(fmap.flatten(2), -1)                     # spatial softmax per channel
        keypoints = torch.einsum("ncp,kp->nck", att, self.grid).flatten(1)
        return self.proj(torch.cat([fmap.flatten(1), keypoints], 1))


class ActionCodec(nn.Module):
    """Continuous actions <-> discrete primitive classes (nearest primitive in L2)."""

    def __init__(self, primitives: Sequence[Sequence[float]] | None, action_dim: int):
        super().__init__()
        if not primitives:
            eye = np.eye(action_dim, dtype=np.float32)
            primitives = np.concatenate([np.zeros((1, action_dim), np.float32), eye, -eye])
        prims = torch.as_tensor(np.asarray(primitives, np.float32))
        if prims.ndim != 2 or prims.shape[1] != action_dim:
            raise SpecMismatchError(f"primitives must be (K, {action_dim}), got {tuple(prims.shape)}")
        self.register_buffer("primitives", prims)

    @property
    def n_classes(self) -> int:
        return int(self.primitives.shape[0])

    def classify(self, actions: torch.Tensor) -> torch.Tensor:
        a = actions.float().reshape(-1, actions.shape[-1])
        idx = torch.cdist(a, self.primitives.to(a.device)).argmin(-1)
        return idx.reshape(actions.shape[:-1])

    def decode(self, idx: torch.Tensor) -> torch.Tensor:
        return self.primitives[idx]


def primitives_from_actions(actions: np.ndarray, decimals: int = 3) -> list[list[float]]:
    """The distinct action rows of a demonstration set, as MS-Bot's class list (sorted, wait first)."""
    rows = np.unique(np.round(np.asarray(actions, np.float64).reshape(-1, actions.shape[-1]), decimals), axis=0)
    rows = sorted(rows.tolist(), key=lambda r: (np.abs(r).sum() > 0, r))
    return [[float(v) for v in r] for r in rows]


class HistoryEncoder(nn.Module):
    """LSTM over the one-hot action history (right-aligned, zero rows = no action yet)."""

    def __init__(self, n_classes: int, hidden: int):
        super().__init__()
        self.n_classes = n_classes
        self.lstm = nn.LSTM(n_classes, hidden, 1, batch_first=True)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """history: (B, L) int64 class ids, -1 = padding -> (B, hidden)."""
        onehot = torch.zeros(*history.shape, self.n_classes, device=history.device)
        valid = history >= 0
        onehot[valid] = nn.functional.one_hot(history[valid].long(), self.n_classes).float()
        out, _ = self.lstm(onehot)
        return out[:, -1]


class MultiSensoryTokenizer(nn.Module):
    """Observation batch -> per-modality tokens {key: (B, n_frames, d)} and a proprio embedding."""

    def __init__(self, cfg: TokenizerConfig, spec: Spec, n_obs_steps: int):
        super().__init__()
        self.cfg = cfg
        self.n_obs_steps = n_obs_steps
        self.frames = frame_indices(n_obs_steps, cfg.n_frames)
        self.keys = [f.key for f in spec if f.key != K.STATE and K.modality_of(f.key) in TOKEN_MODALITIES]
        if not self.keys:
            raise SpecMismatchError("the multi-sensory tokenizer found no image, depth, audio or tactile key "
                                    f"among the inputs {spec.keys()}")
        self.kinds = {k: _kind(spec[k]) for k in self.keys}
        self.shapes = {k: tuple(spec[k].shape) for k in self.keys}
        d = cfg.token_dim
        a = cfg.audio
        self.frontend = LogMelFrontend(a.sample_rate, a.n_fft, a.hop_length, a.n_mels, n_chunks=cfg.n_frames,
                                       window_s=a.window_s)
        enc = {}
        for k in self.keys:
            kind, shape = self.kinds[k], self.shapes[k]
            if kind == "rgb":
                enc[k] = self._trunk(3, shape[0], shape[1])
            elif kind == "depth":
                enc[k] = self._trunk(1, shape[0], shape[1])
            elif kind == "planar":
                enc[k] = self._trunk(shape[0], shape[1], shape[2])
            elif kind == "audio":
                _, n_mels, n_t = self.frontend.output_shape()
                enc[k] = self._trunk(shape[0], n_mels, n_t)
            else:
                n = int(np.prod(shape))
                enc[k] = nn.Sequential(nn.Linear(n, 128), nn.ReLU(), nn.Linear(128, d), nn.LayerNorm(d))
        self.encoders = nn.ModuleDict({k.replace(".", "__"): m for k, m in enc.items()})
        # float tactile / vector keys and the state are normalised with dataset statistics
        norm_shapes = {k: self.shapes[k] for k in self.keys if self.kinds[k] in ("planar", "vector")}
        self.state_dim = 0
        if cfg.use_state and K.STATE in spec:
            norm_shapes[K.STATE] = tuple(spec[K.STATE].shape)
            self.state_dim = cfg.state_dim
            self.state_proj = nn.Sequential(nn.Linear(int(np.prod(spec[K.STATE].shape)), cfg.state_dim), nn.ReLU())
        self.normalizer = Normalizer(norm_shapes)
        # log-Mel normalisation (fitted from data by the trainer; defaults fit the sim's noise floor)
        self.register_buffer("audio_mean", torch.full((a.n_mels, 1), -6.0))
        self.register_buffer("audio_std", torch.full((a.n_mels, 1), 3.0))

    def _trunk(self, in_ch: int, height: int, width: int) -> nn.Module:
        if self.cfg.trunk == "resnet18":
            return ResNet18Trunk(in_ch, self.cfg.token_dim)
        return FrameTrunk(in_ch, height, width, self.cfg.token_dim, self.cfg.channels)

    # ----- data prep --------------------------------------------------------------------------
    def _time_axis(self, x: torch.Tensor, key: str) -> torch.Tensor:
        """(B, n_obs, *shape) expected; a batch without a time axis gets one."""
        if x.ndim == len(self.shapes[key]) + 1:
            x = x.unsqueeze(1)
        return x

    def audio_window(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C, N) stacked audio observations -> (B, C, window) most recent samples.

        ``audio_stream=False`` (default): the newest observation is a window of the last N samples
        (a microphone's ``observation.audio``); shorter than the model window -> zero-padded on the left.
        ``audio_stream=True``: consecutive observations are consecutive, non-overlapping chunks of
        the stream (N = samples per control step, as the sim demos store them) and are concatenated.
        """
        x = x.float()
        win = self.frontend.window_samples
        if self.cfg.audio_stream:
            b, t, c, n = x.shape
            flat = x.permute(0, 2, 1, 3).reshape(b, c, t * n)
        else:
            flat = x[:, -1]
        if flat.shape[-1] < win:
            flat = nn.functional.pad(flat, (win - flat.shape[-1], 0))
        return flat[..., -win:]

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C, N) audio observations -> normalised (B, n_frames, C, n_mels, frames)."""
        mel = self.frontend(self.audio_window(x))                     # (B, C, n_chunks, n_mels, frames)
        mel = (mel - self.audio_mean) / self.audio_std
        return mel.transpose(1, 2)

    def fit_audio_stats(self, mels: torch.Tensor) -> None:
        """Per-Mel-bin mean/std from raw (un-normalised) log-Mel chunks (..., n_mels, frames)."""
        m = mels.transpose(-1, -2).reshape(-1, mels.shape[-2])
        self.audio_mean.copy_(m.mean(0).view(-1, 1))
        self.audio_std.copy_(m.std(0).clamp_min(1e-3).view(-1, 1))

    def convert(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Raw frames (N, *shape) -> float (N, C, H, W) or (N, D); audio chunks (N, C, n) -> log-Mel."""
        kind = self.kinds[key]
        if kind == "audio":
            return (self.frontend.log_mel(x.float()) - self.audio_mean) / self.audio_std
        if kind == "rgb":
            return x.movedim(-1, -3).float() / 255.0 - 0.5
        if kind == "depth":
            return (x.float().clamp(0, 3.0) / 3.0).unsqueeze(-3)
        flat = self.normalizer.normalize(key, x.reshape(x.shape[0], -1).float())
        return flat.reshape(x.shape) if kind == "planar" else flat

    def prepare(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Raw stacked frames (B, T, ...) -> float frames (B, n_frames, C, H, W) or (B, n_frames, D)."""
        kind = self.kinds[key]
        if kind == "audio":
            return self.log_mel(self._time_axis(x, key))
        x = self._time_axis(x, key)
        if x.shape[1] == self.n_obs_steps:
            x = x[:, self.frames]
        elif x.shape[1] != self.cfg.n_frames:
            raise SpecMismatchError(f"{key!r}: history of {x.shape[1]} frames, expected {self.n_obs_steps} "
                                    f"(or {self.cfg.n_frames} pre-selected)")
        b, t = x.shape[:2]
        out = self.convert(key, x.reshape(b * t, *x.shape[2:]))
        return out.reshape(b, t, *out.shape[1:])

    def layout(self) -> dict[str, Any]:
        """What a training dataset needs to hand over de-duplicated frames (see ``forward``)."""
        return {"frames": list(self.frames), "n_obs_steps": self.n_obs_steps,
                "keys": list(self.keys), "audio_keys": [k for k in self.keys if self.kinds[k] == "audio"],
                "audio_stream": bool(self.cfg.audio_stream), "audio_window": self.frontend.window_samples,
                "n_chunks": self.frontend.n_chunks}

    # ----- forward ----------------------------------------------------------------------------
    def _augment(self, key: str, frames: torch.Tensor) -> torch.Tensor:
        """Training-time augmentation of converted frames (N, C, H, W), drawn per frame as the reference's
        per-image transforms: ColorJitter (RGB: camera values, tactile: GelSight values, also on a
        normalised pressure/shear map, unclipped), then the random shift on RGB and depth."""
        kind, tactile = self.kinds[key], K.modality_of(key) == "tactile"
        jitter = self.cfg.tactile_jitter if tactile else self.cfg.rgb_jitter
        if kind == "rgb" and any(jitter):
            frames = color_jitter(frames + 0.5, *jitter) - 0.5        # convert() gives [0, 1] - 0.5
        elif kind == "planar" and tactile and any(jitter):
            frames = color_jitter(frames, *jitter, value_range=None)
        if kind in ("rgb", "depth") and self.cfg.image_shift > 0:
            frames = random_shift(frames, self.cfg.image_shift)
        return frames

    def _encode_frames(self, key: str, frames: torch.Tensor) -> torch.Tensor:
        if self.training and self.kinds[key] != "audio":
            frames = self._augment(key, frames)
        return self.encoders[key.replace(".", "__")](frames)

    def forward(self, batch: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Tokens per modality. A training batch may carry, per key, only the *unique* frames (or audio
        chunks) ``batch[key]`` (U, ...) plus ``batch[key + INDEX_SUFFIX]`` (B, n_frames) indexing them:
        overlapping histories of neighbouring samples are then encoded once (same result, far cheaper)."""
        tokens = {}
        for k in self.keys:
            if k not in batch:
                raise SpecMismatchError(f"batch lacks {k!r} (has {sorted(batch)})")
            index = batch.get(k + INDEX_SUFFIX)
            if index is not None:
                emb = self._encode_frames(k, self.convert(k, torch.as_tensor(batch[k])))
                tokens[k] = emb[torch.as_tensor(index, device=emb.device).long()]
                continue
            x = self.prepare(k, batch[k])
            b, t = x.shape[:2]
            tokens[k] = self._encode_frames(k, x.reshape(b * t, *x.shape[2:])).reshape(b, t, -1)
        cond = None
        if self.state_dim:
            s = batch[K.STATE]
            if s.ndim == 3:
                s = s[:, -1]
            cond = self.state_proj(self.normalizer.normalize(K.STATE, s.float()))
        return tokens, cond

    def set_stats(self, stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        self.normalizer.fit(stats)


def modality_label(key: str) -> str:
    """Short label for plots/logs: 'vision', 'audio', 'touch', 'depth'."""
    mod = K.modality_of(key)
    return {"images": "vision", "tactile": "touch"}.get(mod, mod)
