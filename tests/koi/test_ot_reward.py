"""Sinkhorn and the OT reward (spec §5.1: Sinkhorn marginals, reward ordering, auto-scaling, multi-demo)."""

import numpy as np
import pytest
import torch

from policies.common.ot import cosine_cost, sinkhorn_log
from policies.koi.keystates import expert_weighting
from policies.koi.rewards import OTRewarder, ot_rewards

T, D = 60, 50
KEYS, MOTION = [25, 45], [10, 35]


def feats(seed, n=T):
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed))


def plain_sinkhorn(a, b, C, eps, iters):
    """Textbook (non-log) Sinkhorn as POT's ot.sinkhorn does it; only stable at larger eps."""
    K = np.exp(-C / eps)
    u, v = np.ones_like(a) / len(a), np.ones_like(b) / len(b)
    for _ in range(iters):
        v = b / (K.T @ u)
        u = a / (K @ v)
    return u[:, None] * K * v[None, :]


def test_sinkhorn_marginals_and_positivity():
    A, E = feats(0, 41), feats(1, 60)
    nu = torch.as_tensor(expert_weighting(60, KEYS, MOTION))
    mu = torch.full((41,), 1 / 41, dtype=torch.float64)
    P = sinkhorn_log(mu, nu, cosine_cost(A, E), eps=0.01, n_iters=100)
    assert P.shape == (41, 60)
    assert (P >= 0).all()
    np.testing.assert_allclose(P.sum(1).numpy(), 1 / 41, atol=1e-6)      # rows exact
    np.testing.assert_allclose(P.sum(0).numpy(), nu.numpy(), atol=5e-3)  # columns approximate at 100 its
    assert abs(P.sum().item() - 1) < 1e-6


def test_log_domain_matches_plain_sinkhorn_where_both_are_stable():
    A, E = feats(2, 20), feats(3, 30)
    C = cosine_cost(A, E).double()
    a = torch.full((20,), 1 / 20, dtype=torch.float64)
    b = torch.as_tensor(expert_weighting(30, [10, 25]))
    P = sinkhorn_log(a, b, C, eps=0.1, n_iters=50).numpy()
    Q = plain_sinkhorn(a.numpy(), b.numpy(), C.numpy(), 0.1, 50)
    np.testing.assert_allclose(P, Q, rtol=1e-8, atol=1e-12)


def test_small_eps_stays_finite():
    C = cosine_cost(feats(4, 150), feats(5, 150))
    a = torch.full((150,), 1 / 150, dtype=torch.float64)
    P = sinkhorn_log(a, a, C, eps=0.001, n_iters=100)
    assert torch.isfinite(P).all()


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="cost must be"):
        sinkhorn_log(torch.ones(3) / 3, torch.ones(4) / 4, torch.zeros(4, 3))


def test_rewards_one_per_agent_frame():
    r = ot_rewards(feats(0, 31), feats(1), expert_weighting(T, KEYS, MOTION))
    assert r.shape == (31,) and (r <= 0).all()


@pytest.mark.parametrize("nu", [None, expert_weighting(T, KEYS, MOTION)], ids=["rot", "koi"])
def test_reward_ordering_expert_like_over_stalled_over_random(nu):
    for seed in range(3):
        E = feats(10 + seed)
        noisy = E + 0.3 * feats(20 + seed)
        stall = torch.cat([E[:30], E[29:30].repeat(T - 30, 1)])   # stops before the goal
        rand = feats(30 + seed)
        R = {k: ot_rewards(v, E, nu).sum() for k, v in dict(noisy=noisy, stall=stall, rand=rand).items()}
        assert R["noisy"] > R["stall"] > R["rand"], R


@pytest.mark.parametrize("nu", [None, expert_weighting(T, KEYS, MOTION)], ids=["rot", "koi"])
def test_permuted_expert_scores_like_the_expert(nu):
    # OT ignores order (documented limitation of ROT and KOI): a shuffled expert earns the same reward
    E = feats(7)
    perm = E[torch.randperm(T, generator=torch.Generator().manual_seed(0))]
    assert ot_rewards(perm, E, nu).sum() == pytest.approx(ot_rewards(E, E, nu).sum(), abs=1e-9)


def test_koi_penalises_missing_a_key_state_more_than_missing_other_frames():
    """KOI's point: with nu peaked at key states, skipping the frames around the goal key costs more than
    skipping an equally long stretch elsewhere; with ROT's uniform nu both cost about the same."""
    nu_koi = expert_weighting(T, KEYS, MOTION)
    ratios = {"koi": [], "rot": []}
    for seed in range(6):
        E, rand = feats(40 + seed), feats(60 + seed)

        def skip(lo, hi):
            A = E.clone()
            A[lo:hi] = E[lo - 1]
            return A
        for name, nu in (("koi", nu_koi), ("rot", None)):
            ref, rr = ot_rewards(E, E, nu).sum(), abs(ot_rewards(rand, E, nu).sum())
            miss_key = (ref - ot_rewards(skip(42, 49), E, nu).sum()) / rr      # around the goal key (45)
            miss_other = (ref - ot_rewards(skip(52, 59), E, nu).sum()) / rr    # a stretch with no key
            ratios[name].append(miss_key / miss_other)
    assert np.mean(ratios["koi"]) > 1.3
    assert abs(np.mean(ratios["rot"]) - 1) < 0.15
    assert min(ratios["koi"]) > max(ratios["rot"])


def test_auto_scaling_fixes_the_first_episode_total():
    rw = OTRewarder([None])
    E = feats(0)
    first = rw(feats(1), [E])
    assert first.rewards.sum() == pytest.approx(-10.0, abs=1e-9)
    scale = rw.scale
    second = rw(feats(2), [E])
    assert rw.scale == scale
    assert second.rewards.sum() == pytest.approx(scale * ot_rewards(feats(2), E).sum())
    state = rw.state_dict()
    rw2 = OTRewarder([None])
    rw2.load_state_dict(state)
    assert rw2.scale == scale and rw2.scaled


def test_fixed_scale_without_auto_scaling():
    rw = OTRewarder([None], auto_scale=False, scale=200.0)
    r = rw(feats(1), [feats(0)])
    assert r.rewards.sum() == pytest.approx(200.0 * ot_rewards(feats(1), feats(0)).sum())


def test_best_demo_wins_and_duplicates_agree():
    E_near, E_far = feats(0), feats(1)
    agent = E_near + 0.2 * feats(2)
    nu = expert_weighting(T, KEYS)
    rw = OTRewarder([nu, nu], auto_scale=False)
    res = rw(agent, [E_far, E_near])
    assert res.demo_index == 1
    np.testing.assert_allclose(res.rewards, ot_rewards(agent, E_near, nu))
    dup = OTRewarder([nu, nu], auto_scale=False)(agent, [E_near, E_near])
    np.testing.assert_allclose(dup.rewards, res.rewards)
