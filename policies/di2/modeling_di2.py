"""DI² policy: RGB (+ depth tokens from GT depth, the DCM, and/or the codebook) -> 6-d arm + gripper.

One module holds every part (RGB branch, depth branch, DCM, codebook, fusion, LSTM head); the
training stages (``train_di2.py``) choose which parts learn, and ``config.depth_source`` chooses where
depth tokens come from. With ``depth_source`` in ("none", "dcm", "dcm_vq") the policy's input spec has
no depth key and the depth encoder is never called: RGB-only deployment.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policystack import keys as K
from policystack.errors import SpecMismatchError
from policystack.spec import Feature, Spec
from policies.base import Policy, register_policy
from policies.common.encoders import MLP
from policies.common.normalizer import Normalizer
from policies.di2.codebook import DepthAwareCodebook
from policies.di2.configuration_di2 import DEPTH_SOURCES, NEEDS_DEPTH, DI2Config
from policies.di2.depth import default_shift_pads, prepare_depth, prepare_rgb, shared_random_shift
from policies.di2.modules import TEXT_DIM, GatedFusion, PatchEncoder, PerceiverResampler, TextEmbedder

# parameter groups the stages freeze or train (prefixes of parameter names)
RGB_ENCODER = ("rgb_encoder",)
RGB_RESAMPLER = ("rgb_resampler",)
DEPTH_BRANCH = ("depth_encoder", "depth_resampler")
DCM = ("dcm",)
CODEBOOK = ("codebook",)
LM_BLOCKS = ("fusion.lm", "fusion.norm")
POLICY_HEAD = ("fusion.text_proj", "fusion.queries", "fusion.stream_embed", "fusion.xattn",
               "lstm", "arm_head", "grip_head")


def _grad_if_trainable(module: nn.Module):
    """Run a frozen module without building a graph (saves the backward of encoders in stages 1-3)."""
    trainable = any(p.requires_grad for p in module.parameters())
    return contextlib.nullcontext() if trainable and torch.is_grad_enabled() else torch.no_grad()


@register_policy
class DI2Policy(Policy):
    name = "di2"
    config_class = DI2Config
    # checkpoints from before DI2Config.depth_encoder existed have their own depth encoder
    legacy_config_defaults = {"depth_encoder": "own"}

    def __init__(self, config: DI2Config):
        super().__init__(config)
        spec = config.input_spec
        cams = config.cameras
        img_keys = [K.image_key(c) for c in cams]
        missing = [k for k in img_keys if k not in spec]
        if missing:
            raise SpecMismatchError(f"di2: input features lack {missing}; build the policy with features "
                                    f"from an env or dataset that has cameras {cams}")
        h, w = spec[img_keys[0]].shape[:2]
        if h != w or any(spec[k].shape[:2] != (h, w) for k in img_keys):
            raise SpecMismatchError(f"di2 needs square images of one size for every camera, got "
                                    f"{[spec[k].shape for k in img_keys]}")
        self.image_size = int(h)
        self.shift_pads = tuple(config.shift_pads) or default_shift_pads(len(cams), self.image_size)
        d = config.dim
        self.rgb_encoder = PatchEncoder(3, h, config.patch_grid, d, config.encoder_channels)
        self.rgb_resampler = PerceiverResampler(d, config.resampler_depth, config.heads, config.n_tokens)
        # "shared": depth goes through rgb_encoder (frozen after the RGB stage), so there is no module here
        self.depth_encoder = (PatchEncoder(3, h, config.patch_grid, d, config.encoder_channels)
                              if config.depth_encoder == "own" else None)
        self.depth_resampler = PerceiverResampler(d, config.resampler_depth, config.heads, config.n_tokens)
        self.dcm = PerceiverResampler(d, config.dcm_depth, config.heads, config.n_tokens)
        self.codebook = DepthAwareCodebook(config.codebook_size, d, config.commitment_beta, config.usage_decay)
        self.text = TextEmbedder(config.text_encoder)
        self.fusion = GatedFusion(d, config.heads, config.fusion_depth, TEXT_DIM, config.n_query_tokens,
                                  n_streams=2 * len(cams), gate_init=config.gate_init, dropout=config.dropout)
        self.lstm = nn.LSTM(d, config.lstm_hidden, config.lstm_layers, batch_first=True,
                            dropout=config.dropout if config.lstm_layers > 1 else 0.0)
        a = config.action_dim
        if a < 2:
            raise SpecMismatchError(f"di2 needs an action with arm dims + a gripper dim, got {a}-d")
        self.arm_head = MLP(config.lstm_hidden, config.lstm_hidden, a - 1, layers=3)
        self.grip_head = MLP(config.lstm_hidden, config.lstm_hidden, 1, layers=3)
        self.normalizer = Normalizer({K.ACTION: (a,)}, mode="min_max")

    # ----- configuration -------------------------------------------------------------------
    def set_stats(self, stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        self.normalizer.fit({K.ACTION: stats[K.ACTION]})

    def set_depth_source(self, source: str, stage: str | None = None) -> "DI2Policy":
        """Switch where depth tokens come from; the input spec gains/loses the depth keys to match."""
        if source not in DEPTH_SOURCES:
            raise SpecMismatchError(f"unknown depth_source {source!r}; choose from {DEPTH_SOURCES}")
        feats = {k: v for k, v in self.config.input_features.items() if K.modality_of(k) != "depth"}
        if source in NEEDS_DEPTH:
            for c in self.config.cameras:
                feats[K.depth_key(c)] = Feature(K.depth_key(c), (self.image_size, self.image_size),
                                                "float32").to_dict()
        self.config = dataclasses.replace(self.config, depth_source=source, input_features=feats,
                                          stage=stage or self.config.stage)
        self.reset()
        return self

    # ----- tokens --------------------------------------------------------------------------
    def _views(self, batch: Mapping[str, Any], with_depth: bool, augment: bool):
        """Per camera: (RGB (N,3,H,W), depth (N,3,H,W) or None), N = B*W; one shared shift per frame."""
        views = []
        for cam, pad in zip(self.config.cameras, self.shift_pads):
            img = batch[K.image_key(cam)]
            rgb = prepare_rgb(img.reshape(-1, *img.shape[-3:]).to(self.device))
            depth = None
            if with_depth:
                key = K.depth_key(cam)
                if key not in batch:
                    raise SpecMismatchError(f"di2 depth_source needs {key!r} but the batch lacks it")
                dm = batch[key]
                depth = prepare_depth(dm.reshape(-1, *dm.shape[-2:]).to(self.device),
                                      self.config.depth_min, self.config.depth_far(cam))
            if augment:
                rgb, depth = shared_random_shift(rgb, depth, pad)
            views.append((rgb, depth))
        return views

    def rgb_tokens(self, rgb: torch.Tensor) -> torch.Tensor:
        with _grad_if_trainable(self.rgb_encoder):
            feat = self.rgb_encoder(rgb)
        with _grad_if_trainable(self.rgb_resampler):
            return self.rgb_resampler(feat)

    @property
    def depth_image_encoder(self) -> nn.Module:
        """What encodes the depth image: its own encoder, or the (frozen) RGB encoder when shared."""
        return self.depth_encoder if self.depth_encoder is not None else self.rgb_encoder

    def depth_tokens(self, depth: torch.Tensor) -> torch.Tensor:
        encoder = self.depth_image_encoder
        with _grad_if_trainable(encoder):
            feat = encoder(depth)
        with _grad_if_trainable(self.depth_resampler):
            return self.depth_resampler(feat)

    def predicted_depth_tokens(self, rgb_tok: torch.Tensor) -> torch.Tensor:
        with _grad_if_trainable(self.dcm):
            return self.dcm(rgb_tok)

    def visual_tokens(self, batch: Mapping[str, Any], source: str, augment: bool):
        """[(stream id, tokens)] for the fusion: RGB per camera, then depth per camera unless 'none'."""
        views = self._views(batch, with_depth=source in NEEDS_DEPTH, augment=augment)
        n = len(views)
        out = []
        rgb_toks = [self.rgb_tokens(rgb) for rgb, _ in views]
        out += list(enumerate(rgb_toks))
        for i, ((_, depth), r) in enumerate(zip(views, rgb_toks)):
            if source == "none":
                continue
            tok = self.depth_tokens(depth) if source in NEEDS_DEPTH else self.predicted_depth_tokens(r)
            if source.endswith("_vq"):
                tok = self.codebook.quantize(tok)
            out.append((n + i, tok))
        return out

    # ----- policy --------------------------------------------------------------------------
    def _time_shape(self, batch: Mapping[str, Any]) -> tuple[int, int]:
        img = batch[K.image_key(self.config.cameras[0])]
        return (img.shape[0], img.shape[1]) if img.dim() == 5 else (img.shape[0], 1)

    def _heads(self, batch: Mapping[str, Any], source: str, augment: bool):
        b, t = self._time_shape(batch)
        text = self.text(list(batch[K.TASK])).to(self.device)          # (B, text_dim), frozen
        text = text.repeat_interleave(t, dim=0)                         # one per frame
        feat = self.fusion(text, self.visual_tokens(batch, source, augment)).view(b, t, -1)
        hidden, _ = self.lstm(feat)
        return torch.tanh(self.arm_head(hidden)), self.grip_head(hidden).squeeze(-1)

    def predict_action_chunk(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """(B, 1, A): the LSTM re-runs over the window and the last step's action is returned."""
        arm, grip = self._heads(batch, self.config.depth_source, augment=False)
        full = torch.cat([arm[:, -1:], torch.zeros_like(arm[:, -1:, :1])], dim=-1)
        action = self.normalizer.unnormalize(K.ACTION, full)
        action[..., -1] = torch.where(grip[:, -1:] > 0, 1.0, -1.0)  # sigmoid > 0.5 -> close (+1)
        return action

    def action_loss(self, batch: Mapping[str, Any], source: str | None = None):
        """Huber on normalised arm actions + gripper_loss_weight * BCE, over every valid window step."""
        cfg = self.config
        source = source or cfg.depth_source
        arm, grip = self._heads(batch, source, augment=self.training)
        target = self.normalizer.normalize(K.ACTION, batch[K.ACTION].to(self.device).float())
        if target.dim() == 2:
            target = target.unsqueeze(1)
        raw_grip = batch[K.ACTION][..., -1].to(self.device).float().view(grip.shape)
        grip_target = ((raw_grip + 1) / 2).clamp(0, 1)
        mask = batch.get("valid")
        mask = torch.ones_like(grip) if mask is None else mask.to(self.device).float().view(grip.shape)
        denom = mask.sum().clamp(min=1)
        huber = F.huber_loss(arm, target[..., :-1], delta=cfg.huber_delta, reduction="none").mean(-1)
        bce = F.binary_cross_entropy_with_logits(grip, grip_target, reduction="none")
        arm_loss = (huber * mask).sum() / denom
        grip_loss = (bce * mask).sum() / denom
        loss = arm_loss + cfg.gripper_loss_weight * grip_loss
        acc = (((grip > 0).float() == (grip_target > 0.5).float()).float() * mask).sum() / denom
        return loss, {"loss": float(loss.detach()), "arm": float(arm_loss.detach()),
                      "grip_bce": float(grip_loss.detach()), "grip_acc": float(acc)}

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.action_loss(batch)

    # ----- stage 1 and 2 objectives ----------------------------------------------------------
    @torch.no_grad()
    def token_targets(self, batch: Mapping[str, Any], augment: bool):
        """Frozen (RGB tokens, GT depth tokens) per camera, under one shared shift per frame."""
        views = self._views(batch, with_depth=True, augment=augment)
        return [(self.rgb_tokens(rgb), self.depth_tokens(depth)) for rgb, depth in views]

    def dcm_loss(self, rgb_tok: torch.Tensor, depth_tok: torch.Tensor):
        """Stage 1: MSE(DCM(R), D) on frozen tokens (cameras stacked on the batch axis, so the mean
        over cameras of equal size is the reference's ½[MSE_static + MSE_gripper])."""
        loss = F.mse_loss(self.dcm(rgb_tok), depth_tok)
        return loss, {"loss": float(loss.detach())}

    def dac_loss(self, depth_tok: torch.Tensor, update: bool = True):
        """Stage 2: MSE(z_st, z) + VQ loss on frozen GT depth tokens; dead codes restart when ``update``."""
        z_st, vq, info = self.codebook(depth_tok, update=update)
        loss = F.mse_loss(z_st, depth_tok) + vq
        return loss, {"loss": float(loss.detach()), "perplexity": info["perplexity"],
                      "active": info["active"], "reinit": info["reinit"],
                      "quant_mse": float(F.mse_loss(z_st.detach(), depth_tok))}

    # ----- parameter groups -------------------------------------------------------------------
    def set_trainable(self, prefixes: tuple[str, ...]) -> list[str]:
        """Freeze every parameter except those whose name starts with one of ``prefixes``."""
        names = []
        for name, p in self.named_parameters():
            p.requires_grad_(name.startswith(prefixes))
            if p.requires_grad:
                names.append(name)
        return names
