"""Contact sheet of LIBERO demos: one row per task (its first demo), N frames spread over the episode.

    .venv/bin/python scripts/libero_demo_sheet.py data/libero_bc/libero_object.hdf5 docs/results/figures/libero_object_demos.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("demos")
    p.add_argument("out")
    p.add_argument("--camera", default="agentview")
    p.add_argument("--frames", type=int, default=8)
    args = p.parse_args(argv)
    import imageio

    from policystack import keys as K
    from policystack.dataset import read_episodes
    key = K.image_key(args.camera)
    rows, seen = [], set()
    for ep in read_episodes(args.demos, keys=[key, K.STATE]):
        t = ep.attrs.get("task_index", ep.task)
        if t in seen:
            continue
        seen.add(t)
        img = ep.obs[key]
        idx = np.linspace(0, len(img) - 1, args.frames).round().astype(int)
        rows.append(np.concatenate([img[i] for i in idx], 1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(args.out, np.concatenate(rows, 0))
    print(f"wrote {args.out}: {len(rows)} tasks x {args.frames} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
