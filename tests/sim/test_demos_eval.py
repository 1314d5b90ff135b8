"""The spine closes the loop: expert demos -> BC -> closed-loop evaluation with fixed init states."""

import json

import numpy as np
import pytest

from policystack.dataset import read_episodes
from policystack.evaluation import evaluate
from policies import load_policy

pytestmark = pytest.mark.sim


def test_demos_are_successful_hdf5_episodes(reach_demos):
    eps = read_episodes(reach_demos)
    assert len(eps) == 50 and all(e.attrs["success"] for e in eps)
    assert eps[0].task == "reach the goal position" and eps[0].actions.shape[1] == 4
    assert len({e.attrs["init_state_index"] for e in eps}) == 50


def test_state_bc_solves_reach(reach_policy_dir, tmp_path):
    report = evaluate(reach_policy_dir, "reach-v3", n_episodes=10, video_dir=tmp_path / "v", max_videos=1,
                      out_dir=tmp_path, progress=False)
    assert report["success_rate"] >= 0.9, report
    assert [e["init_state_index"] for e in report["episodes"]] == list(range(10))
    assert len(report["videos"]) == 1 and json.loads((tmp_path / "eval_info.json").read_text())["n_episodes"] == 10


def test_async_vector_eval_keeps_init_states_and_matches_serial(reach_policy_dir):
    policy = load_policy(reach_policy_dir)
    serial = evaluate(policy, "reach-v3", n_episodes=5, start_index=20, progress=False)
    parallel = evaluate(policy, "reach-v3", n_episodes=5, start_index=20, n_envs=2, progress=False)
    assert [e["init_state_index"] for e in parallel["episodes"]] == list(range(20, 25))
    assert [(e["success"], e["length"]) for e in parallel["episodes"]] == \
        [(e["success"], e["length"]) for e in serial["episodes"]]


def test_policy_env_mismatch_fails_at_start(reach_policy_dir):
    """A policy trained on other features fails before any step, naming the key."""
    import dataclasses

    from policystack.errors import SpecMismatchError
    from policystack.spec import Feature
    policy = load_policy(reach_policy_dir)
    feats = dict(policy.config.input_features)
    feats["observation.images.wrist"] = Feature("observation.images.wrist", (84, 84, 3), "uint8").to_dict()
    policy.config = dataclasses.replace(policy.config, input_features=feats)
    with pytest.raises(SpecMismatchError, match="observation.images.wrist"):
        evaluate(policy, "reach-v3", n_episodes=1, progress=False)
