"""Registers ``policystack/LIBERO-<suite>-<index>`` for every task of the five LIBERO suites.

Lazy: only names and counts are needed here (no libero/robosuite import); the env builds its simulator
at the first reset. The TimeLimit is inside the env (the suite's step budget), so the registry adds none.
"""

import gymnasium as gym

from sim.libero_suites import SUITE_SIZES, env_id


def register() -> None:
    for suite, n in SUITE_SIZES.items():
        for index in range(n):
            eid = env_id(suite, index)
            if eid not in gym.registry:
                gym.register(eid, entry_point="sim.libero_env:LiberoEnv",
                             kwargs={"suite": suite, "task_index": index}, disable_env_checker=True)
