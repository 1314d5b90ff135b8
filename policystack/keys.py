"""Observation and action keys (lerobot-style flat names, see DESIGN.md)."""

OBS_PREFIX = "observation."
IMAGES = "observation.images"
DEPTH = "observation.depth"
STATE = "observation.state"
AUDIO = "observation.audio"
TACTILE = "observation.tactile"
TASK = "task"
GOAL_IMAGES = "goal.images"
ACTION = "action"


def image_key(cam: str) -> str:
    return f"{IMAGES}.{cam}"


def depth_key(cam: str) -> str:
    return f"{DEPTH}.{cam}"


def audio_key(mic: str) -> str:
    return f"{AUDIO}.{mic}"


def tactile_key(sensor: str) -> str:
    return f"{TACTILE}.{sensor}"


def goal_image_key(cam: str) -> str:
    return f"{GOAL_IMAGES}.{cam}"


def modality_of(key: str) -> str:
    """The modality of a key: 'images', 'depth', 'state', 'audio', 'tactile', 'task', 'goal', 'action'.

    Used by the modality registry (policies/common/modality.py) so that new sensors need no
    change to policies.
    """
    if key == STATE:
        return "state"
    if key == TASK:
        return "task"
    if key == ACTION:
        return "action"
    for prefix, name in ((IMAGES, "images"), (DEPTH, "depth"), (AUDIO, "audio"),
                         (TACTILE, "tactile"), (GOAL_IMAGES, "goal")):
        if key.startswith(prefix + "."):
            return name
    raise KeyError(f"unknown observation key {key!r}: expected one of observation.images.<cam>, "
                   f"observation.depth.<cam>, observation.state, observation.audio.<mic>, "
                   f"observation.tactile.<sensor>, goal.images.<cam>, task, action")


def short_name(key: str) -> str:
    """'observation.images.agentview' -> 'agentview'; 'observation.state' -> 'state'."""
    return key.rsplit(".", 1)[-1]
