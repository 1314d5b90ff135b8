#!/usr/bin/env python
"""MS-Bot vs Concat on the simulated peg-in-keyway task, clean and with distractors (CPU-sized).

Same as ``policystack msbot experiment``; every finished piece (demos, runs, evaluations) is reused,
so re-running the command resumes an interrupted experiment. Run it niced in the background:

    MUJOCO_GL=egl nohup nice -n 10 .venv/bin/python scripts/msbot_experiment.py --out runs/msbot_exp &
"""

import sys

from policystack.cli import main

if __name__ == "__main__":
    sys.exit(main(["msbot", "experiment"] + sys.argv[1:]))
