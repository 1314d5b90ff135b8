"""Run every ``benchmarks/bench_*.py`` with its defaults, one after another (what ``make bench`` runs).

    MUJOCO_GL=egl .venv/bin/python benchmarks/run_all.py [--only ros sensors]

Each benchmark prints its own table against a baseline measured in the same run; a failing one is
reported and the rest still run. Exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="names without bench_ (e.g. ros sensors)")
    a = ap.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if a.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in a.only]
        if not scripts:
            have = [s.stem.removeprefix("bench_") for s in sorted(HERE.glob("bench_*.py"))]
            ap.error(f"no benchmark named {a.only}; have {have}")
    failed = []
    for s in scripts:
        print(f"\n=== {s.name} ===", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, str(s)], cwd=HERE.parent)
        print(f"=== {s.name}: exit {rc} after {time.monotonic() - t0:.0f} s ===", flush=True)
        if rc:
            failed.append(s.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
