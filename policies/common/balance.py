"""Balanced multimodal learning for late-fusion policies: OGM, OGM-GE (CVPR 2022) and OPM (TPAMI 2024).

The dominant modality (the one whose unimodal prediction is already best) is slowed down so the
weak ones keep learning. Scores come from *unimodal* predictions: logits carved out of a linear
fusion layer (:func:`carve_unimodal_logits`) or small auxiliary heads on detached features (for
fusions that are not additive in modality logits, e.g. MS-Bot's cross-attention).

* score   s_m = Σ_i softmax(o^m_i)[y_i]        (classification; :func:`regression_scores` for MSE)
* ratio   ρ_m = mean_{n≠m} s_m / s_n           (pair-wise mean, the OGM author's advice for M > 2)
* OGM     k_m = 1 − tanh(α·ρ_m) if ρ_m > 1 else 1; the encoder gradients of m are multiplied by k_m
* OGM-GE  plus N(0, std(grad)²) on every modulated tensor (all modalities)
* OPM     r_m = tanh(ReLU(ρ_m − 1)); q_m = clip(q_base·(1 + λ·r_m), 0, 1) if r_m > 0 else 0; on a batch
          with prob. p_exe, each sample drops modality m's features with prob. q_m; features are
          rescaled by 1/(1 − θ), θ = Σ d_m q_m / Σ d_m; samples with every modality dropped are excluded.

Per-stage: with stage labels, scores, ratios and coefficients are computed per stage (imbalance is
stage-dependent: vision legitimately dominates aligning, touch the keyway search) and applied per
sample through a gradient hook on the modality features (:func:`scale_grad`); for one constant
coefficient this equals scaling the encoder's parameter gradients (:func:`apply_ogm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F

from policystack.config import ConfigError

METHODS = ("none", "ogm", "ogm_ge", "opm")


@dataclass
class BalanceConfig:
    method: str = "none"          # none | ogm | ogm_ge | opm
    alpha: float = 0.5            # OGM strength
    q_base: float = 0.5           # OPM base drop probability
    lam: float = 0.5              # OPM λ
    p_exe: float = 0.7            # OPM: probability a batch is modulated
    per_stage: bool = True        # use stage labels when the batch has them
    start_epoch: int = 0          # modulation window [start_epoch, end_epoch]
    end_epoch: int = 10 ** 6

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"balance.method must be one of {METHODS}, got {self.method!r}")
        if self.alpha < 0 or not 0 <= self.q_base <= 1 or self.lam < 0 or not 0 <= self.p_exe <= 1:
            raise ConfigError("balance: need alpha >= 0, 0 <= q_base <= 1, lam >= 0, 0 <= p_exe <= 1")

    def active(self, epoch: int) -> bool:
        return self.method != "none" and self.start_epoch <= epoch <= self.end_epoch


# ----- scores and ratios ------------------------------------------------------------------------
def true_class_scores(logits: Mapping[str, torch.Tensor], targets: torch.Tensor,
                      mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """s_m = Σ_i softmax(logits_m,i)[y_i] over the (masked) batch, no gradient."""
    out = {}
    with torch.no_grad():
        for m, o in logits.items():
            p = F.softmax(o.float(), dim=-1).gather(-1, targets.long().view(-1, 1)).squeeze(-1)
            out[m] = (p * mask.float()).sum() if mask is not None else p.sum()
    return out


def regression_scores(preds: Mapping[str, torch.Tensor], target: torch.Tensor,
                      mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Continuous-action analogue of the true-class probability: Σ_i exp(−‖pred − y‖² / 2)."""
    out = {}
    with torch.no_grad():
        for m, p in preds.items():
            s = torch.exp(-0.5 * (p.float() - target.float()).flatten(1).pow(2).sum(-1))
            out[m] = (s * mask.float()).sum() if mask is not None else s.sum()
    return out


def pairwise_ratios(scores: Mapping[str, torch.Tensor | float], eps: float = 1e-5) -> dict[str, float]:
    """ρ_m = mean over n ≠ m of s_m / s_n (M ≥ 2)."""
    names = list(scores)
    if len(names) < 2:
        raise ValueError(f"balance needs at least 2 modalities, got {names}")
    vals = {m: float(scores[m]) for m in names}
    return {m: sum(vals[m] / (vals[n] + eps) for n in names if n != m) / (len(names) - 1) for m in names}


