"""The LCBC comparison's paired statistics (pretrained vs random-init encoder, paired by seed)."""

from policies.decisionnce.exp_lcbc import paired_summary


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
