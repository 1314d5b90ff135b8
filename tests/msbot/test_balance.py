"""OGM / OGM-GE / OPM / AGM (policies/common/balance.py): spec §6.2 items 6-9 and the §6.3 OGM toy."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: F401

from policies.common.balance import (AGMState, BalanceConfig, Balancer, apply_ogm, carve_unimodal_logits,
                                     ogm_coefficient, ogm_coefficients, opm_drop, opm_probs, opm_rate,
                                     pairwise_ratios, regression_scores, scale_grad, shapley_responses,
                                     true_class_scores)
from policystack.errors import ConfigError


# ----- OGM coefficient -------------------------------------------------------------------------
def test_ogm_coefficient_shape():
    assert ogm_coefficient(0.5, 0.8) == 1.0 and ogm_coefficient(1.0, 0.8) == 1.0
    assert ogm_coefficient(1.0 + 1e-9, 0.8) == pytest.approx(1 - math.tanh(0.8), abs=1e-6)   # the jump at 1+
    rhos = [1.01, 1.2, 1.5, 2.0, 3.0]
    ks = [ogm_coefficient(r, 0.8) for r in rhos]
    assert all(a > b for a, b in zip(ks, ks[1:]))                                  # decreasing in ρ
    assert ogm_coefficient(1.5, 0.1) > ogm_coefficient(1.5, 0.3) > ogm_coefficient(1.5, 0.8)   # ... and in α
    assert ogm_coefficient(2.0, 0.3) == pytest.approx(0.463, abs=1e-3)            # spec table value


def test_dominant_modality_is_flagged_from_logits():
    n, K = 256, 4
    y = torch.randint(K, (n,), generator=torch.Generator().manual_seed(0))
    strong = torch.full((n, K), 0.0)
    strong[torch.arange(n), y] = math.log(0.9 * (K - 1) / 0.1)      # softmax prob 0.9 on the right class
    chance = torch.zeros(n, K)
    scores = true_class_scores({"a": strong, "v": chance}, y)
    assert float(scores["a"]) == pytest.approx(0.9 * n, rel=1e-4)
    k = ogm_coefficients(scores, 0.5)
    assert k["a"] < 1.0 and k["v"] == 1.0


def test_pairwise_ratio_for_three_modalities():
    r = pairwise_ratios({"a": 4.0, "b": 2.0, "c": 1.0})
    assert r["a"] == pytest.approx((2 + 4) / 2, rel=1e-4)
    assert r["c"] == pytest.approx((0.25 + 0.5) / 2, rel=1e-4)
    with pytest.raises(ValueError):
        pairwise_ratios({"a": 1.0})


# ----- applying OGM ----------------------------------------------------------------------------
def _grads(*shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    ps = []
    for s in shapes:
        p = torch.nn.Parameter(torch.zeros(s))
        p.grad = torch.randn(s, generator=g)
        ps.append(p)
    return ps


def test_apply_ogm_scales_only_the_dominant_encoder_weights():
    wa, ba = _grads((8, 4), (8,), seed=1)
    wv, = _grads((8, 4), seed=2)
    wf, = _grads((3, 16), seed=3)                               # fusion layer: never passed in
    before = [p.grad.clone() for p in (wa, ba, wv, wf)]
    apply_ogm({"a": [wa, ba], "v": [wv]}, {"a": 0.3, "v": 1.0}, ge=False)
    assert torch.equal(wa.grad, 0.3 * before[0])
    assert torch.equal(ba.grad, before[1])                      # biases untouched
    assert torch.equal(wv.grad, before[2]) and torch.equal(wf.grad, before[3])


def test_ogm_ge_noise_has_the_gradient_std():
    w, = _grads((1000, 1000), seed=4)
    old = w.grad.clone()
    apply_ogm({"a": [w]}, {"a": 0.25}, ge=True, generator=torch.Generator().manual_seed(5))
    diff = w.grad - 0.25 * old
    assert abs(float(diff.mean())) < 0.01 * float(old.std())
    assert float(diff.std()) == pytest.approx(float(old.std()), rel=0.02)


def test_scale_grad_is_identity_forward_and_per_sample_backward():
    x = torch.randn(4, 3, requires_grad=True)
    y = scale_grad(x, torch.tensor([1.0, 0.5, 0.0, 2.0]))
    assert torch.equal(y, x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad[:, 0].numpy(), [1.0, 0.5, 0.0, 2.0])


def test_carved_logits_sum_to_the_fused_logits():
    lin = torch.nn.Linear(10, 5)
    fa, fv = torch.randn(7, 6), torch.randn(7, 4)
    uni = carve_unimodal_logits(lin.weight, lin.bias, {"a": fa, "v": fv}, [6, 4])
    torch.testing.assert_close(uni["a"] + uni["v"], lin(torch.cat([fa, fv], 1)))


def test_per_stage_balancer_gives_each_stage_its_own_coefficients():
    n, K = 200, 3
    g = torch.Generator().manual_seed(0)
    y = torch.randint(K, (n,), generator=g)
    stages = torch.arange(n) % 2
    good = F.one_hot(y, K).float() * 6.0
    bad = torch.zeros(n, K)
    # modality a is right in stage 0, modality b in stage 1
    la = torch.where((stages == 0).unsqueeze(1), good, bad)
    lb = torch.where((stages == 1).unsqueeze(1), good, bad)
    bal = Balancer(BalanceConfig(method="ogm", alpha=0.5), n_stages=2)
    coeff, logs = bal.ogm_coeffs({"a": la, "b": lb}, y, stages)
    assert torch.all(coeff["a"][stages == 0] < 1) and torch.all(coeff["a"][stages == 1] == 1)
    assert torch.all(coeff["b"][stages == 1] < 1) and torch.all(coeff["b"][stages == 0] == 1)
    pooled, _ = Balancer(BalanceConfig(method="ogm", per_stage=False), 2).ogm_coeffs({"a": la, "b": lb}, y, None)
    assert torch.all(pooled["a"] == pooled["a"][0])             # pooling hides the stage structure


def test_regression_scores_favour_the_closer_prediction():
    y = torch.zeros(5, 2)
    s = regression_scores({"near": y + 0.1, "far": y + 2.0}, y)
    assert float(s["near"]) > float(s["far"])


def test_balance_config_validation():
    with pytest.raises(ConfigError):
        BalanceConfig(method="magic")
    with pytest.raises(ConfigError):
        BalanceConfig(q_base=1.5)


# ----- OPM -------------------------------------------------------------------------------------
def test_opm_probabilities():
    q = opm_probs({"a": 3.0, "v": 1.0}, q_base=0.5, lam=0.5)
    assert q["v"] == 0.0 and 0.5 < q["a"] <= 1.0
    assert opm_rate(1.0) == 0.0 and opm_rate(1.0 + 1e-6) == pytest.approx(0.0, abs=1e-5)   # continuous at 1
    rates = [opm_rate(r) for r in (1.1, 1.5, 2.0, 4.0)]
    assert all(a < b for a, b in zip(rates, rates[1:])) and rates[-1] < 1.0
    assert opm_probs({"a": 1.5, "v": 1.0}, 0.5, 0.5)["a"] == pytest.approx(0.5 * (1 + 0.5 * math.tanh(0.5)), rel=1e-4)
    assert opm_probs({"a": 100.0, "v": 1.0}, 0.9, 5.0)["a"] == 1.0


def test_opm_drop_rate_and_rescaling():
    gen = torch.Generator().manual_seed(0)
    q = {"a": 0.6, "v": 0.0}
    feats = {"a": torch.ones(64, 4), "v": torch.ones(64, 4)}
    dropped = total = 0
    for _ in range(10000 // 64 * 4):
        out, keep, info = opm_drop(feats, q, p_exe=0.7, generator=gen)
        zero = (out["a"][:, 0] == 0)
        dropped += int(zero.sum())
        total += 64
        if info["executed"]:
            theta = (4 * 0.6 + 4 * 0.0) / 8
            surv = out["a"][~zero]
            if len(surv):
                torch.testing.assert_close(surv, torch.full_like(surv, 1 / (1 - theta)))
            assert torch.all(keep)                               # v is never dropped
    assert dropped / total == pytest.approx(0.7 * 0.6, abs=0.01)


def test_opm_excludes_samples_with_every_modality_dropped():
    out, keep, info = opm_drop({"a": torch.ones(50, 2), "v": torch.ones(50, 2)}, {"a": 1.0, "v": 1.0}, p_exe=1.0)
    assert not keep.any()


# ----- AGM -------------------------------------------------------------------------------------
@pytest.mark.parametrize("M", [2, 3])
def test_shapley_efficiency_on_a_nonlinear_function(M):
    names = [f"m{i}" for i in range(M)]
    g = torch.Generator().manual_seed(M)
    x = {n: torch.randn(5, generator=g) for n in names}
    W = torch.randn(5, 5, generator=g)

    def f(present):
        z = sum((x[n] for n in present), torch.zeros(5))
        return torch.tanh(W @ z) * 2.0 + 0.3

    phi = shapley_responses(f, names)
    torch.testing.assert_close(sum(phi.values()), f(frozenset(names)) - f(frozenset()), atol=1e-5, rtol=1e-5)


def test_shapley_symmetry_and_the_two_modality_formula():
    sym = shapley_responses(lambda s: torch.tensor(float(len(s)) ** 2), ["a", "b", "c"])
    assert float(sym["a"]) == pytest.approx(float(sym["b"])) == pytest.approx(float(sym["c"]))
    vals = {frozenset(): 0.0, frozenset("a"): 1.0, frozenset("v"): 3.0, frozenset("av"): 10.0}
    phi = shapley_responses(lambda s: torch.tensor(vals[frozenset(s)]), ["a", "v"])
    assert float(phi["a"]) == pytest.approx(0.5 * (10 - 3 + 1))       # ½(f(a,v) − f(0,v) + f(a,0))


def test_agm_coefficients():
    st = AGMState(["a", "v"], alpha=1.5)
    c0 = st.coefficients({"a": 1.0, "v": 2.0})
    assert c0["a"] == pytest.approx(1.0) and c0["v"] == pytest.approx(1.0)   # current == running
    c1 = st.coefficients({"a": 0.2, "v": 2.0})     # a improved beyond its usual level -> slowed down
    assert c1["a"] < 1.0 < c1["v"]
    assert AGMState.ratios({"a": 1.0, "v": 2.0})["a"] == pytest.approx(math.exp(1.0))


def test_agm_hook_scales_the_gradient_reaching_a_response():
    m = torch.randn(3, requires_grad=True)
    scale_grad(m, torch.full((3,), 0.25)).sum().backward()
    torch.testing.assert_close(m.grad, torch.full((3,), 0.25))


# ----- §6.3: OGM on a two-modality toy ---------------------------------------------------------
def test_ogm_shrinks_the_dominant_gradient_and_lifts_the_weak_modality():
    from policies.msbot.synthetic import ogm_two_modality_toy
    res = {m: [ogm_two_modality_toy(m, s) for s in range(3)] for m in ("none", "ogm")}
    mean = lambda m, k: float(np.mean([r[k] for r in res[m]]))
    assert mean("ogm", "k_dominant") < 0.5
    assert mean("ogm", "grad_ratio") < 0.6 * mean("none", "grad_ratio")     # dominant gradient share shrinks
    assert mean("ogm", "weak_acc") - mean("none", "weak_acc") > 0.03, res   # ... and the weak modality learns more


@pytest.mark.slow
def test_ogm_ge_also_lifts_the_weak_modality():
    from policies.msbot.synthetic import ogm_two_modality_toy
    none = np.mean([ogm_two_modality_toy("none", s, 1500)["weak_acc"] for s in range(3)])
    ge = np.mean([ogm_two_modality_toy("ogm_ge", s, 1500)["weak_acc"] for s in range(3)])
    assert ge - none > 0.03
