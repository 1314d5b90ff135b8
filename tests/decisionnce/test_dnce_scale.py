"""The logit scale κ: paper value when fine-tuning CLIP, CLIP's starting value when training from scratch.

Session 1's Meta-World run used κ = 100 on a randomly initialised encoder and stayed at chance for
1,900 steps: its loss started near 11 nats and the run settled on the plateau log B.
"""

import math

import pytest
import torch

from policies.decisionnce.configuration_decisionnce import (CLIP_INIT_LOGIT_SCALE, PAPER_LOGIT_SCALE,
                                                            EncoderConfig, PretrainConfig)
from policies.decisionnce.encoder import DualEncoder
from policies.decisionnce.losses import decisionnce_loss
from policystack import config as cfgmod
from policystack.errors import ConfigError


def test_scale_defaults_to_clip_init_from_scratch_and_to_the_paper_value_when_fine_tuning():
    assert PretrainConfig().scale == pytest.approx(1 / 0.07)
    assert PretrainConfig(init_from="RN50.pt").scale == PAPER_LOGIT_SCALE == 100.0
    assert PretrainConfig(logit_scale=50.0).scale == 50.0
    assert cfgmod.apply_overrides(PretrainConfig(), ["logit_scale=100"]).scale == 100.0
    with pytest.raises(ConfigError, match="logit_scale"):
        PretrainConfig(logit_scale=0.0)


def test_from_scratch_default_scale_starts_near_log_B_where_the_paper_scale_starts_far_above():
    """The small CPU encoder at random init (train mode, as pretraining runs it), B = 16 segments."""
    torch.manual_seed(0)
    enc = DualEncoder(EncoderConfig(text_tower="minilm")).train()
    frames = torch.rand(16, 2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        v, u = enc(frames, [f"instruction number {i}" for i in range(16)])
    log_b = math.log(16)
    assert decisionnce_loss(v, u, "T", PAPER_LOGIT_SCALE)[0].item() > log_b + 4
    assert decisionnce_loss(v, u, "T", CLIP_INIT_LOGIT_SCALE)[0].item() < log_b + 1
