"""Configs: the dual encoder, its pretraining run, and the frozen-encoder LCBC probe policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from policies.base import PolicyConfig
from policies.common.clip import CLIPConfig
from policystack.config import register_config
from policystack.errors import ConfigError

VARIANTS = ("P", "T")
PAPER_LOGIT_SCALE = 100.0          # DecisionNCE's fixed κ, used when fine-tuning pretrained CLIP
CLIP_INIT_LOGIT_SCALE = 1 / 0.07   # CLIP's own starting temperature, for an encoder trained from scratch


@dataclass
class EncoderConfig:
    """The DecisionNCE dual encoder (φ image, ψ text), both emitting raw D-dim features.

    ``clip`` holds the CLIP sizes (``CLIPConfig.rn50()`` for the paper's model). ``text_tower``:
    ``clip`` = CLIP's text transformer (tokenizer ``bpe`` needs ``bpe_path``; ``hash`` needs no
    vocabulary file); ``minilm`` = the offline all-MiniLM-L6-v2 sentence encoder (frozen) followed by
    a trained linear projection to D, a CPU-friendly alternative for the small configuration.
    ``minilm_finetune``: train the MiniLM transformer too (the paper trains its whole text tower); its
    weights then live in the encoder's state dict (about 90 MB) instead of being re-read from the package.
    """

    clip: CLIPConfig = field(default_factory=CLIPConfig.small)
    text_tower: Literal["clip", "minilm"] = "clip"
    tokenizer: Literal["hash", "bpe"] = "hash"
    bpe_path: str | None = None
    minilm_finetune: bool = False

    def __post_init__(self) -> None:
        if self.text_tower not in ("clip", "minilm"):
            raise ConfigError(f"text_tower must be 'clip' or 'minilm', got {self.text_tower!r}")
        if self.minilm_finetune and self.text_tower != "minilm":
            raise ConfigError("minilm_finetune=True needs text_tower='minilm'")
        if self.tokenizer not in ("hash", "bpe"):
            raise ConfigError(f"tokenizer must be 'hash' or 'bpe', got {self.tokenizer!r}")
        if self.text_tower == "clip" and self.tokenizer == "bpe" and not self.bpe_path:
            raise ConfigError("tokenizer='bpe' needs bpe_path (CLIP's bpe_simple_vocab_16e6.txt.gz)")

    @classmethod
    def rn50(cls, bpe_path: str | None = None) -> "EncoderConfig":
        """The paper's encoder: CLIP RN50, D = 1024, CLIP BPE tokenizer."""
        return cls(clip=CLIPConfig.rn50(), text_tower="clip", tokenizer="bpe" if bpe_path else "hash",
                   bpe_path=bpe_path)


@register_config("pretrain", "decisionnce")
@dataclass
class PretrainConfig:
    """DecisionNCE pretraining (spec §1.3-1.5). Defaults are the CPU-sized run; paper values noted."""

    data: tuple[str, ...] = ()               # HDF5 episode files or folders of them
    image_key: str = "observation.images.corner2"
    holdout: tuple[str, ...] = ()            # task names (file stems) or instructions kept out of training
    exclude: tuple[str, ...] = ()            # also kept out, not evaluated (near-duplicates of held-out tasks)
    episodes_per_task: int | None = None     # first N episodes of each instruction (rest: evaluation)
    out_dir: str = "runs/decisionnce"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    init_from: str | None = None             # OpenAI CLIP weights or a DecisionNCE checkpoint (strict)
    variant: Literal["P", "T"] = "T"
    num_frames: int = 2
    batch_size: int = 16                     # per process (paper: 16 per GPU, no all-gather)
    steps: int = 2000                        # paper: 20k iterations
    lr: float = 3e-4                         # paper: 1e-5 constant (fine-tuning CLIP); higher from scratch
    text_lr: float | None = None             # lr of a pretrained text transformer being fine-tuned (None = lr)
    weight_decay: float = 1e-3               # coupled L2, not on biases / norm parameters
    adam_eps: float = 1e-6
    warmup_steps: int = 0
    logit_scale: float | None = None         # κ; None = 100 with init_from (paper), 1/0.07 from scratch
    crop_scale: tuple[float, float] = (0.2, 1.0)
    brightness: float = 0.5
    freeze_text: bool = False                # Robo-MUTUAL's encoder froze the text tower
    reverse_negatives: bool = False          # not in the paper: o_e->o_s as an extra negative (losses.py)
    log_every: int = 50
    save_every: int = 500
    seed: int = 0
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be 'P' or 'T', got {self.variant!r}")
        if self.num_frames < 2:
            raise ConfigError("num_frames must be >= 2 (a segment has a start and an end)")
        if self.variant == "P" and self.num_frames % 2:
            raise ConfigError("variant P pairs the first and second halves of the frames: num_frames must be even")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2 (in-batch negatives)")
        if self.steps < 0 or self.lr <= 0:
            raise ConfigError("steps must be >= 0 and lr > 0")
        if self.text_lr is not None and self.text_lr <= 0:
            raise ConfigError(f"text_lr must be > 0 (or None for lr), got {self.text_lr}")
        if self.logit_scale is not None and self.logit_scale <= 0:
            raise ConfigError(f"logit_scale must be > 0 (or None for automatic), got {self.logit_scale}")
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ConfigError(f"crop_scale {self.crop_scale} must satisfy 0 < lo <= hi <= 1")

    @property
    def scale(self) -> float:
        """The κ in use. Why not always 100: with a randomly initialised encoder the normalised -T
        difference is unrelated to the text features, so κ = 100 starts the loss near 11 nats (log B = 2.8)
        and the run first learns to make every φ(o_e) − φ(o_s) orthogonal to the text features, a
        plateau at loss ≈ log B that 1,900 steps on Meta-World did not leave. CLIP itself starts
        from 1/0.07 and only reaches 100 after pretraining, the point DecisionNCE fine-tunes from."""
        if self.logit_scale is not None:
            return self.logit_scale
        return PAPER_LOGIT_SCALE if self.init_from else CLIP_INIT_LOGIT_SCALE


@register_config("policy", "decisionnce")
@dataclass
class DecisionNCEConfig(PolicyConfig):
    """Language-conditioned BC probe on frozen DecisionNCE features (spec §1.7 / §4.1.6).

    Input to the MLP: [φ(o_t), ψ(l), state] -> chunk of actions, MSE. ``encoder_path`` is a saved
    encoder (``DualEncoder.save``); without it the frozen encoder is randomly initialised from
    ``encoder`` with ``encoder_seed`` (the baseline of the probe experiment).
    """

    encoder_path: str | None = None
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    encoder_seed: int = 0
    image_key: str | None = None             # default: the first image key of the input features
    state_indices: tuple[int, ...] | None = None  # a subset of observation.state (None = all, () = none)
    hidden_dims: tuple[int, ...] = (256, 256)
    lr: float = 1e-3
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hidden_dims:
            raise ConfigError("hidden_dims must name at least one hidden layer")
        if self.n_obs_steps != 1:
            raise ConfigError("the DecisionNCE probe sees one frame (n_obs_steps=1)")
