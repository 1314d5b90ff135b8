"""The DecisionNCE objective (spec §4.2 'Loss')."""

import math

import pytest
import torch
import torch.nn.functional as F

from policies.decisionnce.encoder import DualEncoder
from policies.decisionnce.losses import decisionnce_loss, reward_matrix, symmetric_ce


@pytest.mark.parametrize("variant", ["P", "T"])
def test_reward_matrix_shape_and_diagonal_dominant_loss_vanishes(variant):
    B, D = 8, 16
    u = torch.eye(B, D)
    start = torch.zeros(B, D) if variant == "T" else -torch.eye(B, D)
    v = torch.stack([start, torch.eye(B, D)], dim=1)          # segment i moves along e_i
    R = reward_matrix(v, u, variant)
    assert R.shape == (B, B)
    assert torch.equal(R.argmax(1), torch.arange(B)) and torch.equal(R.argmax(0), torch.arange(B))
    loss, logs = decisionnce_loss(v, u, variant)
    assert loss.item() < 1e-6 and logs["acc"] == 1.0


def test_P_with_identical_frames_gives_log_B_exactly():
    B, D = 16, 32
    frame = torch.randn(B, D)
    v = torch.stack([frame, frame], 1)
    R = reward_matrix(v, torch.randn(B, D), "P")
    assert torch.count_nonzero(R) == 0
    loss, _ = decisionnce_loss(v, torch.randn(B, D), "P")
    assert loss.item() == pytest.approx(math.log(16), abs=1e-6)
    assert math.log(16) == pytest.approx(2.7726, abs=1e-4)


def test_T_is_invariant_to_a_shared_offset_P_is_not():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(6, 2, 16, generator=g)
    u = torch.randn(6, 16, generator=g)
    shift = torch.randn(16, generator=g) * 5
    assert torch.allclose(reward_matrix(v, u, "T"), reward_matrix(v + shift, u, "T"), atol=1e-4)
    assert not torch.allclose(reward_matrix(v, u, "P"), reward_matrix(v + shift, u, "P"), atol=1e-2)


def test_loss_is_symmetric_in_trajectories_and_instructions():
    R = torch.randn(7, 7) * 10
    assert symmetric_ce(R).item() == pytest.approx(symmetric_ce(R.t()).item(), rel=1e-6)
    # and it is not just the row term: an asymmetric matrix has different row and column CEs
    labels = torch.arange(7)
    assert F.cross_entropy(R, labels).item() != pytest.approx(F.cross_entropy(R.t(), labels).item(), rel=1e-3)


def test_scale_100_against_a_hand_computed_2x2_example():
    # T: segments move along (1,0) and (0,1); instructions (1,0) and (1,1)
    v = torch.tensor([[[0., 0.], [1., 0.]], [[0., 0.], [0., 1.]]])
    u = torch.tensor([[1., 0.], [1., 1.]])
    R = reward_matrix(v, u, "T", scale=100.0)
    s = 1 / math.sqrt(2)
    assert torch.allclose(R, torch.tensor([[100., 100 * s], [0., 100 * s]]), atol=1e-3)
    # rows: ~0 and ~0; columns: col 0 ~0, col 1 is a tie -> log 2.  L = ½(row mean + col mean)
    expected = 0.5 * ((math.log1p(math.exp(-100 + 100 * s)) + math.log1p(math.exp(-100 * s))) / 2
                      + (math.log1p(math.exp(-100)) + math.log(2)) / 2)
    assert decisionnce_loss(v, u, "T")[0].item() == pytest.approx(expected, abs=1e-5)
    assert expected == pytest.approx(math.log(2) / 4, abs=1e-6)


@pytest.mark.parametrize("tower", ["clip", "minilm"])
def test_gradient_reaches_both_towers(tiny_encoder_cfg, tower):
    import dataclasses
    enc = DualEncoder(dataclasses.replace(tiny_encoder_cfg, text_tower=tower)).train()
    frames = torch.rand(4, 2, 3, 32, 32)
    v, u = enc(frames, ["open the door", "close the door", "push the puck", "press the button"])
    loss, _ = decisionnce_loss(v, u, "T")
    loss.backward()
    vis = enc.model.visual.conv1.weight.grad
    txt = enc.text_proj.weight.grad if tower == "minilm" else enc.model.token_embedding.weight.grad
    assert vis is not None and vis.abs().sum() > 0
    assert txt is not None and txt.abs().sum() > 0


def _shared_component_batch(sign: float, B: int = 6):
    """Segments d_i = w_i + p and instructions u_j = w_j + sign·2p (w_i orthonormal, p ⟂ all w)."""
    D = B + 1
    w, p = torch.eye(D)[:B], torch.eye(D)[B]
    v = torch.stack([torch.zeros(B, D), w + p], dim=1)
    return v, w + sign * 2.0 * p


def test_faithful_loss_leaves_the_sign_of_a_shared_progress_component_free():
    """Why the direction test can fail on unseen instructions: flipping the text side of a component
    every segment shares changes r(o_s -> o_e, l) from positive to negative on the diagonal while
    the faithful loss does not change at all; the reverse-negative option tells the two apart."""
    v_pos, u_pos = _shared_component_batch(+1.0)
    v_neg, u_neg = _shared_component_batch(-1.0)
    l_pos, logs_pos = decisionnce_loss(v_pos, u_pos, "T", scale=10.0)
    l_neg, logs_neg = decisionnce_loss(v_neg, u_neg, "T", scale=10.0)
    assert l_pos.item() == pytest.approx(l_neg.item(), abs=1e-5)
    assert logs_pos["direction"] == 1.0 and logs_neg["direction"] == 0.0
    r_pos, _ = decisionnce_loss(v_pos, u_pos, "T", scale=10.0, reverse_negatives=True)
    r_neg, _ = decisionnce_loss(v_neg, u_neg, "T", scale=10.0, reverse_negatives=True)
    assert r_neg.item() > r_pos.item() + 1.0


@pytest.mark.parametrize("variant", ["P", "T"])
def test_reverse_negative_is_the_reversed_segment_under_its_own_instruction(variant):
    g = torch.Generator().manual_seed(3)
    v, u = torch.randn(5, 2, 8, generator=g), torch.randn(5, 8, generator=g)
    R = reward_matrix(v, u, variant)
    rev = -R.diagonal()                       # o_e -> o_s: both variants reverse sign exactly
    labels = torch.arange(5)
    cols = torch.cat([R.t(), rev[:, None]], 1)
    expected = 0.5 * (F.cross_entropy(R, labels) + F.cross_entropy(cols, labels))
    loss, logs = decisionnce_loss(v, u, variant, reverse_negatives=True)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() > decisionnce_loss(v, u, variant)[0].item()   # one more negative: never lower
    assert logs["direction"] == pytest.approx((R.diagonal() > 0).float().mean().item())
