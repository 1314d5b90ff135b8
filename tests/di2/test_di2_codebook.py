"""Depth-Aware Codebook: straight-through estimator, restart weights, perplexity and dead codes."""

from __future__ import annotations

import math

import pytest
import torch

from policies.di2.codebook import DepthAwareCodebook, reinit_alpha, straight_through


def test_straight_through_forward_is_the_code_and_backward_is_identity():
    torch.manual_seed(0)
    cb = DepthAwareCodebook(16, 8)
    with torch.no_grad():
        cb.embedding.normal_()
    z = torch.randn(5, 7, 8, requires_grad=True)
    z_st, _, info = cb(z)
    # forward: exactly the chosen (raw, unnormalised) codebook vector
    assert torch.equal(z_st.detach(), cb.embedding.detach()[info["indices"]])
    # the chosen code is the one with the highest cosine similarity
    sims = torch.nn.functional.normalize(z.detach(), dim=-1) @ torch.nn.functional.normalize(
        cb.embedding.detach(), dim=-1).t()
    assert torch.equal(info["indices"], sims.argmax(-1))
    # backward: d z_st / d z is the identity, and no gradient reaches the codebook through z_st
    upstream = torch.randn_like(z)
    (z_st * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)
    assert cb.embedding.grad is None or torch.count_nonzero(cb.embedding.grad) == 0


def test_straight_through_helper():
    z = torch.tensor([1.0, -2.0], requires_grad=True)
    q = torch.tensor([0.5, 0.5], requires_grad=True)
    out = straight_through(z, q)
    assert torch.equal(out, q.detach())
    out.sum().backward()
    assert torch.equal(z.grad, torch.ones(2)) and q.grad is None


def test_vq_loss_is_commitment_plus_codebook_term():
    torch.manual_seed(1)
    cb = DepthAwareCodebook(8, 4, beta=0.25)
    z = torch.randn(10, 4, requires_grad=True)
    _, loss, info = cb(z)
    q = cb.embedding.detach()[info["indices"]]
    expected = 1.25 * torch.mean((q - z.detach()) ** 2)  # beta * |sg(q) - z|^2 + |q - sg(z)|^2 (same value)
    assert torch.allclose(loss, expected)
    loss.backward()
    # the commitment term pulls z towards its code with weight beta; the codebook term pulls codes to z
    assert torch.allclose(z.grad, 0.25 * 2 * (z.detach() - q) / z.numel(), atol=1e-7)
    assert cb.embedding.grad is not None and torch.count_nonzero(cb.embedding.grad) > 0


def test_restart_weight_is_one_for_unused_and_zero_for_used_codes():
    k, decay = 64, 0.99
    usage = torch.tensor([0.0, 1e-7, 1.0 / k, 0.5])
    a = reinit_alpha(usage, k, decay)
    assert a[0] == pytest.approx(math.exp(-1e-3))   # never used: replaced by an anchor
    assert a[1] > 0.9                                 # practically unused
    assert float(a[2]) < 1e-30 and float(a[3]) < 1e-30           # a fair share or more: kept


def _blobs(n: int, dim: int, centres: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, len(centres), (n,), generator=g)
    return centres[idx] + 0.05 * torch.randn(n, dim, generator=g)


def test_fitting_raises_perplexity_and_revives_dead_codes():
    """Stage 2 on clustered features: perplexity rises, unused codes are restarted onto data."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    k, dim = 64, 16
    # like real tokens: a shared mean direction plus per-cluster variation (data in a narrow cone)
    centres = 3.0 * torch.randn(1, dim, generator=g) + 0.7 * torch.randn(256, dim, generator=g)
    cb = DepthAwareCodebook(k, dim, beta=0.25, decay=0.99)
    opt = torch.optim.Adam(cb.parameters(), lr=3e-4, amsgrad=True)
    probe = _blobs(2048, dim, centres, g)
    with torch.no_grad():
        _, _, before = cb(probe)
        q_before = torch.mean((cb.quantize(probe) - probe) ** 2)
    assert before["perplexity"] < 0.2 * k        # the U(-1/K, 1/K) init: most codes unused
    used_recently = torch.zeros(k, dtype=torch.bool)
    first_restarts = None
    for step in range(300):
        z = _blobs(256, dim, centres, g)
        z_st, vq, info = cb(z, update=True)
        loss = torch.nn.functional.mse_loss(z_st, z) + vq
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 0:
            first_restarts = info["reinit"]
            # a restarted code now sits on a batch vector (cosine ~ 1 to some z)
            cos = torch.nn.functional.normalize(cb.embedding.detach(), dim=-1) @ \
                torch.nn.functional.normalize(z, dim=-1).t()
            assert (cos.max(dim=1).values > 0.999).sum() >= first_restarts
        if step >= 280:
            used_recently |= torch.bincount(info["indices"], minlength=k) > 0
    assert first_restarts > k // 2                 # at the start nearly every code is dead
    with torch.no_grad():
        _, _, after = cb(probe)
        q_after = torch.mean((cb.quantize(probe) - probe) ** 2)
    assert after["perplexity"] > 0.5 * k > before["perplexity"]
    assert int((~used_recently).sum()) <= k // 10  # codes unused over the last 20 batches -> ~0
    assert q_after < 0.2 * q_before                # quantisation error falls


def test_inference_quantize_never_changes_the_codebook():
    torch.manual_seed(0)
    cb = DepthAwareCodebook(8, 4)
    before_e, before_u = cb.embedding.detach().clone(), cb.usage.clone()
    z = torch.randn(32, 4)
    q = cb.quantize(z)
    cb(z, update=False)
    assert torch.equal(cb.embedding.detach(), before_e) and torch.equal(cb.usage, before_u)
    assert q.shape == z.shape
