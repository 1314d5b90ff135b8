"""The LCBC comparison's paired statistics (pretrained vs random-init encoder, paired by seed)."""

import pytest

from policies.decisionnce.exp_lcbc import paired_sign_test, paired_summary


def test_sign_flip_p_value_is_exact():
    assert paired_sign_test([0.1, 0.1, 0.1]) == pytest.approx(1 / 8)      # only the observed pattern
    assert paired_sign_test([0.2, 0.1, 0.05, 0.3, 0.1]) == pytest.approx(1 / 32)
    assert paired_sign_test([0.1, -0.1]) == pytest.approx(3 / 4)         # mean 0: not evidence
    assert paired_sign_test([-0.2, -0.1]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="1-20"):
        paired_sign_test([])


def test_paired_summary_counts_wins_ties_losses_and_pairs_only_matching_seeds():
    rows = [{"encoder": "decisionnce_T", "seed": 0, "success": 0.6, "heldout_mse": 0.2},
            {"encoder": "random_init", "seed": 0, "success": 0.5, "heldout_mse": 0.3},
            {"encoder": "decisionnce_T", "seed": 1, "success": 0.5, "heldout_mse": 0.2},
            {"encoder": "random_init", "seed": 1, "success": 0.5, "heldout_mse": 0.25},
            {"encoder": "decisionnce_T", "seed": 2, "success": 0.4, "heldout_mse": 0.2},
            {"encoder": "random_init", "seed": 2, "success": 0.5, "heldout_mse": 0.1},
            {"encoder": "decisionnce_T", "seed": 3, "success": 0.9, "heldout_mse": 0.1}]   # unpaired
    text = paired_summary(rows)
    assert "(3 seeds)" in text and "1 wins, 1 ties, 1 losses" in text
    assert "+0.000" in text and "in 2 of 3 seeds" in text
    assert paired_summary(rows[:1]) == ""
