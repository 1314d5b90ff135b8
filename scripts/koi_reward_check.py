"""Numbers behind the OT-reward claims (random 50-d features, KOI nu vs ROT's uniform nu).

    python scripts/koi_reward_check.py [--trials 20]

Prints, averaged over trials: total reward of a noisy expert copy, a trajectory that stalls before the
goal, random features and a time-permuted expert; the normalised stall penalty
(R_expert - R_stall) / |R_random|; and the cost of skipping the frames around the goal key versus an
equally long stretch without keys.
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--T", type=int, default=60)
    args = ap.parse_args()
    import numpy as np
    import torch

    from policies.koi.keystates import expert_weighting
    from policies.koi.rewards import ot_rewards

    T, keys, motion = args.T, [int(args.T * 0.42), int(args.T * 0.75)], [int(args.T * 0.17), int(args.T * 0.58)]
    out = {}
    for name, nu in (("koi", expert_weighting(T, keys, motion)), ("rot", None)):
        acc: dict[str, list[float]] = {}
        for s in range(args.trials):
            g = torch.Generator().manual_seed(s)
            E = torch.randn(T, 50, generator=g)
            stall_at = T // 2
            trajs = {"expert": E, "noisy": E + 0.3 * torch.randn(T, 50, generator=g),
                     "stall": torch.cat([E[:stall_at], E[stall_at - 1:stall_at].repeat(T - stall_at, 1)]),
                     "random": torch.randn(T, 50, generator=g),
                     "permuted": E[torch.randperm(T, generator=g)]}
            lo = keys[-1] - 3
            miss_key = E.clone()
            miss_key[lo:lo + 7] = E[lo - 1]
            miss_other = E.clone()
            miss_other[T - 8:T - 1] = E[T - 9]
            trajs.update(miss_key=miss_key, miss_other=miss_other)
            R = {k: float(ot_rewards(v, E, nu).sum()) for k, v in trajs.items()}
            R["stall_penalty"] = (R["expert"] - R["stall"]) / abs(R["random"])
            R["miss_key_penalty"] = (R["expert"] - R["miss_key"]) / abs(R["random"])
            R["miss_other_penalty"] = (R["expert"] - R["miss_other"]) / abs(R["random"])
            for k, v in R.items():
                acc.setdefault(k, []).append(v)
        out[name] = {k: round(float(np.mean(v)), 4) for k, v in acc.items()}
    out["setup"] = {"T": T, "semantic_keys": keys, "motion_keys": motion, "trials": args.trials}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
