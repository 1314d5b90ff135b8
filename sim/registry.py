"""Gymnasium registration of every env family, and a uniform ``make_env`` by id or short name."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import gymnasium as gym

from policystack.errors import UnknownNameError
from policystack.spec import Spec

log = logging.getLogger(__name__)
NAMESPACE = "policystack"
# env family modules; each defines register() that registers its ids with gymnasium
FAMILIES = ["sim.metaworld_registration", "sim.libero_registration", "sim.multisensory_registration"]
_registered = False


def register_all() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    for mod in FAMILIES:
        try:
            importlib.import_module(mod).register()
        except ModuleNotFoundError as e:
            if e.name != mod:
                log.debug("env family %s unavailable: %s", mod, e)


def list_envs() -> list[str]:
    register_all()
    return sorted(k for k in gym.registry if k.startswith(NAMESPACE + "/"))


def full_id(name: str) -> str:
    """'reach-v3' or 'MetaWorld-reach-v3' or 'policystack/MetaWorld-reach-v3' -> registered id."""
    register_all()
    cands = [name, f"{NAMESPACE}/{name}", f"{NAMESPACE}/MetaWorld-{name}"]
    for c in cands:
        if c in gym.registry:
            return c
    import re
    if re.fullmatch(r"[a-z\-]+-v\d", name):  # looks like a Meta-World task: suggest from its names
        from sim.metaworld_tasks import resolve_tasks
        resolve_tasks(name)
    import difflib
    hint = difflib.get_close_matches(f"{NAMESPACE}/MetaWorld-{name}", list_envs(), n=3) or \
        difflib.get_close_matches(f"{NAMESPACE}/{name}", list_envs(), n=3)
    raise UnknownNameError(f"unknown env or task {name!r}" + (f"; did you mean {', '.join(hint)}?" if hint else "")
                           + " (run `policystack envs` for the list)")


def make_env(name: str, **kwargs: Any) -> gym.Env:
    """Make a registered env by id or short name; kwargs go to the env constructor."""
    return gym.make(full_id(name), **kwargs)


def env_features(env: gym.Env) -> Spec:
    return env.unwrapped.spec_features
