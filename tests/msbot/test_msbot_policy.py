"""MS-Bot / Concat / MULSA policies: shapes (spec §6.2 item 5), persistence, acting, balance hooks."""

import numpy as np
import pytest
import torch

from policies.base import load_policy, make_policy
from policies.concat_fusion import ConcatFusionConfig
from policies.msbot import MSBotConfig
from policies.msbot.multisensory_policy import HISTORY_KEY, STAGE_KEY, STAGE_WEIGHTS_KEY
from policies.msbot.tokens import ActionCodec, frame_indices, primitives_from_actions
from policystack import keys as K
from policystack.config import ConfigError, apply_overrides
from policystack.spec import Feature, Spec

PRIMS = [[0, 0, 0, 0], [1, 0, 0, 0], [-1, 0, 0, 0], [0, 1, 0, 0], [0, -1, 0, 0], [0, 0, -1, 0], [0, 0, 0, 1]]


def paper_spec():
    """MS-Bot pouring-size inputs: RGB + tactile images 96x128, a 3-s 16-kHz microphone window."""
    return Spec.of([Feature(K.image_key("rgb"), (96, 128, 3), "uint8"),
                    Feature(K.tactile_key("gelsight"), (96, 128, 3), "uint8"),
                    Feature(K.audio_key("mic"), (1, 48000), "float32"),
                    Feature(K.STATE, (4,), "float32"),
                    Feature(K.ACTION, (4,), "float32")])


def sim_spec():
    return Spec.of([Feature(K.image_key("front"), (32, 32, 3), "uint8"),
                    Feature(K.tactile_key("fingers"), (6, 12, 12), "float32"),
                    Feature(K.audio_key("mic"), (1, 3200), "float32"),
                    Feature(K.STATE, (4,), "float32"), Feature(K.TASK, (), "str"),
                    Feature(K.ACTION, (4,), "float32")])


