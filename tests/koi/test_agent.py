"""DrQ-v2 plumbing (spec §5.1 RL plumbing) and the KOI policy contract."""

import numpy as np
import pytest
import torch

from koi_helpers import CAM, tiny_features
from policies.base import load_policy, make_policy
from policies.koi import KOIConfig, KOIPolicy
from policies.koi.agent import AgentConfig, DrQv2Agent, soft_update
from policies.koi.keystates import Demo
from policies.koi.modeling_koi import FrameStack, TruncatedNormal
from policies.koi.replay import EpisodeReplay, StoredEpisode, nstep_return, sample_expert, stack_at
from policystack.errors import ConfigError, SpecMismatchError


def labelled_episode(T=12, size=4, seed=0):
    """Frame t is filled with the value t, so a stacked obs tells which frames it came from."""
    rng = np.random.default_rng(seed)
    frames = np.stack([np.full((size, size, 3), t, np.uint8) for t in range(T + 1)])
    actions = rng.uniform(-1, 1, (T + 1, 4)).astype(np.float32)
    rewards = rng.normal(size=T + 1).astype(np.float32)
    return StoredEpisode(frames, actions, rewards)


def test_nstep_return_matches_hand_computation():
    r = np.array([9.0, 1.0, -2.0, 0.5, 4.0])
    ret, disc = nstep_return(r, 1, 3, 0.9)
    assert ret == pytest.approx(1.0 + 0.9 * -2.0 + 0.81 * 0.5)
    assert disc == pytest.approx(0.9 ** 3)


def test_replay_samples_are_consistent_n_step_transitions(rng):
    ep = labelled_episode()
    buf = EpisodeReplay(capacity=1000, nstep=3, gamma=0.99, frame_stack=3)
    buf.add(ep)
    b = buf.sample(64, rng)
    assert b["obs"].shape == (64, 9, 4, 4) and b["next_obs"].shape == (64, 9, 4, 4)
    for i in range(64):
        t_obs = int(b["obs"][i, -1, 0, 0])            # newest frame of the stack = obs index idx-1
        idx = t_obs + 1
        assert 1 <= idx <= len(ep) - 3 + 1
        # stack: frames idx-3..idx-1, clamped at 0
        assert [int(b["obs"][i, 3 * k, 0, 0]) for k in range(3)] == [max(t_obs - 2 + k, 0) for k in range(3)]
        assert int(b["next_obs"][i, -1, 0, 0]) == idx + 3 - 1
        np.testing.assert_allclose(b["action"][i], ep.actions[idx])
        hand = ep.rewards[idx] + 0.99 * ep.rewards[idx + 1] + 0.99 ** 2 * ep.rewards[idx + 2]
        assert b["reward"][i, 0] == pytest.approx(hand, rel=1e-5)
        assert b["discount"][i, 0] == pytest.approx(0.99 ** 3)


def test_replay_capacity_drops_oldest_episodes_and_round_trips(tmp_path):
    buf = EpisodeReplay(capacity=25, nstep=3)
    for s in range(4):
        buf.add(labelled_episode(seed=s))
    assert len(buf.episodes) == 2 and len(buf) == 24
    ep = labelled_episode(seed=9)
    ep.save(tmp_path / "e.npz")
    back = StoredEpisode.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(back.frames, ep.frames)
    np.testing.assert_array_equal(back.rewards, ep.rewards)
    with pytest.raises(ValueError, match="shorter than nstep"):
        buf.add(labelled_episode(T=2))


def test_expert_sampler_pairs_obs_with_the_next_action(rng):
    ep = labelled_episode(T=8)
    demo = Demo(ep.frames, ep.actions)
    b = sample_expert([demo], 32, 3, rng)
    for i in range(32):
        t = int(b["obs"][i, -1, 0, 0]) + 1
        np.testing.assert_allclose(b["action"][i], demo.actions[t])


def test_soft_update_matches_hand_computation():
    torch.manual_seed(0)
    net, tgt = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expect = [0.01 * p.detach() + 0.99 * q.detach() for p, q in zip(net.parameters(), tgt.parameters())]
    soft_update(net, tgt, 0.01)
    for e, q in zip(expect, tgt.parameters()):
        torch.testing.assert_close(q.detach(), e)


def _batch(policy, B=8, seed=0):
    g = np.random.default_rng(seed)
    h = policy.config.input_spec[CAM].shape[0]
    return {"obs": g.integers(0, 255, (B, 9, h, h), dtype=np.uint8),
            "next_obs": g.integers(0, 255, (B, 9, h, h), dtype=np.uint8),
            "action": g.uniform(-1, 1, (B, 4)).astype(np.float32),
            "reward": g.normal(size=(B, 1)).astype(np.float32),
            "discount": np.full((B, 1), 0.97, np.float32)}


def test_actor_loss_leaves_encoder_gradients_untouched(tiny_policy):
    agent = DrQv2Agent(tiny_policy, AgentConfig(batch_size=8))
    obs = torch.as_tensor(_batch(tiny_policy)["obs"]).float()
    enc = tiny_policy.encoder(obs)
    loss, _ = agent.actor_loss(enc)
    loss.backward()
    assert all(p.grad is None for p in tiny_policy.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tiny_policy.actor.parameters())
    # ... whereas the critic loss does train the encoder
    b = _batch(tiny_policy)
    enc = tiny_policy.encoder(obs)
    with torch.no_grad():
        nxt = tiny_policy.encoder(torch.as_tensor(b["next_obs"]).float())
    closs, _ = agent.critic_loss(enc, torch.as_tensor(b["action"]), torch.as_tensor(b["reward"]),
                                 torch.as_tensor(b["discount"]), nxt)
    closs.backward()
    assert all(p.grad is not None for p in tiny_policy.encoder.parameters())


