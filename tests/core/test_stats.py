"""Paired seed statistics used by the experiment summaries (LCBC, MS-Bot)."""

import pytest

from policies.common.stats import paired_record, paired_sign_test


def test_sign_flip_p_value_is_exact():
    assert paired_sign_test([0.1, 0.1, 0.1]) == pytest.approx(1 / 8)      # only the observed pattern
    assert paired_sign_test([0.2, 0.1, 0.05, 0.3, 0.1]) == pytest.approx(1 / 32)
    assert paired_sign_test([0.1, -0.1]) == pytest.approx(3 / 4)         # mean 0: not evidence
    assert paired_sign_test([-0.2, -0.1]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="1-20"):
        paired_sign_test([])


def test_paired_record_pairs_only_shared_seeds_and_counts_outcomes():
    rec = paired_record({0: 0.9, 1: 0.5, 2: 0.3, 7: 1.0}, {0: 0.6, 1: 0.5, 2: 0.4, 3: 0.0})
    assert rec["seeds"] == [0, 1, 2]
    assert rec["diffs"] == pytest.approx([0.3, 0.0, -0.1])
    assert (rec["wins"], rec["ties"], rec["losses"]) == (1, 1, 1)
    assert rec["mean"] == pytest.approx(0.2 / 3)
    assert rec["p"] == pytest.approx(paired_sign_test([0.3, 0.0, -0.1]))
    assert paired_record({0: 1.0}, {1: 1.0}) is None
