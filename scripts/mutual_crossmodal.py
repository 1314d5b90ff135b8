#!/usr/bin/env python
"""Experiment entry point; the code and its --help live in `policies.robo_mutual.exp_crossmodal`."""

import sys

from policies.robo_mutual.exp_crossmodal import main

if __name__ == "__main__":
    sys.exit(main())
