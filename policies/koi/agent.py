"""DrQ-v2 actor-critic around a ``KOIPolicy`` (spec §1.8), plus the reward feature networks.

- critic: double Q, target y = R^(n) + gamma^n * min(Q1', Q2')(s', a'), a' from the actor with clipped
  noise; loss MSE(Q1, y) + MSE(Q2, y); **the encoder is updated by this loss only**;
- actor: on the detached encoding, loss -min(Q1, Q2)(s, a), a sampled with clipped noise;
- soft update of the critic target with tau; random shifts on obs and next obs;
- reward features: frozen copies of the encoder + actor trunk (50-d), refreshed every
  ``update_target_every`` steps (checked at episode ends, as in ROT/KOI).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policies.common.augment import random_shift
from policies.koi.modeling_koi import Critic, KOIPolicy


@dataclass
class AgentConfig:
    lr: float = 1e-4
    critic_tau: float = 0.01
    nstep: int = 3
    gamma: float = 0.99
    batch_size: int = 256
    update_every: int = 2                 # agent steps between updates
    update_target_every: int = 10000      # agent steps between reward-feature refreshes

    def __post_init__(self) -> None:
        from policystack.errors import ConfigError
        if not 0 < self.critic_tau <= 1 or not 0 < self.gamma <= 1:
            raise ConfigError("critic_tau and gamma must be in (0, 1]")
        if min(self.nstep, self.batch_size, self.update_every, self.update_target_every) < 1:
            raise ConfigError("nstep, batch_size, update_every and update_target_every must be >= 1")


@torch.no_grad()
def soft_update(net: nn.Module, target: nn.Module, tau: float) -> None:
    """target <- tau * net + (1 - tau) * target."""
    for p, tp in zip(net.parameters(), target.parameters()):
        tp.data.lerp_(p.data, tau)


class DrQv2Agent:
    def __init__(self, policy: KOIPolicy, cfg: AgentConfig):
        self.policy, self.cfg = policy, cfg
        pc = policy.config
        self.critic = Critic(policy.encoder.repr_dim, pc.action_dim, pc.feature_dim, pc.hidden_dim)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # frozen reward networks: at the start the BC weights (spec §1.7)
        self.reward_encoder = copy.deepcopy(policy.encoder).requires_grad_(False)
        self.reward_trunk = copy.deepcopy(policy.actor.trunk).requires_grad_(False)
        self.encoder_opt = torch.optim.Adam(policy.encoder.parameters(), lr=cfg.lr)
        self.actor_opt = torch.optim.Adam(policy.actor.parameters(), lr=cfg.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr)
        self.reward_version = 0

    # ----- reward features --------------------------------------------------------------------
    def refresh_reward_networks(self) -> None:
        self.reward_encoder.load_state_dict(self.policy.encoder.state_dict())
        self.reward_trunk.load_state_dict(self.policy.actor.trunk.state_dict())
        self.reward_version += 1

    @torch.no_grad()
    def reward_features(self, stacks: np.ndarray, chunk: int = 256) -> torch.Tensor:
        """(T, 3S, H, W) uint8 stacks -> (T, feature_dim) target features (no augmentation)."""
        out = []
        for i in range(0, len(stacks), chunk):
            x = torch.as_tensor(stacks[i:i + chunk]).float()
            out.append(self.reward_trunk(self.reward_encoder(x)))
        return torch.cat(out)

    # ----- updates ----------------------------------------------------------------------------
    def critic_loss(self, obs_enc: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                    discount: torch.Tensor, next_enc: torch.Tensor) -> tuple[torch.Tensor, dict]:
        pc = self.policy.config
        with torch.no_grad():
            d = self.policy.actor(next_enc, pc.std)
            next_action = d.sample(clip=pc.std_clip)
            tq1, tq2 = self.critic_target(next_enc, next_action)
            target = reward + discount * torch.min(tq1, tq2)
        q1, q2 = self.critic(obs_enc, action)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        return loss, {"critic_loss": float(loss.detach()), "q1": float(q1.mean().detach()),
                      "target_q": float(target.mean())}

    def actor_loss(self, obs_enc: torch.Tensor) -> tuple[torch.Tensor, dict]:
        pc = self.policy.config
        h = obs_enc.detach()   # the encoder learns from the critic only
        d = self.policy.actor(h, pc.std)
        action = d.sample(clip=pc.std_clip)
        q1, q2 = self.critic(h, action)
        loss = -torch.min(q1, q2).mean()
        return loss, {"actor_loss": float(loss.detach())}

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        pc = self.policy.config
        self.policy.train()
        obs = torch.as_tensor(batch["obs"]).float()
        next_obs = torch.as_tensor(batch["next_obs"]).float()
        if pc.augment_pad:
            obs, next_obs = random_shift(obs, pc.augment_pad), random_shift(next_obs, pc.augment_pad)
        action = torch.as_tensor(batch["action"])
        reward = torch.as_tensor(batch["reward"])
        discount = torch.as_tensor(batch["discount"])
        obs_enc = self.policy.encoder(obs)
        with torch.no_grad():
            next_enc = self.policy.encoder(next_obs)
        closs, logs = self.critic_loss(obs_enc, action, reward, discount, next_enc)
        self.encoder_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        closs.backward()
        self.critic_opt.step()
        self.encoder_opt.step()
        aloss, alogs = self.actor_loss(obs_enc)
        self.actor_opt.zero_grad(set_to_none=True)
        aloss.backward()
        self.actor_opt.step()
        soft_update(self.critic, self.critic_target, self.cfg.critic_tau)
        logs.update(alogs)
        logs["batch_reward"] = float(reward.mean())
        return logs

    # ----- persistence ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"critic": self.critic.state_dict(), "critic_target": self.critic_target.state_dict(),
                "reward_encoder": self.reward_encoder.state_dict(), "reward_trunk": self.reward_trunk.state_dict(),
                "encoder_opt": self.encoder_opt.state_dict(), "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(), "reward_version": self.reward_version}

    def load_state_dict(self, d: dict) -> None:
        for name in ("critic", "critic_target", "reward_encoder", "reward_trunk",
                     "encoder_opt", "actor_opt", "critic_opt"):
            getattr(self, name).load_state_dict(d[name])
        self.reward_version = int(d["reward_version"])
