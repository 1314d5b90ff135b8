"""Helpers shared by CLI verbs: typed config overrides and their --help text."""

from __future__ import annotations

import argparse

from policystack import config as cfgmod


def add_overrides(p: argparse.ArgumentParser, cls: type) -> None:
    p.add_argument("overrides", nargs="*", metavar="name=value",
                   help="config overrides (dotted names), e.g. steps=2000 policy.type=bc policy.chunk_size=4")
    p.epilog = (p.epilog or "") + "\nconfig fields (name=default):\n" + "\n".join(cfgmod.describe(cls))


def build_config(cls: type, args: argparse.Namespace, base=None):
    return cfgmod.apply_overrides(base if base is not None else cls(), args.overrides)
