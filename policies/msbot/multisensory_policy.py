"""What MS-Bot and its late-fusion baselines share: tokens, discrete actions, action history,
unimodal auxiliary heads, OGM/OPM balance, and the runtime history of executed actions.

A subclass implements ``fuse(tokens, cond, history, modality_keep, batch)`` and returns
``(logits, extras)``; ``extras`` may hold an extra loss term ("loss"), logs, the gate and the
per-modality attention mass for diagnostics.
"""

from __future__ import annotations

import collections
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policystack import keys as K
from policies.base import Policy
from policies.common.balance import Balancer, scale_grad
from policies.msbot.tokens import ActionCodec, HistoryEncoder, MultiSensoryTokenizer

HISTORY_KEY = "action_history"     # (B, L) int64 past action classes, -1 = none (right-aligned)
STAGE_KEY = "stage"                # (B,) int64 stage label of the sample
STAGE_WEIGHTS_KEY = "stage_weights"  # (B, S) float soft-boundary gate-penalty weights


class MultiSensoryPolicy(Policy):
    uses_history: bool = True

    def __init__(self, config):
        super().__init__(config)
        spec = config.input_spec
        self.codec = ActionCodec(config.primitives, config.action_dim)
        self.tokenizer = MultiSensoryTokenizer(config.tokenizer, spec, config.n_obs_steps)
        self.modalities = list(self.tokenizer.keys)
        d = config.tokenizer.token_dim
        n_cls = self.codec.n_classes
        self.history = HistoryEncoder(n_cls, d) if self.uses_history else None
        self.aux = nn.ModuleDict({k.replace(".", "__"): nn.Linear(d, n_cls) for k in self.modalities}) \
            if config.aux_heads else None
        self.balancer = Balancer(config.balance, config.n_stages)
        self._executed: collections.deque = collections.deque(maxlen=config.tokenizer.history_len)
        self._audio_hist: dict[str, collections.deque] = {}
        self.last_info: dict[str, Any] = {}

    # ----- pieces -----------------------------------------------------------------------------
    def modality_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Each modality's encoder parameters (what OGM modulates)."""
        return {k: list(self.tokenizer.encoders[k.replace(".", "__")].parameters()) for k in self.modalities}

    def history_tensor(self, batch: Mapping[str, Any], b: int) -> torch.Tensor:
        L = self.config.tokenizer.history_len
        if HISTORY_KEY in batch:
            h = torch.as_tensor(batch[HISTORY_KEY], device=self.device).long()
            return h[:, -L:] if h.shape[1] >= L else F.pad(h, (L - h.shape[1], 0), value=-1)
        past = list(self._executed)
        h = torch.full((b, L), -1, dtype=torch.long, device=self.device)
        if past:
            h[:, L - len(past):] = torch.tensor(past, dtype=torch.long, device=self.device)
        return h

    def targets(self, batch: Mapping[str, Any]) -> torch.Tensor:
        a = batch[K.ACTION]
        if a.ndim == 3:
            a = a[:, 0]
        return self.codec.classify(a)

    def fuse(self, tokens, cond, history, modality_keep, batch):
        raise NotImplementedError

    # ----- training ---------------------------------------------------------------------------
    def _encode(self, batch: Mapping[str, Any], target: torch.Tensor | None):
        tokens, cond = self.tokenizer(batch)
        b = next(iter(tokens.values())).shape[0]
        hist = self.history(self.history_tensor(batch, b)) if self.history is not None else None
        logs: dict[str, float] = {}
        aux_logits = None
        if self.aux is not None:
            aux_logits = {k: self.aux[k.replace(".", "__")](tokens[k].mean(1).detach()) for k in self.modalities}
        modality_keep = None
        keep = torch.ones(b, dtype=torch.bool, device=self.device)
        bal = self.balancer
        if self.training and target is not None and bal.active and aux_logits is not None \
                and len(self.modalities) >= 2:
            stages = batch.get(STAGE_KEY) if self.config.balance.per_stage else None
            stages = torch.as_tensor(stages, device=self.device) if stages is not None else None
            if bal.cfg.method in ("ogm", "ogm_ge"):
                coeff, blogs = bal.ogm_coeffs(aux_logits, target, stages)
                tokens = {k: scale_grad(tokens[k], coeff[k]) for k in self.modalities}
            else:
                q, blogs = bal.opm_q(aux_logits, target, stages)
                masks, rescale, executed = bal.opm_sample_masks(q)
                if executed:
                    modality_keep = {k: masks[k] > 0 for k in self.modalities}
                    modality_keep["_rescale"] = rescale
                    keep = torch.stack([masks[k] for k in self.modalities]).amax(0) > 0
            logs.update(blogs)
        return tokens, cond, hist, aux_logits, modality_keep, keep, logs

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        target = self.targets(batch)
        tokens, cond, hist, aux_logits, modality_keep, keep, logs = self._encode(batch, target)
        logits, extras = self.fuse(tokens, cond, hist, modality_keep, batch)
        if bool(keep.any()):
            ce = F.cross_entropy(logits[keep], target[keep])
        else:
            ce = logits.sum() * 0.0
        loss = ce + extras.get("loss", 0.0)
        with torch.no_grad():
            logs["ce"] = float(ce)
            logs["acc"] = float((logits.argmax(-1) == target).float().mean())
        if aux_logits is not None:
            aux_loss = sum(F.cross_entropy(o, target) for o in aux_logits.values())
            loss = loss + aux_loss
            with torch.no_grad():
                for k, o in aux_logits.items():
                    logs[f"aux_acc_{k.rsplit('.', 1)[-1]}"] = float((o.argmax(-1) == target).float().mean())
        logs.update(extras.get("logs", {}))
        logs["loss"] = float(loss.detach())
        return loss, logs

    def action_logits(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """(B, n_classes) action logits and the fusion extras (gate, attention mass), no balancing."""
        tokens, cond, hist, _, _, _, _ = self._encode(batch, None)
        return self.fuse(tokens, cond, hist, None, batch)

    # ----- acting -----------------------------------------------------------------------------
    @torch.no_grad()
    def predict_action_chunk(self, batch: Mapping[str, Any]) -> torch.Tensor:
        logits, extras = self.action_logits(batch)
        idx = logits.argmax(-1)
        self.last_info = {"class": idx.cpu().numpy(), "probs": torch.softmax(logits, -1).cpu().numpy()}
        for k in ("gate", "attention_mass"):
            if extras.get(k) is not None:
                self.last_info[k] = extras[k].cpu().numpy()
        return self.codec.decode(idx).unsqueeze(1)

    def _stack_history(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """As the base, except audio streams: their history before the episode start is silence."""
        batch = super()._stack_history(obs)
        n = self.config.n_obs_steps
        if n > 1 and self.config.tokenizer.audio_stream:
            for k in self.tokenizer.keys:
                if self.tokenizer.kinds[k] != "audio":
                    continue
                x = batch[k][:, -1]
                dq = self._audio_hist.setdefault(k, collections.deque([torch.zeros_like(x)] * n, maxlen=n))
                dq.append(x)
                batch[k] = torch.stack(list(dq), dim=1)
        return batch

    def select_action(self, obs: Mapping[str, Any]) -> np.ndarray:
        action = super().select_action(obs)
        self._executed.append(int(self.codec.classify(torch.from_numpy(action)[None].to(self.device))[0]))
        return action

    def reset(self) -> None:
        super().reset()
        self._executed.clear()
        self._audio_hist.clear()
        self.last_info = {}

    def set_stats(self, stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        self.tokenizer.set_stats(stats)

    def attention_labels(self) -> list[str]:
        return [k.rsplit(".", 1)[-1] for k in self.modalities]


def apply_modality_keep(tokens: dict[str, torch.Tensor], modality_keep: Mapping[str, Any] | None,
                        keys: list[str]) -> dict[str, torch.Tensor]:
    """OPM at the feature level (for concat-style fusions): zero dropped modalities, rescale 1/(1−θ)."""
    if modality_keep is None:
        return tokens
    s = float(modality_keep.get("_rescale", 1.0))
    return {k: tokens[k] * modality_keep[k].float().view(-1, 1, 1) * s for k in keys}
