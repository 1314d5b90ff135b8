"""The whole online loop (OT reward + DrQ-v2) learns a 1-D pixel reach toy from one expert demo, with no
environment reward and no BC init (spec §5.1: "the agent solves a 1-D reach toy with the OT reward")."""

import numpy as np
import pytest
import torch

from policystack.spec import Feature, Spec
from policies.base import make_policy
from policies.koi import KOIConfig
from policies.koi.agent import AgentConfig, DrQv2Agent
from policies.koi.keystates import expert_weighting
from policies.koi.modeling_koi import FrameStack
from policies.koi.replay import EpisodeReplay, StoredEpisode, stack_at
from policies.koi.rewards import OTRewarder

CAM = "observation.images.toy"
SIZE, STEPS, START, GOAL = 24, 16, -0.8, 0.1
EPISODES, SEED_EPISODES = 50, 6


def render(x: float) -> np.ndarray:
    """A bar whose right end is at x: frames differ a lot between distant positions."""
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    c = int(round((x + 1) / 2 * (SIZE - 1)))
    img[:, : c + 1, 0] = 255
    img[:, c:c + 2, 1] = 255
    return img


def step(x: float, a: float) -> float:
    return float(np.clip(x + 0.15 * a, -1, 1))


def rollout(policy, explore, x0=START, rng=None):
    """One episode; with ``rng`` the actions are uniform random (DrQ-v2's seed exploration)."""
    x, frames, acts = x0, [render(x0)], [np.zeros(1, np.float32)]
    stack = FrameStack(policy.config.n_obs_steps)
    s = stack.reset(frames[0])
    for _ in range(STEPS):
        a = rng.uniform(-1, 1, 1).astype(np.float32) if rng is not None else policy.act(s, explore)
        x = step(x, float(a[0]))
        frames.append(render(x))
        acts.append(a)
        s = stack.push(frames[-1])
    return x, np.stack(frames), np.stack(acts)


@pytest.mark.slow
def test_ot_reward_alone_teaches_the_reach():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    feats = Spec.of([Feature(CAM, (SIZE, SIZE, 3), "uint8"), Feature("action", (1,), "float32", low=-1, high=1)])
    policy = make_policy(KOIConfig(hidden_dim=64, feature_dim=16, conv_channels=8, conv_strides=(2, 1),
                                   augment_pad=1, action_repeat=1), feats)
    # expert: full speed to the goal, then hold
    x, expert = START, [render(START)]
    for _ in range(STEPS):
        x = step(x, float(np.clip((GOAL - x) / 0.15, -1, 1)))
        expert.append(render(x))
    expert = np.stack(expert)
    goal_frame = int(np.argmax([abs(f[4, :, 0].nonzero()[0].mean() / (SIZE - 1) * 2 - 1 - GOAL) < 0.05 for f in expert]))
    nu = expert_weighting(len(expert), [goal_frame])
    agent = DrQv2Agent(policy, AgentConfig(lr=1e-3, batch_size=64, nstep=3, update_every=1))
    rewarder = OTRewarder([nu])
    replay = EpisodeReplay(10_000, nstep=3, gamma=0.99, frame_stack=3)
    exp_feats = None
    start_err = abs(rollout(policy, False)[0] - GOAL)
    # the reward networks stay at their initial (random) weights: there is no BC encoder to start from,
    # and refreshing from an RL encoder trained for a few hundred steps can collapse the features
    exp_feats = agent.reward_features(np.stack([stack_at(expert, t, 3) for t in range(len(expert))]))
    for episode in range(EPISODES):
        seed_phase = episode < SEED_EPISODES
        xf, frames, acts = rollout(policy, True, START + rng.uniform(-0.1, 0.1), rng if seed_phase else None)
        agent_feats = agent.reward_features(np.stack([stack_at(frames, t, 3) for t in range(len(frames))]))
        replay.add(StoredEpisode(frames, acts, rewarder(agent_feats, [exp_feats]).rewards.astype(np.float32)))
        if not seed_phase:
            for _ in range(STEPS):
                agent.update(replay.sample(64, rng))
    end_err = abs(rollout(policy, False)[0] - GOAL)
    assert end_err < 0.25 < start_err, (start_err, end_err)
