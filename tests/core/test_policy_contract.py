"""The Policy contract on the BC baseline: queue, ensembling, history, checkpoints, errors."""

import numpy as np
import pytest
import torch

from policystack import config as C
from policystack.checkpoint import WEIGHTS_NAME
from policystack.errors import CheckpointError, SpecMismatchError, UnknownNameError
from policystack.spec import Feature, Spec
from policies import available_policies, get_policy_class, load_policy, make_policy

FEATS = Spec.of([Feature("observation.state", (6,), "float32"),
                 Feature("observation.images.cam", (32, 32, 3), "uint8"),
                 Feature("task", (), "str"),
                 Feature("action", (2,), "float32")])
STATS = {"observation.state": {"mean": np.zeros(6), "std": np.ones(6), "min": -np.ones(6), "max": np.ones(6)},
         "action": {"mean": np.zeros(2), "std": np.ones(2), "min": -2 * np.ones(2), "max": 2 * np.ones(2)}}


def _obs(seed=0):
    rng = np.random.default_rng(seed)
    return {"observation.state": rng.normal(size=6).astype(np.float32),
            "observation.images.cam": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), "task": "go"}


def _bc(**kw):
    cfg = C.config_class("policy", "bc")(**kw)
    return make_policy(cfg, FEATS, STATS)


def test_registry_finds_policies_by_convention():
    assert "bc" in available_policies()
    assert get_policy_class("bc").name == "bc"
    with pytest.raises(UnknownNameError, match="unknown policy 'nope'"):
        get_policy_class("nope")


def test_select_action_runs_model_once_per_chunk():
    p = _bc(chunk_size=4, n_action_steps=3)
    calls = []
    orig = p.predict_action_chunk
    p.predict_action_chunk = lambda b: (calls.append(1), orig(b))[1]
    p.reset()
    acts = [p.select_action(_obs(i)) for i in range(7)]
    assert len(calls) == 3 and all(a.shape == (2,) and a.dtype == np.float32 for a in acts)


def test_temporal_ensembling_weights_oldest_most():
    p = _bc(chunk_size=3, n_action_steps=1, temporal_ensemble_coeff=0.5)
    chunks = iter([torch.tensor([[[1.0, 1], [2, 2], [3, 3]]]), torch.tensor([[[10.0, 10], [20, 20], [30, 30]]])])
    p.predict_action_chunk = lambda b: next(chunks)
    p.reset()
    assert np.allclose(p.select_action(_obs()), [1, 1])
    w = np.exp(-0.5 * np.arange(2))
    assert np.allclose(p.select_action(_obs()), (2 * w[0] + 10 * w[1]) / w.sum())


def test_history_repeats_first_frame():
    p = _bc(n_obs_steps=2)
    seen = []
    orig = p.predict_action_chunk
    p.predict_action_chunk = lambda b: (seen.append(b["observation.state"].clone()), orig(b))[1]
    p.reset()
    p.select_action(_obs(0))
    p.select_action(_obs(1))
    assert seen[0].shape == (1, 2, 6) and torch.equal(seen[0][0, 0], seen[0][0, 1])
    assert torch.allclose(seen[1][0, 1], torch.from_numpy(_obs(1)["observation.state"]))


def test_checkpoint_round_trip_acts_identically_without_stats(tmp_path):
    p = _bc(use_language=True)
    p.save_pretrained(tmp_path / "ck")
    q = load_policy(tmp_path / "ck")  # no stats passed: the normaliser is in the weights
    p.reset(), q.reset()
    np.testing.assert_allclose(p.select_action(_obs(3)), q.select_action(_obs(3)), rtol=1e-6)
    assert q.normalizer.fitted


def test_bad_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_policy(tmp_path / "missing")
    p = _bc()
    p.save_pretrained(tmp_path / "ck")
    (tmp_path / "ck" / WEIGHTS_NAME).write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_policy(tmp_path / "ck")
    p.save_pretrained(tmp_path / "ck2")
    (tmp_path / "ck2" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not JSON"):
        load_policy(tmp_path / "ck2")
    other = _bc(hidden_dim=16)
    other.save_pretrained(tmp_path / "ck3")
    import json
    cfg = json.loads((tmp_path / "ck3" / "config.json").read_text())
    cfg["hidden_dim"] = 64  # weights no longer fit the architecture
    (tmp_path / "ck3" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_policy(tmp_path / "ck3")


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    p = _bc()
    p.save_pretrained(tmp_path / "ck")
    before = (tmp_path / "ck" / WEIGHTS_NAME).read_bytes()
    import policies.base as base

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(base, "save_weights", boom)
    with pytest.raises(KeyboardInterrupt):
        _bc(hidden_dim=8).save_pretrained(tmp_path / "ck")
    assert (tmp_path / "ck" / WEIGHTS_NAME).read_bytes() == before
    assert not [x for x in tmp_path.iterdir() if x.name.startswith(".")]  # no temp dirs left behind


def test_missing_observation_key_is_named():
    p = _bc()
    obs = _obs()
    del obs["observation.images.cam"]
    with pytest.raises(SpecMismatchError, match="observation.images.cam"):
        p.select_action(obs)


def test_nan_actions_never_leave_the_policy():
    p = _bc()
    p.predict_action_chunk = lambda b: torch.full((1, 1, 2), float("nan"))
    p.reset()
    with pytest.raises(FloatingPointError):
        p.select_action(_obs())
