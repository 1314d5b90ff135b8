"""Test-only policies (real ``policies.base.Policy`` subclasses), imported by policy_node through its
``import_modules`` parameter (PYTHONPATH=tests/ros), the way an out-of-tree policy would be.

- ``ros_test_scripted``: action = gain * state[:A] (+ mean pixel of an optional image). A state whose
  first element is > 1000 makes it return NaN, so tests can drive NaN and out-of-range outputs.
- ``ros_test_expert``: Meta-World's scripted expert for ``task`` behind the Policy contract: a
  deterministic policy whose in-process and over-ROS rollouts must match step for step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from policies.base import Policy, PolicyConfig, make_policy, register_policy
from policystack import keys as K
from policystack.config import register_config
from policystack.spec import Feature, Spec


@register_config("policy", "ros_test_scripted")
@dataclass
class ScriptedConfig(PolicyConfig):
    gain: float = 1.0
    image_key: str = ""


@register_policy
class ScriptedPolicy(Policy):
    name = "ros_test_scripted"
    config_class = ScriptedConfig

    def __init__(self, config: ScriptedConfig):
        super().__init__(config)
        self.register_buffer("gain", torch.tensor(float(config.gain)))

    def predict_action_chunk(self, batch):
        state = batch[K.STATE].float()
        if state.dim() == 3:
            state = state[:, -1]
        a = self.gain * state[:, : self.config.action_dim]
        if self.config.image_key:
            img = batch[self.config.image_key].float()
            a = a + img.flatten(1).mean(1, keepdim=True) / 255.0
        a = torch.where(state[:, :1] > 1000, torch.full_like(a, float("nan")), a)
        return a[:, None, :].repeat(1, self.config.chunk_size, 1)

    def forward(self, batch):
        raise NotImplementedError


@register_config("policy", "ros_test_expert")
@dataclass
class ExpertConfig(PolicyConfig):
    task: str = "reach-v3"
    image_gain: float = 0.0   # > 0: the action also depends on the camera's red-blue balance


@register_policy
class ExpertPolicy(Policy):
    name = "ros_test_expert"
    config_class = ExpertConfig

    def __init__(self, config: ExpertConfig):
        super().__init__(config)
        from metaworld.policies import ENV_POLICY_MAP
        self._expert = ENV_POLICY_MAP[config.task]()
        self.register_buffer("unused", torch.zeros(1))

    def predict_action_chunk(self, batch):
        states = batch[K.STATE].double().cpu().numpy()
        acts = np.stack([np.clip(self._expert.get_action(s), -1, 1) for s in states])
        images = [k for k in self.config.input_features if K.modality_of(k) == "images"]
        if self.config.image_gain and images:
            img = batch[images[0]].double().cpu().numpy()          # (B, H, W, 3) uint8 values
            balance = (img[..., 0].mean(axis=(1, 2)) - img[..., 2].mean(axis=(1, 2))) / 255.0
            acts[:, :3] += self.config.image_gain * balance[:, None]
        return torch.as_tensor(acts, dtype=torch.float32)[:, None, :]

    def forward(self, batch):
        raise NotImplementedError


def scripted_checkpoint(out: Path, state_dim: int = 4, action_dim: int = 4, gain: float = 1.0,
                        image_shape: tuple | None = None, low: float = -1.0, high: float = 1.0,
                        camera: str = "cam") -> Path:
    feats = [Feature(K.STATE, (state_dim,), "float32")]
    image_key = ""
    if image_shape is not None:
        image_key = K.image_key(camera)
        feats.append(Feature(image_key, tuple(image_shape), "uint8"))
    feats.append(Feature(K.ACTION, (action_dim,), "float32", low=low, high=high))
    policy = make_policy(ScriptedConfig(gain=gain, image_key=image_key), Spec.of(feats))
    return policy.save_pretrained(out)


def expert_checkpoint(out: Path, task: str = "reach-v3", env_kwargs: dict | None = None,
                      image_gain: float = 0.0) -> Path:
    import sim
    env = sim.make_env(task, **(env_kwargs or {}))
    feats = env.unwrapped.spec_features
    env.close()
    keep = Spec.of(f for f in feats if f.key != K.TASK and K.modality_of(f.key) in ("state", "action", "images"))
    return make_policy(ExpertConfig(task=task, image_gain=image_gain), keep).save_pretrained(out)
