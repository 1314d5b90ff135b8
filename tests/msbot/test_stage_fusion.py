"""MS-Bot's stage module, gate penalty and dynamic fusion: spec §6.2 items 1-4."""

import numpy as np
import pytest
import torch

from policies.msbot.fusion import CrossAttentionFusion
from policies.msbot.stage import StageModule, gate_penalty, soft_boundary_weights


def test_soft_boundary_weights():
    stages = [0] * 10 + [1] * 10 + [2] * 10
    w = soft_boundary_weights(stages, 3, before=3, after=2)
    expect = np.ones((30, 3), np.float32)
    expect[np.arange(30), stages] = 0
    expect[7:12, 0] = expect[7:12, 1] = 0
    expect[17:22, 1] = expect[17:22, 2] = 0
    np.testing.assert_array_equal(w, expect)
    assert np.all(w[:7, 1:] == 1)                        # nothing zeroed at the episode start


def test_soft_boundary_weights_reject_bad_labels():
    with pytest.raises(ValueError):
        soft_boundary_weights([0, 3], 3, 1, 1)


def test_gate_penalty_values_and_gradient_paths():
    S, B = 3, 5
    stages = torch.tensor([0, 1, 2, 1, 0])
    w = torch.ones(B, S)
    w[torch.arange(B), stages] = 0
    onehot = torch.nn.functional.one_hot(stages, S).float()
    assert float(gate_penalty(onehot, w, 5.0)) == 0.0
    uniform = torch.full((B, S), 1 / S)
    assert float(gate_penalty(uniform, w, 5.0)) == pytest.approx(5.0 * (S - 1) / S ** 2)
    # the gate sees a detached state token: the encoder gets no gradient from the gate loss alone
    encoder = torch.nn.Linear(8, 16)
    stage = StageModule(16, S)
    stage.ready.fill_(True)
    z = encoder(torch.randn(B, 8))
    _, g = stage(z)
    gate_penalty(g, w, 5.0).backward()
    assert encoder.weight.grad is None or float(encoder.weight.grad.abs().sum()) == 0.0
    assert float(stage.gate.weight.grad.abs().sum()) > 0
    assert stage.tokens.grad is None or float(stage.tokens.grad.abs().sum()) == 0.0


def test_stage_tokens_start_at_per_stage_means():
    stage = StageModule(4, 3)
    z = torch.randn(30, 4)
    s = torch.tensor([0, 1, 2] * 10)
    assert stage(z)[1] is None                              # warm-up: z* = z, no gate
    stage.init_tokens(z, s)
    for k in range(3):
        torch.testing.assert_close(stage.tokens[k], z[s == k].mean(0), atol=1e-6, rtol=0)
    assert bool(stage.ready)


def test_beta_one_makes_the_query_independent_of_gate_and_tokens():
    stage = StageModule(4, 3, beta=1.0)
    stage.ready.fill_(True)
    z = torch.randn(6, 4)
    a, _ = stage(z)
    with torch.no_grad():
        stage.tokens.normal_()
        stage.gate.weight.normal_()
    b, _ = stage(z)
    torch.testing.assert_close(a, z)
    torch.testing.assert_close(b, z)


def test_attention_blur():
    torch.manual_seed(0)
    fusion = CrossAttentionFusion(16, 4, blur_p=1.0)
    q, tok = torch.randn(3, 16), torch.randn(3, 18, 16)
    fusion.eval()
    u_eval, att_eval = fusion(q, tok)
    logits = (fusion.q(q).view(3, 4, 1, 4) @ fusion.kv(tok).view(3, 18, 2, 4, 4)[:, :, 0].permute(0, 2, 3, 1)) * 0.5
    torch.testing.assert_close(att_eval, torch.softmax(logits, -1).squeeze(2))
    fusion.train()
    _, att_blur = fusion(q, tok)
    torch.testing.assert_close(att_blur, torch.full_like(att_blur, 1 / 18))
    fusion.blur_p = 0.0
    u0, att0 = fusion(q, tok)
    torch.testing.assert_close(att0, att_eval)
    torch.testing.assert_close(u0, u_eval)


def test_blur_probability_is_per_sample():
    fusion = CrossAttentionFusion(8, 2, blur_p=0.25).train()
    q, tok = torch.randn(4000, 8) * 3, torch.randn(4000, 6, 8) * 3
    _, att = fusion(q, tok, generator=torch.Generator().manual_seed(1))
    blurred = torch.all((att - 1 / 6).abs() < 1e-6, dim=(1, 2)).float().mean()
    assert float(blurred) == pytest.approx(0.25, abs=0.03)


def test_token_masks_remove_a_modality_from_attention():
    fusion = CrossAttentionFusion(8, 2, blur_p=0.0).eval()
    keep = torch.ones(2, 6, dtype=torch.bool)
    keep[:, 3:] = False
    _, att = fusion(torch.randn(2, 8), torch.randn(2, 6, 8), keep)
    assert torch.all(att[..., 3:] == 0)
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 2))
