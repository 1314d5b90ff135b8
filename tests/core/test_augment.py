"""Shared image augmentation: ColorJitter semantics (torchvision's factors, per sample)."""

import torch

from policies.common.augment import color_jitter


def test_brightness_scales_each_sample_by_one_factor_within_range():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8, generator=g) * 0.5 + 0.1           # stays inside [0, 1] after x1.2
    y = color_jitter(x, 0.2, 0.0, 0.0, generator=g)
    ratio = y / x
    per_sample = ratio.flatten(1)
    torch.testing.assert_close(per_sample, per_sample[:, :1].expand_as(per_sample))
    f = per_sample[:, 0]
    assert f.min() >= 0.8 - 1e-6 and f.max() <= 1.2 + 1e-6
    assert f.std() > 0.05                                           # really drawn per sample


def test_contrast_keeps_a_flat_image_and_saturation_keeps_a_grey_one():
    flat = torch.full((4, 3, 5, 5), 0.3)
    torch.testing.assert_close(color_jitter(flat, 0.0, 0.5, 0.0), flat)
    grey = torch.rand(4, 1, 5, 5).expand(4, 3, 5, 5).contiguous()
    torch.testing.assert_close(color_jitter(grey, 0.0, 0.0, 0.5), grey)


def test_clipping_follows_value_range():
    x = torch.full((16, 3, 2, 2), 0.95)
    g = torch.Generator().manual_seed(1)
    assert color_jitter(x, 0.5, 0.0, 0.0, generator=g).max() <= 1.0
    signed = torch.full((16, 6, 2, 2), 3.0)                         # a normalised tactile map
    g = torch.Generator().manual_seed(1)
    out = color_jitter(signed, 0.5, 0.0, 0.5, value_range=None, generator=g)
    assert out.max() > 3.0 and out.min() < 3.0                      # unclipped; saturation skipped for C=6


def test_zero_factors_are_the_identity_and_a_seed_repeats():
    x = torch.rand(8, 3, 4, 4)
    torch.testing.assert_close(color_jitter(x, 0.0, 0.0, 0.0), x)
    a = color_jitter(x, generator=torch.Generator().manual_seed(3))
    b = color_jitter(x, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
