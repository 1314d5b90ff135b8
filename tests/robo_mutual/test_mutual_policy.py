"""Diffusion head, FiLM, action normalisation, ensembling and the Robo-MUTUAL policy (spec §4.2)."""

import numpy as np
import pytest
import torch

from policies.base import load_policy, make_policy
from policies.common.diffusion import DDPM, ensemble_weights, vp_betas
from policies.robo_mutual import RoboMutualConfig
from policies.robo_mutual.film_resnet import FiLMResNet
from policies.robo_mutual.modeling_robo_mutual import GOAL_EMBEDDING
from policystack import keys as K
from policystack.errors import ConfigError, SpecMismatchError
from policystack.spec import Feature, Spec

CAMS = (K.image_key("agentview"), K.image_key("wrist"))
FEATS = Spec.of([Feature(CAMS[0], (32, 32, 3), "uint8"), Feature(CAMS[1], (32, 32, 3), "uint8"),
                 Feature(K.STATE, (9,), "float32"), Feature(K.TASK, (), "str"), Feature(K.ACTION, (7,), "float32")])
STATS = {K.ACTION: {"min": -np.arange(1, 8, dtype=np.float32), "max": np.arange(1, 8, dtype=np.float32) * 2,
                    "mean": np.zeros(7, np.float32), "std": np.ones(7, np.float32)},
         K.STATE: {"mean": np.zeros(9, np.float32), "std": np.ones(9, np.float32),
                   "min": -np.ones(9, np.float32), "max": np.ones(9, np.float32)}}


def _policy(**kw):
    base = dict(task_names=("open the drawer", "close the drawer"), goal_dim=16, backbone_width=8)
    base.update(kw)
    pol = make_policy(RoboMutualConfig(**base), FEATS, STATS)
    g = torch.Generator().manual_seed(0)
    pol.set_goal_bank(torch.randn(2, 16, generator=g), torch.randn(2, 16, generator=g))
    return pol