def ogm_coefficient(rho: float, alpha: float) -> float:
    """k = 1 − tanh(α·ρ) for the dominant modality (ρ > 1), else 1 (note the jump to 1 − tanh(α) at ρ = 1⁺)."""
    return max(0.0, 1.0 - math.tanh(alpha * rho)) if rho > 1.0 else 1.0


def ogm_coefficients(scores: Mapping[str, torch.Tensor | float], alpha: float) -> dict[str, float]:
    return {m: ogm_coefficient(r, alpha) for m, r in pairwise_ratios(scores).items()}


def opm_rate(rho: float) -> float:
    """r = tanh(ReLU(ρ − 1)): 0 for the weaker modality, continuous at ρ = 1, < 1."""
    return math.tanh(max(0.0, rho - 1.0))


def opm_probs(scores: Mapping[str, torch.Tensor | float], q_base: float = 0.5, lam: float = 0.5) -> dict[str, float]:
    out = {}
    for m, rho in pairwise_ratios(scores).items():
        r = opm_rate(rho)
        out[m] = min(1.0, max(0.0, q_base * (1.0 + lam * r))) if r > 0 else 0.0
    return out


# ----- applying OGM -----------------------------------------------------------------------------
def apply_ogm(params_by_modality: Mapping[str, Iterable[torch.nn.Parameter]], coeffs: Mapping[str, float],
              ge: bool = False, generator: torch.Generator | None = None, min_ndim: int = 2) -> None:
    """Scale (after ``backward``) each modality's encoder gradients by its k; GE adds N(0, std(g)²).

    Only tensors with ``ndim >= min_ndim`` are touched (weights, not biases/norm scales), as the
    reference code; never pass fusion or head parameters here.
    """
    for m, params in params_by_modality.items():
        k = float(coeffs.get(m, 1.0))
        for p in params:
            if p.grad is None or p.grad.ndim < min_ndim:
                continue
            g = p.grad
            std = g.std().item() if ge and g.numel() > 1 else 0.0
            if k != 1.0:
                g.mul_(k)
            if ge:
                noise = torch.randn(g.shape, generator=generator, dtype=g.dtype, device=g.device)
                g.add_(noise * (std + 1e-8))


