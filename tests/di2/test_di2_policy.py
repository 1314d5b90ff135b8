"""DI² policy contract: config validation, input specs per depth source, RGB-only deployment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policystack import keys as K
from policystack.config import ConfigError, apply_overrides
from policystack.errors import SpecMismatchError
from policystack.spec import Feature, Spec
from policies.base import load_policy, make_policy

from di2_helpers import CAMERAS, IMAGE_SIZE, tiny_policy_config

SIZE = 32


def _features(depth: bool = True, cams=CAMERAS, action_dim: int = 7) -> Spec:
    feats = [Feature(K.image_key(c), (SIZE, SIZE, 3), "uint8") for c in cams]
    if depth:
        feats += [Feature(K.depth_key(c), (SIZE, SIZE), "float32") for c in cams]
    feats += [Feature(K.TASK, (), "str"), Feature(K.ACTION, (action_dim,), "float32")]
    return Spec.of(feats)


def _stats(a: int = 7):
    return {K.ACTION: {"min": -np.ones(a, np.float32), "max": np.ones(a, np.float32),
                       "mean": np.zeros(a, np.float32), "std": np.ones(a, np.float32)}}


def _obs(rng, depth: bool = False) -> dict:
    obs = {K.image_key(c): rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8) for c in CAMERAS}
    if depth:
        obs.update({K.depth_key(c): rng.uniform(0.5, 2.0, (SIZE, SIZE)).astype(np.float32) for c in CAMERAS})
    obs[K.TASK] = "open the top drawer"
    return obs


class _Forbidden(torch.nn.Module):
    def forward(self, *a, **k):
        raise AssertionError("the depth branch was called on an RGB-only path")


def test_config_validation_names_the_problem():
    with pytest.raises(ConfigError, match="depth_source"):
        tiny_policy_config(depth_source="lidar")
    with pytest.raises(ConfigError, match="stage"):
        tiny_policy_config(stage="stage7")
    with pytest.raises(ConfigError, match="divisible"):
        tiny_policy_config(dim=30, heads=4)
    with pytest.raises(ConfigError, match="shift_pads"):
        tiny_policy_config(shift_pads=(1, 2, 3))
    cfg = apply_overrides(tiny_policy_config(), ["window=5"])
    assert cfg.window == 5 and cfg.n_obs_steps == 5  # the base policy keeps `window` frames of history


def test_input_spec_has_depth_only_when_the_depth_source_reads_it():
    for source, has_depth in [("none", False), ("dcm", False), ("dcm_vq", False), ("gt", True), ("gt_vq", True)]:
        p = make_policy(tiny_policy_config(depth_source=source), _features(), _stats())
        keys = p.config.input_spec.keys()
        assert any(K.modality_of(k) == "depth" for k in keys) is has_depth, source
        assert K.TASK in keys and all(K.image_key(c) in keys for c in CAMERAS)
    # a depth-reading policy cannot be built from an RGB-only source: named key in the error
    with pytest.raises(SpecMismatchError, match="observation.depth.corner2"):
        make_policy(tiny_policy_config(depth_source="gt"), _features(depth=False), _stats())
    with pytest.raises(SpecMismatchError, match="observation.images.wrist"):
        make_policy(tiny_policy_config(cameras=("corner2", "wrist")), _features(), _stats())


@pytest.mark.parametrize("depth_encoder", ["shared", "own"])
def test_rgb_only_deployment_never_calls_the_depth_branch(rng, tmp_path, depth_encoder):
    torch.manual_seed(0)
    policy = make_policy(tiny_policy_config(depth_source="gt", depth_encoder=depth_encoder), _features(), _stats())
    policy.save_pretrained(tmp_path / "ckpt")
    deployed = load_policy(tmp_path / "ckpt").set_depth_source("dcm_vq", stage="di2")
    if depth_encoder == "own":
        deployed.depth_encoder = _Forbidden()
    else:   # the depth image shares the RGB encoder; the depth branch is then the depth resampler
        assert deployed.depth_encoder is None
    deployed.depth_resampler = _Forbidden()
    assert not [k for k in deployed.config.input_spec.keys() if K.modality_of(k) == "depth"]
    deployed.reset()
    for _ in range(4):  # the window fills over steps; observations carry no depth at all
        a = deployed.select_action(_obs(rng))
    assert a.shape == (7,) and np.isfinite(a).all() and a[-1] in (-1.0, 1.0)
    # even when the observation has depth, the RGB-only policy does not read it
    deployed.select_action(_obs(rng, depth=True))
    # the mock is effective: a depth-reading source does hit it
    deployed.set_depth_source("gt")
    with pytest.raises(AssertionError, match="depth branch"):
        deployed.select_action(_obs(rng, depth=True))


def test_rgb_only_sources_give_the_same_action_with_or_without_depth_in_the_observation(rng):
    torch.manual_seed(0)
    policy = make_policy(tiny_policy_config(depth_source="dcm_vq"), _features(), _stats()).eval()
    obs = _obs(rng, depth=True)
    a1 = policy.select_action(obs)
    policy.reset()
    a2 = policy.select_action({k: v for k, v in obs.items() if K.modality_of(k) != "depth"})
    np.testing.assert_array_equal(a1, a2)


def test_checkpoint_round_trip_acts_identically(rng, tmp_path):
    torch.manual_seed(0)
    policy = make_policy(tiny_policy_config(depth_source="gt"), _features(), _stats()).eval()
    with torch.no_grad():  # make the heads non-trivial
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    policy.save_pretrained(tmp_path / "ckpt")
    loaded = load_policy(tmp_path / "ckpt")
    assert loaded.config.input_spec == policy.config.input_spec
    assert (loaded.config.depth_source, loaded.config.window) == ("gt", policy.config.window)
    obs = _obs(rng, depth=True)
    for _ in range(3):
        np.testing.assert_allclose(policy.select_action(obs), loaded.select_action(obs), atol=1e-6)


def test_window_history_changes_the_action_and_reset_forgets_it(rng):
    torch.manual_seed(0)
    policy = make_policy(tiny_policy_config(depth_source="none", window=3), _features(), _stats()).eval()
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.1 * torch.randn_like(p))
    o1, o2 = _obs(rng), _obs(rng)
    first = policy.select_action(o2)
    policy.reset()
    policy.select_action(o1)
    after_history = policy.select_action(o2)
    policy.reset()
    again = policy.select_action(o2)
    assert not np.allclose(first[:-1], after_history[:-1])  # the LSTM saw o1 first
    np.testing.assert_allclose(first, again, atol=1e-6)


def test_action_loss_masks_padding_and_weights_the_gripper(rng):
    torch.manual_seed(0)
    policy = make_policy(tiny_policy_config(depth_source="none", gripper_loss_weight=0.5), _features(),
                         _stats()).eval()
    b, w = 4, 3
    batch = {K.image_key(c): torch.from_numpy(rng.integers(0, 255, (b, w, SIZE, SIZE, 3), dtype=np.uint8))
             for c in CAMERAS}
    batch[K.TASK] = ["open the top drawer"] * b
    batch[K.ACTION] = torch.from_numpy(rng.uniform(-1, 1, (b, w, 7)).astype(np.float32))
    batch[K.ACTION][..., -1] = 1.0
    batch["valid"] = torch.ones(b, w, dtype=torch.bool)
    loss, logs = policy.action_loss(batch)
    assert loss.item() == pytest.approx(logs["arm"] + 0.5 * logs["grip_bce"], rel=1e-5)
    # garbage in padded steps does not change the loss
    batch["valid"][:, 0] = False
    l1, _ = policy.action_loss(batch)
    batch[K.ACTION][:, 0] = 0.9
    l2, _ = policy.action_loss(batch)
    assert l1.item() == pytest.approx(l2.item(), rel=1e-6)


def test_shared_depth_encoder_is_the_rgb_encoder_and_own_is_separate():
    torch.manual_seed(0)
    shared = make_policy(tiny_policy_config(depth_source="gt"), _features(), _stats()).eval()
    assert shared.config.depth_encoder == "shared"           # the paper: one frozen CLIP for RGB and depth
    assert not [n for n, _ in shared.named_parameters() if n.startswith("depth_encoder.")]
    depth = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(shared.depth_tokens(depth), shared.depth_resampler(shared.rgb_encoder(depth)))
    own = make_policy(tiny_policy_config(depth_source="gt", depth_encoder="own"), _features(), _stats())
    assert [n for n, _ in own.named_parameters() if n.startswith("depth_encoder.")]
    with pytest.raises(ConfigError, match="depth_encoder"):
        tiny_policy_config(depth_encoder="clip")


def test_checkpoint_from_before_the_depth_encoder_option_still_loads_as_own(tmp_path):
    import json
    torch.manual_seed(0)
    old = make_policy(tiny_policy_config(depth_source="gt", depth_encoder="own"), _features(), _stats())
    d = old.save_pretrained(tmp_path / "old")
    cfg = json.loads((d / "config.json").read_text())
    del cfg["depth_encoder"]                                   # what sessions 1-4 wrote
    (d / "config.json").write_text(json.dumps(cfg))
    loaded = load_policy(d)
    assert loaded.config.depth_encoder == "own"
    depth = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(loaded.depth_tokens(depth), old.eval().depth_tokens(depth))
