"""Fixtures for the DecisionNCE tests (helpers live in dnce_helpers.py, a unique module name)."""

import pytest

from policies.decisionnce.configuration_decisionnce import EncoderConfig

from dnce_helpers import tiny_clip


@pytest.fixture
def tiny_encoder_cfg():
    return EncoderConfig(clip=tiny_clip())
