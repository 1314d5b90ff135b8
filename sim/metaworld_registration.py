"""Registers ``policystack/MetaWorld-<task>`` for every Meta-World v3 task."""

import gymnasium as gym

from sim.metaworld_tasks import INSTRUCTIONS


def register() -> None:
    for task in INSTRUCTIONS:
        env_id = f"policystack/MetaWorld-{task}"
        if env_id not in gym.registry:
            # TimeLimit is inside the env (max_episode_steps kwarg), so the registry adds none
            gym.register(env_id, entry_point="sim.metaworld_env:MetaWorldEnv", kwargs={"task": task},
                         disable_env_checker=True)