def batch_for(spec, B, n_obs, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for f in spec:
        if f.key in (K.ACTION, K.TASK):
            continue
        shape = (B, n_obs) + tuple(f.shape)
        out[f.key] = torch.randint(0, 255, shape, generator=g, dtype=torch.uint8) if f.dtype == "uint8" \
            else torch.randn(shape, generator=g) * 0.05
    out[K.ACTION] = torch.tensor(PRIMS, dtype=torch.float32)[torch.randint(7, (B,), generator=g)]
    out[HISTORY_KEY] = torch.randint(-1, 7, (B, 50), generator=g)
    out[STAGE_KEY] = torch.randint(0, 3, (B,), generator=g)
    out[STAGE_WEIGHTS_KEY] = torch.rand(B, 3, generator=g)
    return out


def small(cfg, **tok):
    cfg.tokenizer.channels = 8
    cfg.tokenizer.token_dim = 16
    for k, v in tok.items():
        setattr(cfg.tokenizer, k, v)
    cfg.n_heads = 2
    return cfg


def test_paper_shapes_give_action_logits():
    cfg = small(MSBotConfig(primitives=PRIMS))
    policy = make_policy(cfg, paper_spec()).eval()
    tok = policy.tokenizer
    b = batch_for(paper_spec(), 2, 15)
    assert tok.prepare(K.audio_key("mic"), b[K.audio_key("mic")]).shape == (2, 6, 1, 64, 48)
    assert tok.prepare(K.image_key("rgb"), b[K.image_key("rgb")]).shape == (2, 6, 3, 96, 128)
    logits, extras = policy.action_logits(b)
    assert logits.shape == (2, 7)
    assert extras["attention_mass"].shape == (2, 3)
    torch.testing.assert_close(extras["attention_mass"].sum(-1), torch.ones(2))


def test_frames_are_taken_evenly_over_the_history_ending_now():
    assert frame_indices(15, 6) == [0, 3, 6, 8, 11, 14]
    assert frame_indices(6, 6) == list(range(6))


def test_audio_stream_mode_concatenates_consecutive_chunks():
    cfg = small(MSBotConfig(primitives=PRIMS), audio_stream=True)
    policy = make_policy(cfg, sim_spec())
    x = torch.arange(15 * 3200, dtype=torch.float32).view(1, 15, 1, 3200)
    torch.testing.assert_close(policy.tokenizer.audio_window(x)[0, 0], x.flatten())
    window = make_policy(small(MSBotConfig(primitives=PRIMS)), sim_spec()).tokenizer.audio_window(x)
    assert torch.all(window[0, 0, :-3200] == 0) and torch.equal(window[0, 0, -3200:], x[0, -1, 0])


@pytest.mark.parametrize("kind", ["msbot", "concat", "mulsa"])
def test_train_step_save_load_and_act(tmp_path, kind):
    if kind == "msbot":
        cfg = small(MSBotConfig(primitives=PRIMS), audio_stream=True)
    else:
        cfg = small(ConcatFusionConfig(primitives=PRIMS, fusion=kind), audio_stream=True)
    policy = make_policy(cfg, sim_spec())
    b = batch_for(sim_spec(), 8, 15)
    policy.train()
    loss, logs = policy(b)
    loss.backward()
    assert np.isfinite(float(loss.detach())) and 0 <= logs["acc"] <= 1
    if kind == "msbot":
        assert "gate_loss" not in logs                     # warm-up: no stage tokens yet
        policy.init_stage_tokens([b])
        _, logs = policy(b)
        assert "gate_loss" in logs and "gate_acc" in logs
    policy.save_pretrained(tmp_path / "p")
    loaded = load_policy(tmp_path / "p")
    policy.eval()
    torch.testing.assert_close(policy.action_logits(b)[0], loaded.action_logits(b)[0])
    obs = {k: (v[0, -1].numpy() if torch.is_tensor(v) else v) for k, v in b.items()
           if k.startswith("observation.")}
    obs[K.TASK] = "x"
    loaded.reset()
    for _ in range(3):
        a = loaded.select_action(obs)
        assert a.dtype == np.float32 and a.shape == (4,)
        assert any(np.array_equal(a, np.asarray(p, np.float32)) for p in PRIMS)
    assert len(loaded._executed) == 3
    loaded.reset()
    assert len(loaded._executed) == 0


def test_runtime_history_feeds_the_lstm():
    policy = make_policy(small(MSBotConfig(primitives=PRIMS)), sim_spec())
    policy._executed.extend([1, 2, 3])
    h = policy.history_tensor({}, 2)
    assert h.shape == (2, 50) and h[0, -3:].tolist() == [1, 2, 3] and torch.all(h[:, :-3] == -1)


@pytest.mark.parametrize("per_stage", [False, True])
def test_ogm_inside_the_policy_scales_each_encoder_gradient_by_its_coefficient(per_stage):
    def grads(method):
        torch.manual_seed(0)
        cfg = small(MSBotConfig(primitives=PRIMS), audio_stream=True)
        cfg = apply_overrides(cfg, [f"balance.method={method}", "balance.alpha=0.5",
                                    f"balance.per_stage={str(per_stage).lower()}"])
        p = make_policy(cfg, sim_spec()).train()
        p.fusion.blur_p = 0.0
        p.tokenizer.cfg.image_shift = 0
        p.tokenizer.cfg.rgb_jitter = p.tokenizer.cfg.tactile_jitter = (0.0, 0.0, 0.0)
        b = batch_for(sim_spec(), 16, 15)
        loss, logs = p(b)
        loss.backward()
        return {k: torch.cat([q.grad.flatten() for q in v if q.grad is not None])
                for k, v in p.modality_parameters().items()}, logs, b

    g0, _, _ = grads("none")
    g1, logs, b = grads("ogm")
    if not per_stage:
        ks = {m: logs[f"k_{m}"] for m in g0}
        assert min(ks.values()) < 1.0 and max(ks.values()) == 1.0    # exactly one modality dominates
        for m in g0:
            torch.testing.assert_close(g1[m], ks[m] * g0[m], rtol=1e-4, atol=1e-8)
    else:
        present = sorted(set(b[STAGE_KEY].tolist()))
        assert all(f"k_{m}_s{s}" in logs for m in g0 for s in present)
        assert any(not torch.allclose(g1[m], g0[m]) for m in g0)


def test_opm_inside_the_policy_runs():
    cfg = small(MSBotConfig(primitives=PRIMS), audio_stream=True)
    cfg = apply_overrides(cfg, ["balance.method=opm", "balance.p_exe=1.0", "balance.q_base=1.0"])
    p = make_policy(cfg, sim_spec()).train()
    loss, logs = p(batch_for(sim_spec(), 16, 15))
    loss.backward()
    assert np.isfinite(float(loss.detach())) and any(k.startswith("q_") for k in logs)


def test_config_validation():
    with pytest.raises(ConfigError):
        MSBotConfig(chunk_size=2, n_action_steps=1)
    with pytest.raises(ConfigError):
        MSBotConfig(beta=1.5)
    with pytest.raises(ConfigError):
        ConcatFusionConfig(fusion="sum")
    with pytest.raises(ConfigError):
        apply_overrides(MSBotConfig(), ["tokenizer.token_dim=30"])      # not divisible by 4 heads


def test_action_codec_and_primitives():
    codec = ActionCodec(PRIMS, 4)
    a = torch.tensor([[0.9, 0.1, 0, 0], [0, 0, -0.7, 0.1], [0, 0, 0, 0.05]])
    assert codec.classify(a).tolist() == [1, 5, 0]
    torch.testing.assert_close(codec.decode(torch.tensor([6])), torch.tensor([[0.0, 0, 0, 1]]))
    assert ActionCodec(None, 2).n_classes == 5                     # wait + ±1 per axis
    prims = primitives_from_actions(np.asarray(PRIMS * 3, np.float32))
    assert prims[0] == [0, 0, 0, 0] and len(prims) == 7


@pytest.mark.parametrize("from_tokens", [True, False])
def test_state_token_sees_the_newest_tokens_only_when_configured(from_tokens):
    """Reference: z (query, gate input) takes each modality's newest token; the diagnostic variant
    ``state_from_tokens=false`` builds z from the action history and proprio only."""
    spec = sim_spec()
    cfg = small(MSBotConfig(primitives=PRIMS, state_from_tokens=from_tokens))
    policy = make_policy(cfg, features=spec).eval()
    tokens, cond = policy.tokenizer(batch_for(spec, 4, cfg.n_obs_steps))
    hist = policy.history(torch.full((4, 50), -1, dtype=torch.long))
    z = policy.state_token(tokens, cond, hist)
    shifted = {k: v + 1.0 for k, v in tokens.items()}
    moved = (policy.state_token(shifted, cond, hist) - z).abs().max().item()
    assert (moved > 1e-4) == from_tokens


def test_color_jitter_acts_in_training_only_and_bad_factors_are_refused():
    cfg = small(MSBotConfig(primitives=PRIMS), image_shift=0)
    tok = make_policy(cfg, sim_spec()).tokenizer
    key, tkey = K.image_key("front"), K.tactile_key("fingers")
    b = batch_for(sim_spec(), 2, 15)
    tok.eval()
    ref = {k: tok.prepare(k, b[k]).flatten(0, 1) for k in (key, tkey)}
    torch.testing.assert_close(tok._encode_frames(key, ref[key]), tok._encode_frames(key, ref[key]))
    tok.train()
    for k in (key, tkey):
        out = tok._augment(k, ref[k])
        assert out.shape == ref[k].shape and not torch.allclose(out, ref[k])
    assert tok._augment(key, ref[key]).min() >= -0.5 - 1e-6          # RGB stays in convert()'s range
    tok.cfg.rgb_jitter = tok.cfg.tactile_jitter = (0.0, 0.0, 0.0)
    torch.testing.assert_close(tok._augment(key, ref[key]), ref[key])
    with pytest.raises(ConfigError, match="rgb_jitter"):
        apply_overrides(MSBotConfig(primitives=PRIMS), ["tokenizer.rgb_jitter=[0.2,-1,0]"])
