"""Representation checks on held-out trajectories (spec §4.2 "Learning"): segment<->instruction
retrieval, the direction test, and the reward's Spearman correlation with time, per task."""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from policies.decisionnce.encoder import DualEncoder
from policies.decisionnce.rewards import embed_frames, potential, progress, segment_reward
from policystack.dataset import Episode

log = logging.getLogger(__name__)


def _spearman(x: np.ndarray) -> float:
    from scipy.stats import spearmanr
    if len(x) < 3 or np.allclose(x, x[0]):
        return 0.0
    return float(spearmanr(x, np.arange(len(x))).statistic)


@torch.no_grad()
def representation_metrics(encoder: DualEncoder, groups: Mapping[str, Sequence[Episode]], image_key: str,
                           variant: str = "T", segments_per_episode: int = 20, text_rounds: int = 200,
                           seed: int = 0) -> dict:
    """Metrics over the instructions in ``groups`` (each its own class; chance = 1 / #instructions)."""
    rng = np.random.default_rng(seed)
    encoder.eval()
    instructions = sorted(groups)
    K = len(instructions)
    U = encoder.encode_text(instructions)
    vs, ve, lab = [], [], []
    per_task: dict[str, dict] = {}
    for k, inst in enumerate(instructions):
        sp_pot, sp_prog = [], []
        for ep in groups[inst]:
            feats = embed_frames(encoder, ep.obs[image_key])
            T = len(feats)
            pairs = np.sort(np.stack([rng.choice(T, 2, replace=False) for _ in range(segments_per_episode)]), 1)
            vs.append(feats[pairs[:, 0]])
            ve.append(feats[pairs[:, 1]])
            lab += [k] * len(pairs)
            sp_pot.append(_spearman(potential(feats, U[k]).cpu().numpy()))
            sp_prog.append(_spearman(progress(feats, U[k]).cpu().numpy()))
        per_task[inst] = {"spearman_potential": float(np.mean(sp_pot)), "spearman_progress": float(np.mean(sp_prog)),
                          "episodes": len(groups[inst]),
                          "task_name": groups[inst][0].attrs.get("task_name", inst)}
    v_s, v_e = torch.cat(vs), torch.cat(ve)
    labels = torch.tensor(lab)
    R = segment_reward(v_s[:, None], v_e[:, None], U[None], variant)          # (N, K)
    seg2text = (R.argmax(1) == labels).float()
    # instruction -> segment: per round one random segment per instruction, rank them per instruction
    by_k = [torch.nonzero(labels == k).flatten().numpy() for k in range(K)]
    hits = []
    for _ in range(text_rounds):
        pick = torch.tensor([int(rng.choice(ix)) for ix in by_k])
        hits.append((R[pick].argmax(0) == torch.arange(K)).float().mean().item())
    fwd = R[torch.arange(len(labels)), labels]
    bwd = segment_reward(v_e, v_s, U[labels], variant)
    direction = (fwd > bwd).float()
    for k, inst in enumerate(instructions):
        m = labels == k
        per_task[inst].update(seg2text=float(seg2text[m].mean()), direction=float(direction[m].mean()))
    return {"variant": variant, "n_instructions": K, "chance": 1.0 / K, "n_segments": int(len(labels)),
            "seg2text_top1": float(seg2text.mean()), "text2seg_top1": float(np.mean(hits)),
            "direction": float(direction.mean()),
            "spearman_potential": float(np.mean([v["spearman_potential"] for v in per_task.values()])),
            "spearman_progress": float(np.mean([v["spearman_progress"] for v in per_task.values()])),
            "per_task": per_task}


@torch.no_grad()
def reward_curves(encoder: DualEncoder, episode: Episode, image_key: str, instructions: Sequence[str]) -> dict:
    """Per-frame potential and o_0->o_t progress of one trajectory under several instructions (for plots)."""
    feats = embed_frames(encoder, episode.obs[image_key])
    U = encoder.encode_text(list(instructions))
    return {inst: {"potential": potential(feats, U[i]).cpu().numpy(), "progress": progress(feats, U[i]).cpu().numpy()}
            for i, inst in enumerate(instructions)}


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t()


def segment_deltas(feats: torch.Tensor) -> torch.Tensor:
    """(T, D) frame features -> (T(T-1)/2, D) unit φ(o_e) − φ(o_s) of every sorted pair s < e."""
    s, e = torch.triu_indices(len(feats), len(feats), 1)
    return F.normalize(feats[e] - feats[s], dim=-1)


def fit_direction(deltas: torch.Tensor, steps: int = 300, lr: float = 1e-2, sharpness: float = 10.0) -> torch.Tensor:
    """The unit text feature u that best orders ``deltas`` (N, D) forward under the -T reward (logistic fit,
    started from their mean). Its direction rate on other demos of a task is about the most any
    instruction embedding can reach with this image encoder: it separates image-side from language-side
    failure."""
    if deltas.dim() != 2 or len(deltas) == 0:
        raise ValueError(f"fit_direction needs (N >= 1, D) segment deltas, got {tuple(deltas.shape)}")
    x = deltas.detach().float()
    u = x.mean(0).clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            F.softplus(-sharpness * x @ F.normalize(u, dim=0)).mean().backward()
            opt.step()
    return F.normalize(u.detach(), dim=0)


def direction_rate(deltas: Sequence[torch.Tensor], u: torch.Tensor) -> float:
    """Mean over demos (each its ``segment_deltas``) of the fraction of segments the -T reward under
    the text feature ``u`` calls forward."""
    return float(np.mean([(d @ u > 0).float().mean().item() for d in deltas]))


def transfer_matrix(deltas: Mapping[str, Sequence[torch.Tensor]]) -> tuple[list[str], np.ndarray]:
    """Does the best text feature for a task in one scene also order it in another?

    ``deltas``: per scene (or any grouping), each demo's ``segment_deltas``. A direction is fitted on
    the first half of each scene's demos and on all first halves together; returns the scene names and
    a (S + 1, S) matrix of direction rates on every scene's second half (rows: fitted on that scene,
    last row: the joint fit)."""
    names = sorted(deltas)
    if any(len(deltas[s]) < 2 for s in names):
        raise ValueError(f"transfer_matrix needs at least 2 demos per scene, got { {s: len(deltas[s]) for s in names} }")
    fit_half = {s: torch.cat(list(deltas[s][:len(deltas[s]) // 2])) for s in names}
    dirs = [fit_direction(fit_half[s]) for s in names] + [fit_direction(torch.cat(list(fit_half.values())))]
    out = np.array([[direction_rate(deltas[t][len(deltas[t]) // 2:], u) for t in names] for u in dirs])
    return names, out
