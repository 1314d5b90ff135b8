"""Collapse and Corrupt (spec §4.2)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from policies.robo_mutual.modality_gap import (ModalityGap, corrupt, cross_modal_retrieval, modality_probe_accuracy,
                                               paired_cosine)
from policystack.errors import ConfigError


def _two_modalities(n_tasks, per_task, offsets, D=64, seed=0):
    """Task identity t_k shared by both modalities, plus a large modality-specific offset (the gap)."""
    g = torch.Generator().manual_seed(seed)
    tasks = torch.randn(n_tasks, D, generator=g)
    text = tasks + offsets[0] + 0.1 * torch.randn(n_tasks, D, generator=g)
    labels = np.repeat(np.arange(n_tasks), per_task)
    image = 0.7 * tasks[labels] + offsets[1] + 0.6 * torch.randn(len(labels), D, generator=g)
    return text, image, labels


def test_collapse_closes_the_gap_fitted_on_other_data():
    D = 64
    g = torch.Generator().manual_seed(0)
    offsets = torch.randn(D, generator=g) * 6, torch.randn(D, generator=g) * 6
    other_t, other_i, _ = _two_modalities(40, 5, offsets, D, seed=1)     # the means come from other tasks
    text, image, labels = _two_modalities(8, 10, offsets, D, seed=2)
    gap = ModalityGap(D).fit(other_t, other_i)
    idx = torch.as_tensor(labels)

    def stats(t, i):
        return paired_cosine(t[idx], i), modality_probe_accuracy(t[idx], i), cross_modal_retrieval(t, np.arange(8), i, labels)
    before = stats(text, image)
    after = stats(gap.collapse(text, "text"), gap.collapse(image, "image"))
    assert after[0] > before[0] + 0.3            # paired cosine rises
    assert before[1] > 0.95 and after[1] < 0.75  # modality becomes hard to tell apart (toward 0.5)
    assert after[2] > before[2] and after[2] > 0.8


def test_collapse_is_a_no_op_with_zero_means_and_delete_drops_k_dims():
    gap = ModalityGap(16)
    c = torch.randn(3, 16)
    assert torch.equal(gap.collapse(c, "text"), c) and torch.equal(gap.collapse(c, "image"), c)
    gap = ModalityGap(16, delete_k=4)
    mu_t, mu_i = torch.zeros(16), torch.zeros(16)
    mu_i[[2, 5, 7, 11]] = torch.tensor([5.0, -4.0, 3.0, 6.0])
    gap.fit(mu_t[None].repeat(3, 1), mu_i[None].repeat(5, 1))
    out = gap.collapse(torch.randn(3, 16), "image")
    assert out.shape == (3, 12) and gap.out_dim == 12
    assert sorted(torch.nonzero(~gap.keep).flatten().tolist()) == [2, 5, 7, 11]
    with pytest.raises(ConfigError):
        gap.collapse(c, "audio")
    with pytest.raises(ConfigError):
        ModalityGap(8, delete_k=8)


def test_corrupt_has_unit_norm_and_exact_cosine():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(500, 128, generator=g) * 3
    s = torch.rand(500, generator=g)
    out = corrupt(c, s=s, generator=g)
    assert torch.allclose(out.norm(dim=-1), torch.ones(500), atol=1e-5)
    assert torch.allclose(F.cosine_similarity(out, c, dim=-1), s, atol=1e-5)


def test_corrupt_similarity_is_uniform_on_0_2_to_1():
    g = torch.Generator().manual_seed(1)
    c = torch.randn(20000, 32, generator=g)
    s = F.cosine_similarity(corrupt(c, lo=0.2, decay=0.8, generator=g), c, dim=-1)
    assert s.min() >= 0.2 - 1e-5 and s.max() <= 1.0 + 1e-5
    assert s.mean().item() == pytest.approx(0.6, abs=0.01)
    hist = torch.histc(s, bins=4, min=0.2, max=1.0) / len(s)
    assert torch.all((hist - 0.25).abs() < 0.02)


def test_corrupt_is_deterministic_under_a_seed():
    c = torch.randn(4, 16)
    a = corrupt(c, generator=torch.Generator().manual_seed(3))
    b = corrupt(c, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, corrupt(c, generator=torch.Generator().manual_seed(4)))
