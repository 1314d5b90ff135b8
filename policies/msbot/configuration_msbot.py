"""MS-Bot configuration ("Play to the Score", Feng et al., CoRL 2024), sized for CPU by default.

Paper/code values are noted where ours differ: token_dim 128, 8 heads and ResNet-18 trunks in the
paper; here small conv trunks, 64-d tokens and 4 heads (head dim 16 in both).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policystack import keys as K
from policystack.config import ConfigError, register_config
from policystack.spec import Spec
from policies.base import PolicyConfig
from policies.common.balance import BalanceConfig

# modality kinds the tokenizer can encode (per observation key)
TOKEN_MODALITIES = ("images", "depth", "audio", "tactile")
TRUNKS = ("small", "resnet18")


@dataclass
class AudioFrontendConfig:
    """MS-Bot's log-Mel: 3 s at 16 kHz -> 6 chunks x 64 mels x 48 frames (25-ms window, 10-ms hop)."""

    sample_rate: int = 16000
    window_s: float = 3.0
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 64


@dataclass
class TokenizerConfig:
    n_frames: int = 6              # frames (tokens) per modality taken from the history (MS-Bot: 6 over 3 s)
    token_dim: int = 64            # paper: 128
    channels: int = 32             # conv trunk width (paper: ResNet-18)
    # per-frame encoder: "small" (CoordConv trunk sized for CPU) | "resnet18" (the reference's; ImageNet
    # weights through the trainer's trunk_weights)
    trunk: str = "small"
    state_dim: int = 32            # proprioception embedding (plays the role of pouring's mass embedding)
    use_state: bool = True
    history_len: int = 50          # one-hot action history fed to the LSTM (paper: 200 pour / 100 peg)
    image_shift: int = 3           # DrQ random shift in training (paper: random crop 105x140 -> 96x128)
    # ColorJitter (brightness, contrast, saturation) in training, the reference's values; (0, 0, 0) = off.
    # Tactile maps here are normalised pressure/shear planes, so only gain and contrast apply to them.
    rgb_jitter: tuple[float, float, float] = (0.2, 0.02, 0.02)
    tactile_jitter: tuple[float, float, float] = (0.2, 0.2, 0.2)
    # audio observations: False = each holds the last N samples (a microphone window); True = consecutive
    # observations are consecutive non-overlapping chunks of the stream (compact sim demos)
    audio_stream: bool = False
    audio: AudioFrontendConfig = field(default_factory=AudioFrontendConfig)

    def __post_init__(self) -> None:
        if self.n_frames < 1 or self.token_dim < 8 or self.history_len < 1:
            raise ConfigError("tokenizer: need n_frames >= 1, token_dim >= 8, history_len >= 1")
        if self.trunk not in TRUNKS:
            raise ConfigError(f"tokenizer.trunk must be one of {TRUNKS}, got {self.trunk!r}")
        for name in ("rgb_jitter", "tactile_jitter"):
            v = tuple(getattr(self, name))
            if len(v) != 3 or min(v) < 0:
                raise ConfigError(f"tokenizer.{name} must be 3 non-negative factors (brightness, contrast, "
                                  f"saturation), got {v}")
            setattr(self, name, v)


@register_config("policy", "msbot")
@dataclass
class MSBotConfig(PolicyConfig):
    n_obs_steps: int = 15          # 3 s of observation history at 5 Hz
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    n_heads: int = 4               # paper: 8 (head dim 16 either way)
    n_stages: int = 3              # peg insertion: 3, pouring: 4
    beta: float = 0.5              # z* = β z + (1 − β) g E
    blur_p: float = 0.25           # random attention blur probability (per sample, training only)
    gate_lambda: float = 10.0      # gate-penalty weight (paper: 5 pour, 10 peg)
    boundary_before: int = 3       # soft stage boundary: steps before a transition (paper γ = 15 at ~400 steps)
    boundary_after: int = 2        # ... and after (paper: 5)
    # learned (modality, frame) embeddings added to the fusion's key/value tokens. The reference has
    # none; without them the single query cannot tell the newest frame from older ones
    token_embeddings: bool = False
    # the state token (query and gate input) takes each modality's newest token (reference). False = only
    # the action history and proprio: a diagnostic variant whose query a corrupted sense cannot move
    state_from_tokens: bool = True
    head_hidden: int = 128
    lr: float = 1e-3               # used by the generic trainer (train_msbot has its own)
    aux_heads: bool = True         # unimodal heads on detached features (balance scores, diagnostics)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    # discrete action primitives (rows of the action space); empty = wait plus ±1 on each axis
    primitives: list = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.chunk_size != 1 or self.n_action_steps != 1:
            raise ConfigError("msbot predicts one discrete action per step: chunk_size = n_action_steps = 1")
        if self.n_stages < 1:
            raise ConfigError("n_stages must be >= 1")
        if not 0.0 <= self.beta <= 1.0 or not 0.0 <= self.blur_p <= 1.0:
            raise ConfigError("beta and blur_p must be in [0, 1]")
        if self.tokenizer.token_dim % self.n_heads:
            raise ConfigError(f"token_dim {self.tokenizer.token_dim} must be divisible by n_heads {self.n_heads}")
        if self.tokenizer.n_frames > self.n_obs_steps:
            raise ConfigError("tokenizer.n_frames cannot exceed n_obs_steps")
        if self.gate_lambda < 0 or self.boundary_before < 0 or self.boundary_after < 0:
            raise ConfigError("gate_lambda and soft-boundary widths must be >= 0")

    def wanted_inputs(self, available: Spec) -> Spec:
        keep = [f for f in available if f.key != K.ACTION and f.key != K.TASK and
                (f.key == K.STATE and self.tokenizer.use_state or K.modality_of(f.key) in TOKEN_MODALITIES)]
        return Spec.of(keep)