def test_full_update_moves_encoder_critic_actor_and_target(tiny_policy):
    agent = DrQv2Agent(tiny_policy, AgentConfig(batch_size=8))
    before = {n: [p.detach().clone() for p in m.parameters()] for n, m in
              dict(enc=tiny_policy.encoder, actor=tiny_policy.actor, critic=agent.critic,
                   target=agent.critic_target, reward_enc=agent.reward_encoder).items()}
    logs = agent.update(_batch(tiny_policy))
    assert {"critic_loss", "actor_loss", "q1", "target_q"} <= set(logs)
    for name, mod in dict(enc=tiny_policy.encoder, actor=tiny_policy.actor, critic=agent.critic,
                          target=agent.critic_target).items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], mod.parameters())), name
    # the reward networks only change on refresh
    assert all(torch.equal(a, b) for a, b in zip(before["reward_enc"], agent.reward_encoder.parameters()))
    agent.refresh_reward_networks()
    for a, b in zip(tiny_policy.encoder.parameters(), agent.reward_encoder.parameters()):
        assert torch.equal(a, b)


def test_critic_target_uses_clipped_min_of_two_q(tiny_policy):
    agent = DrQv2Agent(tiny_policy, AgentConfig(batch_size=8))
    b = _batch(tiny_policy)
    with torch.no_grad():
        enc = tiny_policy.encoder(torch.as_tensor(b["obs"]).float())
        nxt = tiny_policy.encoder(torch.as_tensor(b["next_obs"]).float())
        for head in (agent.critic_target.Q1, agent.critic_target.Q2):
            head[-1].bias.fill_(0)
        agent.critic_target.Q1[-1].bias.fill_(5.0)   # Q1 >> Q2: the target must use Q2
        torch.manual_seed(1)
        _, logs = agent.critic_loss(enc, torch.as_tensor(b["action"]), torch.as_tensor(b["reward"]),
                                    torch.as_tensor(b["discount"]), nxt)
        torch.manual_seed(1)
        a = tiny_policy.actor(nxt, 0.1).sample(clip=0.3)
        q1, q2 = agent.critic_target(nxt, a)
        assert (q1 > q2).all()
        hand = (torch.as_tensor(b["reward"]) + torch.as_tensor(b["discount"]) * q2).mean().item()
    assert logs["target_q"] == pytest.approx(hand, abs=1e-5)


def test_truncated_normal_clips_noise_and_stays_in_bounds():
    d = TruncatedNormal(torch.full((1000, 4), 0.95), torch.full((1000, 4), 1.0))
    s = d.sample(clip=0.3)
    assert (s < 1).all() and (s > -1).all()
    assert (s >= 0.65 - 1e-6).all()      # noise clipped to +-0.3


def test_bc_loss_decreases_on_a_tiny_demo(tiny_policy, rng):
    T = 10
    frames = np.stack([np.full((16, 16, 3), 20 * t, np.uint8) for t in range(T)])
    actions = np.stack([np.full(4, np.tanh(0.3 * t - 1.5), np.float32) for t in range(T)])
    demo = Demo(frames, actions)
    opt = torch.optim.Adam(tiny_policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        b = sample_expert([demo], 16, 3, rng)
        hwc = b["obs"].reshape(16, 3, 3, 16, 16).transpose(0, 1, 3, 4, 2)
        loss, logs = tiny_policy({CAM: hwc, "action": b["action"]})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["mse"])
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])


def test_select_action_holds_for_action_repeat_and_stacks_at_agent_rate(tiny_policy, tmp_path):
    obs = [{CAM: np.full((16, 16, 3), 10 * t, np.uint8), "task": "x",
            "observation.state": np.zeros(39, np.float32)} for t in range(6)]
    tiny_policy.reset()
    acts = [tiny_policy.select_action(o) for o in obs]
    assert all(a.shape == (4,) and a.dtype == np.float32 for a in acts)
    np.testing.assert_array_equal(acts[0], acts[1])      # held for action_repeat = 2
    np.testing.assert_array_equal(acts[2], acts[3])
    # the policy saw frames 0, 2, 4 (agent steps): its stack is [0, 2, 4]
    assert [int(f[0, 0, 0]) for f in tiny_policy._stack.frames] == [0, 20, 40]
    # a checkpoint acts identically (through the generic loader)
    tiny_policy.save_pretrained(tmp_path / "ckpt")
    loaded = load_policy(tmp_path / "ckpt")
    assert isinstance(loaded, KOIPolicy)
    tiny_policy.reset()
    loaded.reset()
    for o in obs:
        np.testing.assert_allclose(loaded.select_action(o), tiny_policy.select_action(o), atol=1e-6)


def test_mean_action_equals_predict_action_chunk(tiny_policy):
    stack = FrameStack(3)
    frames = [np.random.default_rng(i).integers(0, 255, (16, 16, 3), dtype=np.uint8) for i in range(3)]
    stack.reset(frames[0])
    stack.push(frames[1])
    s = stack.push(frames[2])
    a = tiny_policy.act(s, explore=False)
    chunk = tiny_policy.predict_action_chunk({CAM: np.stack(frames)[None]})
    np.testing.assert_allclose(chunk[0, 0].detach().numpy(), a, atol=1e-6)
    assert np.all(np.abs(a) <= 1)


def test_spec_errors_name_the_problem(tiny_policy):
    with pytest.raises(SpecMismatchError, match="observation.images.corner2"):
        tiny_policy.select_action({"observation.state": np.zeros(39, np.float32)})
    with pytest.raises(SpecMismatchError, match="camera"):
        make_policy(KOIConfig(camera="topview"), tiny_features())
    with pytest.raises(ConfigError):
        KOIConfig(chunk_size=4, n_action_steps=4)
