#!/usr/bin/env python
"""Experiment entry point; the code and its --help live in `policies.decisionnce.exp_pretrain_eval`."""

import sys

from policies.decisionnce.exp_pretrain_eval import main

if __name__ == "__main__":
    sys.exit(main())
