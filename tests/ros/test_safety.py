"""The safety stage: nothing non-finite, out of range or too abrupt leaves it; holds say why."""

import numpy as np
import pytest

from policystack.errors import ConfigError
from policystack.ros.safety import SafetyConfig, SafetyStage


def stage(**kw):
    return SafetyStage(4, SafetyConfig(low=-1.0, high=1.0, **kw))


def test_clamps_to_action_space_and_says_which_dims():
    res = stage().filter([2.0, -3.0, 0.5, 0.0])
    assert res.action.tolist() == [1.0, -1.0, 0.5, 0.0]
    assert not res.held and "dims [0, 1]" in res.reasons[0]


@pytest.mark.parametrize("bad", [[np.nan, 0, 0, 0], [0, np.inf, 0, 0], [0, 0, -np.inf, np.nan]])
def test_non_finite_output_is_replaced_by_the_safe_action(bad):
    s = stage(keep_dims=(3,))
    s.filter([0.2, 0.2, 0.2, 0.9])
    res = s.filter(bad)
    assert res.held and np.all(np.isfinite(res.action))
    assert res.action.tolist() == [0.0, 0.0, 0.0, 0.9]   # zero motion, gripper kept
    assert "non-finite" in res.reasons[0]


def test_wrong_size_output_holds():
    res = stage().filter([0.1, 0.2])
    assert res.held and "size 2" in res.reasons[0]


def test_change_limit_per_step():
    s = stage(max_delta=0.25)
    s.filter([0.0, 0.0, 0.0, 0.0])
    out = [s.filter([1.0, -1.0, 0.1, 0.0]).action for _ in range(5)]
    steps = np.abs(np.diff(np.vstack([[0, 0, 0, 0]] + out), axis=0))
    assert steps.max() <= 0.25 + 1e-12
    assert out[-1].tolist() == [1.0, -1.0, 0.1, 0.0]


def test_hold_last_repeats_previous_target():
    s = stage(hold="last")
    s.filter([0.3, 0.4, 0.5, 0.6])
    assert s.hold("stale input").action.tolist() == [0.3, 0.4, 0.5, 0.6]


def test_zero_hold_is_clipped_into_an_offset_action_space():
    s = SafetyStage(2, SafetyConfig(low=[0.5, -1], high=[1.0, 1]))
    res = s.safe_stop("shutdown")
    assert res.action.tolist() == [0.5, 0.0] and "safe stop" in res.reasons[0]


def test_bad_configs_are_named():
    with pytest.raises(ConfigError, match="hold"):
        SafetyConfig(hold="brake")
    with pytest.raises(ConfigError, match="max_delta"):
        SafetyStage(4, SafetyConfig(max_delta=[0.1, 0.2]))
    with pytest.raises(ConfigError, match="keep_dims"):
        SafetyStage(4, SafetyConfig(keep_dims=(7,)))
