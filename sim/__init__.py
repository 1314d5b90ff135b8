"""Gymnasium environments with policystack observation keys. Importing this registers them.

Ids: ``policystack/MetaWorld-<task>`` (every v3 task). Other families (LIBERO, the multisensory
task) register in their own modules, imported here; creation stays lazy (entry points are strings).
"""

from sim.registry import env_features, list_envs, make_env, register_all  # noqa: F401

register_all()
