"""Meta-World v3 task metadata: a fixed English instruction per task, and the MT task sets."""

INSTRUCTIONS: dict[str, str] = {
    "assembly-v3": "put the ring on the peg",
    "basketball-v3": "dunk the basketball into the basket",
    "bin-picking-v3": "move the cube from one bin to the other bin",
    "box-close-v3": "put the lid on the box",
    "button-press-topdown-v3": "press the button from the top",
    "button-press-topdown-wall-v3": "press the button from the top behind the wall",
    "button-press-v3": "press the button from the front",
    "button-press-wall-v3": "press the button behind the wall",
    "coffee-button-v3": "press the button on the coffee machine",
    "coffee-pull-v3": "pull the mug away from the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "turn the dial",
    "disassemble-v3": "pick the ring off the peg",
    "door-close-v3": "close the door",
    "door-lock-v3": "lock the door by turning the lock",
    "door-open-v3": "open the door",
    "door-unlock-v3": "unlock the door by turning the lock",
    "hand-insert-v3": "insert the hand into the hole",
    "drawer-close-v3": "close the drawer",
    "drawer-open-v3": "open the drawer",
    "faucet-open-v3": "turn the faucet on",
    "faucet-close-v3": "turn the faucet off",
    "hammer-v3": "hammer the nail into the wall",
    "handle-press-side-v3": "press the handle down from the side",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up from the side",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever up",
    "pick-place-wall-v3": "pick up the puck and place it at the goal behind the wall",
    "pick-out-of-hole-v3": "pick the peg out of the hole",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "plate-slide-v3": "slide the plate into the goal",
    "plate-slide-side-v3": "slide the plate sideways into the goal",
    "plate-slide-back-v3": "slide the plate back out of the goal",
    "plate-slide-back-side-v3": "slide the plate back sideways out of the goal",
    "peg-insert-side-v3": "insert the peg into the hole from the side",
    "peg-unplug-side-v3": "unplug the peg from the side",
    "soccer-v3": "kick the ball into the goal",
    "stick-push-v3": "grasp the stick and push the box with it",
    "stick-pull-v3": "grasp the stick and pull the box with it",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck to the goal behind the wall",
    "push-back-v3": "push the puck back to the goal",
    "reach-v3": "reach the goal position",
    "reach-wall-v3": "reach the goal position behind the wall",
    "shelf-place-v3": "pick up the puck and place it on the shelf",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the table",
    "window-open-v3": "slide the window open",
    "window-close-v3": "slide the window closed",
}

MT10 = ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
        "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3")
MT50 = tuple(INSTRUCTIONS)
TASK_SETS = {"MT10": MT10, "MT50": MT50}

# names of the 39-D Meta-World observation (goal made observable, as in the MT benchmarks)
_CUR = ["hand_x", "hand_y", "hand_z", "gripper_distance",
        "obj1_x", "obj1_y", "obj1_z", "obj1_qw", "obj1_qx", "obj1_qy", "obj1_qz",
        "obj2_x", "obj2_y", "obj2_z", "obj2_qw", "obj2_qx", "obj2_qy", "obj2_qz"]
STATE_NAMES = tuple(_CUR + ["prev_" + n for n in _CUR] + ["goal_x", "goal_y", "goal_z"])


def resolve_tasks(name: str) -> tuple[str, ...]:
    """'reach-v3' -> (reach-v3,); 'MT10'/'MT50' -> their tasks; 'a-v3,b-v3' -> both."""
    from policystack.errors import UnknownNameError
    if name in TASK_SETS:
        return TASK_SETS[name]
    tasks = tuple(t.strip() for t in name.split(",") if t.strip())
    bad = [t for t in tasks if t not in INSTRUCTIONS]
    if bad or not tasks:
        import difflib
        hint = difflib.get_close_matches(bad[0] if bad else name, list(INSTRUCTIONS) + list(TASK_SETS), n=3)
        raise UnknownNameError(f"unknown Meta-World task {bad[0] if bad else name!r}"
                               + (f"; did you mean {', '.join(hint)}?" if hint else "")
                               + " (see `policystack envs`)")
    return tasks
