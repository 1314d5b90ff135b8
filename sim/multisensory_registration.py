"""Registers ``policystack/MultiSensory-<task>`` (the multi-sensory MuJoCo task family); creation is lazy."""

import gymnasium as gym

TASK_IDS = ("peg-keyway",)


def register() -> None:
    for task in TASK_IDS:
        env_id = f"policystack/MultiSensory-{task}"
        if env_id not in gym.registry:
            # the episode limit lives in the env (max_episode_steps kwarg), so the registry adds none
            gym.register(env_id, entry_point="sim.multisensory_env:MultiSensoryEnv", kwargs={"task": task},
                         disable_env_checker=True)
