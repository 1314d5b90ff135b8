"""The frozen-encoder LCBC probe policy (spec §1.7): frozen encoder, checkpoint round trip, acting."""

import numpy as np
import pytest
import torch

from policies.base import load_policy, make_policy
from policies.decisionnce import DecisionNCEConfig
from policies.decisionnce.encoder import DualEncoder
from policystack import keys as K
from policystack.dataset import compute_stats, features_of
from policystack.errors import SpecMismatchError

from dnce_helpers import IMG, synthetic_world


def _setup(tiny_encoder_cfg, tmp_path, with_path=True):
    eps = [e for v in synthetic_world(3, 2, T=10).values() for e in v]
    feats = features_of(eps)
    path = None
    if with_path:
        torch.manual_seed(5)
        DualEncoder(tiny_encoder_cfg).save(tmp_path / "enc")
        path = str(tmp_path / "enc")
    cfg = DecisionNCEConfig(encoder_path=path, encoder=tiny_encoder_cfg, state_indices=(0, 1, 2), chunk_size=2)
    pol = make_policy(cfg, feats, compute_stats(eps, [K.STATE, K.ACTION]))
    return pol, eps


def test_encoder_is_frozen_and_loaded_from_its_directory(tiny_encoder_cfg, tmp_path):
    pol, eps = _setup(tiny_encoder_cfg, tmp_path)
    saved = DualEncoder.load(tmp_path / "enc")
    assert torch.equal(pol.encoder.model.visual.conv1.weight, saved.model.visual.conv1.weight)
    names = {id(p) for p in pol.optim_params()}
    assert not any(id(p) in names for p in pol.encoder.parameters())
    pol.train()
    assert not pol.encoder.training             # BatchNorm statistics stay put
    rv = pol.encoder.model.visual.bn1.running_mean.clone()
    batch = {IMG: torch.from_numpy(eps[0].obs[IMG][:4]), K.STATE: torch.from_numpy(eps[0].obs[K.STATE][:4]),
             K.TASK: [eps[0].task] * 4, K.ACTION: torch.zeros(4, 2, 4)}
    loss, _ = pol(batch)
    loss.backward()
    assert torch.equal(rv, pol.encoder.model.visual.bn1.running_mean)
    assert pol.head[0].weight.grad is not None and pol.encoder.model.visual.conv1.weight.grad is None


def test_random_encoder_baseline_depends_on_its_seed(tiny_encoder_cfg, tmp_path):
    import dataclasses
    pol, _ = _setup(tiny_encoder_cfg, tmp_path, with_path=False)
    other = type(pol)(dataclasses.replace(pol.config, encoder_seed=1))
    again = type(pol)(pol.config)
    w = lambda p: p.encoder.model.visual.conv1.weight
    assert torch.equal(w(pol), w(again)) and not torch.equal(w(pol), w(other))


def test_checkpoint_round_trip_acts_identically(tiny_encoder_cfg, tmp_path):
    pol, eps = _setup(tiny_encoder_cfg, tmp_path)
    pol.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "enc" / "encoder.safetensors").unlink()     # the checkpoint must not need the encoder dir
    back = load_policy(tmp_path / "ckpt")
    obs = {IMG: eps[1].obs[IMG][3], K.STATE: eps[1].obs[K.STATE][3], K.TASK: eps[1].task}
    a, b = pol.select_action(obs), back.select_action(obs)
    assert a.shape == (4,) and a.dtype == np.float32 and np.allclose(a, b, atol=1e-6)


def test_missing_instruction_or_image_is_a_spec_error(tiny_encoder_cfg, tmp_path):
    eps = [e for v in synthetic_world(2, 1, T=6).values() for e in v]
    from policystack.spec import Spec
    feats = features_of(eps)
    no_task = Spec.of([f for f in feats if f.key != K.TASK])
    with pytest.raises(SpecMismatchError, match="task"):
        make_policy(DecisionNCEConfig(encoder=tiny_encoder_cfg), no_task)
    no_img = Spec.of([f for f in feats if f.key != IMG])
    with pytest.raises(SpecMismatchError, match="image"):
        make_policy(DecisionNCEConfig(encoder=tiny_encoder_cfg), no_img)