def add_ge_noise(params_by_modality: Mapping[str, Iterable[torch.nn.Parameter]],
                 generator: torch.Generator | None = None, min_ndim: int = 2,
                 applied: Mapping[str, float] | None = None) -> None:
    """The GE half of OGM-GE alone, when the k-scaling already happened through :func:`scale_grad`.

    ``applied[m]`` is the (mean) k already applied to modality m's gradients: the noise std is the
    std of the *unscaled* gradient, std(g)/k, as in the reference.
    """
    applied = applied or {}
    for m, params in params_by_modality.items():
        k = max(1e-3, float(applied.get(m, 1.0)))
        for p in params:
            if p.grad is None or p.grad.ndim < min_ndim or p.grad.numel() < 2:
                continue
            g = p.grad
            std = g.std().item() / k
            g.add_(torch.randn(g.shape, generator=generator, dtype=g.dtype, device=g.device) * (std + 1e-8))


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coeff):
        ctx.save_for_backward(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        (coeff,) = ctx.saved_tensors
        return grad * coeff.view(-1, *([1] * (grad.ndim - 1))).to(grad.dtype), None


def scale_grad(x: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
    """Identity forward; backward multiplies sample i's gradient by ``coeff[i]`` (shape (B,))."""
    return _ScaleGrad.apply(x, coeff.detach())


# ----- applying OPM -----------------------------------------------------------------------------
def opm_masks(batch_size: int, q: Mapping[str, float], p_exe: float,
              generator: torch.Generator | None = None, device=None) -> tuple[dict[str, torch.Tensor], bool]:
    """Per-sample keep masks (1 = keep) for each modality; all ones when the batch is not executed."""
    executed = torch.rand((), generator=generator).item() < p_exe
    masks = {}
    for m, qm in q.items():
        if executed and qm > 0:
            masks[m] = (torch.rand(batch_size, generator=generator) >= qm).float().to(device)
        else:
            masks[m] = torch.ones(batch_size, device=device)
    return masks, executed


def opm_drop(feats: Mapping[str, torch.Tensor], q: Mapping[str, float], p_exe: float = 0.7,
             generator: torch.Generator | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict]:
    """Drop whole feature vectors of modality m per sample with prob. q_m (on a batch w.p. p_exe).

    Returns (new feats, keep (B,) bool — samples with at least one modality left, info). Survivors
    are rescaled by 1/(1 − θ) with θ the dimension-weighted mean q (grads get the same factor).
    """
    names = list(feats)
    b = next(iter(feats.values())).shape[0]
    dev = next(iter(feats.values())).device
    masks, executed = opm_masks(b, {m: q.get(m, 0.0) for m in names}, p_exe, generator, dev)
    if not executed:
        return dict(feats), torch.ones(b, dtype=torch.bool, device=dev), {"executed": False, "theta": 0.0}
    dims = {m: feats[m][0].numel() for m in names}
    theta = sum(dims[m] * q.get(m, 0.0) for m in names) / max(1, sum(dims.values()))
    scale = 1.0 / max(1e-6, 1.0 - theta)
    out = {m: feats[m] * masks[m].view(-1, *([1] * (feats[m].ndim - 1))) * scale for m in names}
    keep = torch.stack([masks[m] for m in names], 0).amax(0) > 0
    return out, keep, {"executed": True, "theta": theta, "masks": masks}


def carve_unimodal_logits(weight: torch.Tensor, bias: torch.Tensor | None,
                          feats: Mapping[str, torch.Tensor], dims: Sequence[int]) -> dict[str, torch.Tensor]:
    """OGM's unimodal logits from a concat-then-linear fusion: o_m = W[:, slice_m] φ_m + b/M (detached W)."""
    names = list(feats)
    out, start = {}, 0
    w = weight.detach()
    b = bias.detach() / len(names) if bias is not None else 0.0
    for m, d in zip(names, dims):
        out[m] = feats[m] @ w[:, start:start + d].T + b
        start += d
    return out


# ----- the per-batch driver a policy calls --------------------------------------------------------
class Balancer:
    """Per-batch OGM/OPM for a late-fusion policy (per stage when ``stages`` are given).

    Usage inside ``forward``: ``coeff, logs = balancer.ogm_coeffs(unimodal_logits, y, stages)`` then
    ``feat_m = scale_grad(feat_m, coeff[m])``; or ``q, logs = balancer.opm_q(...)`` then drop features
    with ``balancer.opm_sample_masks(q)``. After ``backward`` call ``balancer.after_backward(params)``
    (GE noise).
    """

    def __init__(self, cfg: BalanceConfig, n_stages: int | None = None, seed: int = 0):
        self.cfg = cfg
        self.n_stages = n_stages
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0

    @property
    def active(self) -> bool:
        return self.cfg.active(self.epoch)

    def _groups(self, targets: torch.Tensor, stages: torch.Tensor | None):
        if stages is None or not self.cfg.per_stage or self.n_stages is None:
            yield None, torch.ones_like(targets, dtype=torch.bool)
            return
        for s in range(self.n_stages):
            mask = stages == s
            if bool(mask.any()):
                yield s, mask

    def ogm_coeffs(self, logits: Mapping[str, torch.Tensor], targets: torch.Tensor,
                   stages: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Per-sample coefficients k_m (B,) (1 where a stage has no dominant modality)."""
        b = targets.shape[0]
        coeff = {m: torch.ones(b, device=targets.device) for m in logits}
        logs: dict[str, float] = {}
        for s, mask in self._groups(targets, stages):
            scores = true_class_scores(logits, targets, mask)
            ks = ogm_coefficients(scores, self.cfg.alpha)
            tag = "" if s is None else f"_s{s}"
            for m, k in ks.items():
                coeff[m][mask] = k
                logs[f"k_{m}{tag}"] = k
        self._last_k = {m: float(c.mean()) for m, c in coeff.items()}
        return coeff, logs

    def opm_q(self, logits: Mapping[str, torch.Tensor], targets: torch.Tensor,
              stages: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Per-sample drop probabilities q_m (B,)."""
        b = targets.shape[0]
        q = {m: torch.zeros(b, device=targets.device) for m in logits}
        logs: dict[str, float] = {}
        for s, mask in self._groups(targets, stages):
            qs = opm_probs(true_class_scores(logits, targets, mask), self.cfg.q_base, self.cfg.lam)
            tag = "" if s is None else f"_s{s}"
            for m, v in qs.items():
                q[m][mask] = v
                logs[f"q_{m}{tag}"] = v
        return q, logs

    def opm_sample_masks(self, q: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float, bool]:
        """Keep masks (B,) per modality from per-sample q; returns (masks, rescale 1/(1−θ), executed)."""
        names = list(q)
        b = q[names[0]].shape[0]
        dev = q[names[0]].device
        if torch.rand((), generator=self.generator).item() >= self.cfg.p_exe:
            return {m: torch.ones(b, device=dev) for m in names}, 1.0, False
        masks = {m: (torch.rand(b, generator=self.generator).to(dev) >= q[m]).float() for m in names}
        theta = float(torch.stack([q[m] for m in names]).mean())
        return masks, 1.0 / max(1e-6, 1.0 - theta), True

    def after_backward(self, params_by_modality: Mapping[str, Iterable[torch.nn.Parameter]]) -> None:
        if self.active and self.cfg.method == "ogm_ge":
            add_ge_noise(params_by_modality, self.generator, applied=getattr(self, "_last_k", None))


# ----- AGM (Li et al., ICCV 2023): Shapley mono-modal responses + adaptive coefficients --------------
def shapley_responses(f, modalities: Sequence[str]) -> dict[str, torch.Tensor]:
    """Exact Shapley values φ_m of ``f(subset)`` (a callable taking a frozenset of present modalities,
    e.g. running the model with the others' inputs zeroed). Σ_m φ_m = f(all) − f(∅). Cost 2^M calls."""
    from itertools import combinations

    names = list(modalities)
    M = len(names)
    cache: dict[frozenset, torch.Tensor] = {}

    def val(s: frozenset) -> torch.Tensor:
        if s not in cache:
            cache[s] = f(s)
        return cache[s]

    out = {}
    for m in names:
        others = [n for n in names if n != m]
        phi = 0.0
        for r in range(M):
            w = math.factorial(r) * math.factorial(M - r - 1) / math.factorial(M)
            for sub in combinations(others, r):
                s = frozenset(sub)
                phi = phi + w * (val(s | {m}) - val(s))
        out[m] = phi
    return out


class AGMState:
    """Running (cumulative) mean of each modality's mono-response loss, and AGM's coefficients.

    ratio_m = exp(M/(M−1) · (mean_n s_n − s_m)) with s the CE of the mono response (M = 2 gives the
    reference exp(s_other − s_m)); coeff_m = exp(α · min(ratio*_m − ratio_m, clip)) with ratio* from the
    running means (> 1 when m does worse than its usual relative level). Update after reading.
    """

    def __init__(self, modalities: Sequence[str], alpha: float = 1.5, clip: float = 10.0):
        self.names = list(modalities)
        self.alpha, self.clip = alpha, clip
        self.sums = {m: 0.0 for m in self.names}
        self.count = 0

    @staticmethod
    def ratios(losses: Mapping[str, float]) -> dict[str, float]:
        names = list(losses)
        M = len(names)
        mean = sum(float(v) for v in losses.values()) / M
        return {m: math.exp(M / (M - 1) * (mean - float(losses[m]))) for m in names}

    def coefficients(self, losses: Mapping[str, float]) -> dict[str, float]:
        cur = self.ratios(losses)
        if self.count == 0:
            run = cur
        else:
            run = self.ratios({m: self.sums[m] / self.count for m in self.names})
        coeff = {m: math.exp(self.alpha * min(run[m] - cur[m], self.clip)) for m in self.names}
        for m in self.names:
            self.sums[m] += float(losses[m])
        self.count += 1
        return coeff
