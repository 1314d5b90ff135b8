"""Markdown tables from a DI² experiment's summary.json (success per condition, offline stage metrics).

    .venv/bin/python scripts/di2_report.py outputs/di2_pilot/summary.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("summary", type=Path)
    args = ap.parse_args()
    s = json.loads(args.summary.read_text())
    conds = s["conditions"]
    tasks = list(next(iter(conds.values()))["per_task"])
    print("| condition | success, mean ± std over seeds | per seed | " + " | ".join(tasks)
          + " | held-out action loss, mean ± std | per seed |")
    print("|---|---|---|" + "---|" * len(tasks) + "---|---|")
    for r in conds.values():
        per_task = " | ".join(f"{r['per_task'][t]:.2f}" for t in tasks)
        seeds = ", ".join(f"{x:.2f}" for x in r["per_seed"])
        loss = (f"{r['heldout_loss_mean']:.4f} ± {r['heldout_loss_std']:.4f}" if "heldout_loss_mean" in r else "n/a")
        loss_seeds = ", ".join(f"{x:.4f}" for x in r.get("heldout_loss_per_seed", []))
        print(f"| {r['label']} | {r['mean']:.3f} ± {r['std']:.3f} | {seeds} | {per_task} | {loss} | {loss_seeds} |")
    print()
    print("| seed | DCM held-out MSE (first → last) | predict-the-mean MSE | before VQ MSE | after VQ MSE | "
          "code agreement | codebook perplexity (held-out) | stage seconds (rgb/rgbd/dcm/dac/di2) |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, m in s["offline"].items():
        dcm, dac = m.get("dcm", {}), m.get("dac", {})
        secs = "/".join(str(round(m[k]["seconds"])) for k in ("rgb", "rgbd", "dcm", "dac", "di2") if k in m)
        print(f"| {seed} | {dcm.get('val_dcm_mse_first', float('nan')):.2e} → {dcm.get('val_dcm_mse', float('nan')):.2e}"
              f" | {dcm.get('mean_token_baseline_mse', float('nan')):.2e}"
              f" | {dac.get('val_before_error', float('nan')):.2e} | {dac.get('val_after_error', float('nan')):.2e}"
              f" | {dac.get('val_code_agreement', float('nan')):.2f}"
              f" | {dac.get('val_perplexity_first', float('nan')):.1f} → {dac.get('val_perplexity', float('nan')):.1f}"
              f" | {secs} |")
    if "wall_s" in s:
        print(f"\nwall-clock of the summarising call: {s['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