def _batch(B=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {CAMS[0]: torch.randint(0, 255, (B, 32, 32, 3), dtype=torch.uint8, generator=g),
            CAMS[1]: torch.randint(0, 255, (B, 32, 32, 3), dtype=torch.uint8, generator=g),
            K.STATE: torch.randn(B, 9, generator=g), K.TASK: ["open the drawer", "close the drawer"] * (B // 2),
            K.ACTION: (torch.rand(B, 6, 7, generator=g) * 3 - 1)}


def test_vp_betas_match_the_release():
    b = vp_betas(25, 0.1, 10.0)
    assert b[0].item() == pytest.approx(0.0118, abs=1e-4)
    assert b[-1].item() == pytest.approx(0.3243, abs=1e-4)
    assert torch.prod(1 - b).item() == pytest.approx(0.0064, abs=1e-4)


def test_q_and_p_sample_shapes_and_clipping():
    d = DDPM(25)
    x0 = torch.rand(5, 42) * 2 - 1
    xt = d.q_sample(x0, torch.tensor([0, 5, 10, 20, 24]), torch.randn(5, 42))
    assert xt.shape == (5, 42)
    wild = lambda x, t: torch.randn_like(x) * 100       # an untrained, badly scaled eps model
    x = d.p_sample(wild, torch.randn(5, 42) * 5, 10)
    assert x.shape == (5, 42) and x.abs().max() <= 1.0
    s = d.sample(wild, (3, 42))
    assert s.shape == (3, 42) and s.abs().max() <= 1.0


def test_temporal_ensemble_weights():
    assert np.allclose(ensemble_weights(6, 0.25), [0.285, 0.222, 0.173, 0.134, 0.105, 0.082], atol=1e-3)


def test_action_min_max_round_trip():
    pol = _policy()
    a = torch.rand(4, 6, 7) * 3 - 1
    n = pol.action_norm.normalize(K.ACTION, a)
    lo, hi = torch.from_numpy(STATS[K.ACTION]["min"]), torch.from_numpy(STATS[K.ACTION]["max"])
    assert torch.allclose(pol.action_norm.normalize(K.ACTION, lo), -torch.ones(7))
    assert torch.allclose(pol.action_norm.normalize(K.ACTION, hi), torch.ones(7))
    assert torch.allclose(pol.action_norm.unnormalize(K.ACTION, n), a, atol=1e-5)


def test_film_is_the_identity_at_init():
    net = FiLMResNet(16, (1, 1, 1, 1), 8).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(net(x, torch.randn(2, 16)), net(x, torch.randn(2, 16) * 10))
    net.films[0].net[2].weight.data.normal_()
    assert not torch.allclose(net(x, torch.randn(2, 16)), net(x, torch.randn(2, 16)))


def test_policy_overfits_one_batch_with_the_mse_head():
    torch.manual_seed(0)
    pol = _policy(head="mse", corrupt=False, collapse=False, dropout=0.0, color_jitter=False, crop_scale=(1.0, 1.0))
    batch = _batch(4)
    opt = torch.optim.Adam(pol.parameters(), lr=2e-3)
    pol.train()
    losses = []
    for _ in range(150):
        loss, _ = pol(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.05


def test_ddpm_head_fits_a_fixed_batch_and_the_policy_loss_is_the_eps_loss():
    from policies.common.diffusion import MLPResNet, TimeEmbedding
    torch.manual_seed(0)
    d, dec, te = DDPM(25), MLPResNet(16 + 256 + 42, 42, 256, 3, 0.0), TimeEmbedding()
    feat, x0 = torch.randn(4, 16), torch.rand(4, 42) * 2 - 1
    opt = torch.optim.Adam(list(dec.parameters()) + list(te.parameters()), 1e-3)
    losses = []
    for _ in range(400):
        loss = d.loss(lambda xt, t: dec(torch.cat([feat, te(t), xt], -1)), x0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # Σ over 42 dims: ~42 untrained; ε-prediction at the smallest noise level stays hard, so not ~0
    assert np.mean(losses[:10]) > 30 and np.mean(losses[-50:]) < 0.5 * np.mean(losses[:10])
    pol = _policy(head="ddpm")
    pol.train()
    loss, logs = pol(_batch(4))
    assert 20 < loss.item() < 80 and logs["loss"] == loss.item()


def test_goal_conditioning_train_vs_eval_and_modality_switch():
    pol = _policy()
    raw = torch.randn(8, 16)
    pol.eval()
    assert torch.allclose(pol.goal_condition(raw, "text"), torch.nn.functional.normalize(raw, dim=-1))
    pol.train()
    c = pol.goal_condition(raw, "text")
    cos = torch.nn.functional.cosine_similarity(c, raw, dim=-1)
    assert torch.all(cos >= 0.2 - 1e-5) and not torch.allclose(cos, torch.ones(8))
    # the training batch's own goal overrides the bank
    b = _batch()
    b[GOAL_EMBEDDING] = torch.randn(8, 16)
    pol(b)
    pol.eval()
    obs = {CAMS[0]: b[CAMS[0]][0].numpy(), CAMS[1]: b[CAMS[1]][0].numpy(), K.STATE: b[K.STATE][0].numpy(),
           K.TASK: "open the drawer"}
    one = {k: ([v] if k == K.TASK else torch.from_numpy(v)[None]) for k, v in obs.items()}
    assert pol.predict_action_chunk(one).shape == (1, 6, 7)
    pol.set_goal_modality("image")
    for f in pol.backbone.films:     # FiLM is the identity at init; perturb it so the goal matters
        f.net[2].weight.data.normal_()
    torch.manual_seed(0)
    a_img2 = pol.predict_action_chunk(one)
    pol.set_goal_modality("text")
    torch.manual_seed(0)
    a_text2 = pol.predict_action_chunk(one)
    assert not torch.allclose(a_img2, a_text2)
    with pytest.raises(SpecMismatchError, match="goal bank"):
        pol.lookup_goal(["fly away"], "text")
    with pytest.raises(ConfigError):
        pol.set_goal_modality("audio")


def test_checkpoint_round_trip_keeps_goal_bank_and_means(tmp_path):
    pol = _policy(delete_k=3)
    pol.gap.fit(torch.randn(5, 16), torch.randn(7, 16))
    pol.save_pretrained(tmp_path / "p")
    back = load_policy(tmp_path / "p")
    for name in ("goal_text", "goal_image", "gap.mu_text", "gap.mu_image", "gap.keep"):
        assert torch.equal(pol.state_dict()[name], back.state_dict()[name]), name
    b = _batch(2)
    obs = {k: (v[0] if k == K.TASK else v[0].numpy()) for k, v in b.items() if k != K.ACTION}
    pol.eval()
    back.set_goal_modality("text")
    torch.manual_seed(1)
    x = pol.select_action(obs)
    torch.manual_seed(1)
    y = back.select_action(obs)
    assert x.shape == (7,) and np.allclose(x, y, atol=1e-5)
