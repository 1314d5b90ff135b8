"""MJCF of the multi-sensory peg-in-keyway task (a MuJoCo cousin of MS-Bot's keyed peg insertion).

Scene: a board with a round hole marker (the only visible hint of the hole) and, hidden under it, a
10-mm plate with a square opening plus a keyway slot at a random yaw (collision geoms in group 3,
which the renderer does not draw). The peg (radius 10 mm, with a key at its bottom) is held
compliantly by the hand: four position servos (x, y, z, yaw) whose set-points are the hand pose.

Geometry (metres) is exposed as constants so the env, the expert and the tests agree on it.
"""

from __future__ import annotations

import numpy as np

BOARD_TOP = 0.05            # top surface of the board
PLATE_HALF = 0.005          # keyed plate half thickness (plate spans [0.04, 0.05])
PEG_RADIUS = 0.010
PEG_HALF_LEN = 0.04
KEY_HALF = (0.005, 0.003, 0.006)      # key box half sizes (radial, tangential, vertical)
KEY_CENTER_X = PEG_RADIUS + 0.004     # key spans radius 9..19 mm
OPENING_HALF = 0.0135       # square opening half width (3.5 mm clearance)
SLOT_HALF = 0.006           # keyway half width (3 mm clearance each side of the key)
SLOT_END = 0.025            # keyway reaches 25 mm from the hole centre
GRASP_OFFSET = 0.025        # finger-pad centre above the peg centre
N_CLUTTER = 6               # visual distractor objects (hidden below the table when unused)

BOARD_RGBA = (0.78, 0.66, 0.48, 1.0)
TABLE_RGBA = (0.35, 0.36, 0.38, 1.0)


def _box(name: str, pos, size, rgba="0.5 0.5 0.5 1", group: int = 3, contact: bool = True) -> str:
    ct = 'contype="1" conaffinity="1"' if contact else 'contype="0" conaffinity="0"'
    p = " ".join(f"{v:.5f}" for v in pos)
    s = " ".join(f"{v:.5f}" for v in size)
    return f'<geom name="{name}" type="box" pos="{p}" size="{s}" rgba="{rgba}" group="{group}" {ct}/>'


def _plate_geoms() -> list[str]:
    """Keyed plate in its own (yaw-rotated) frame: square opening + slot along +x."""
    L, w, s, xs, h = 0.08, OPENING_HALF, SLOT_HALF, SLOT_END, PLATE_HALF
    return [
        _box("plate_left", (-(L + w) / 2, 0, 0), ((L - w) / 2, L, h)),
        _box("plate_front", (0, (L + w) / 2, 0), (w, (L - w) / 2, h)),
        _box("plate_back", (0, -(L + w) / 2, 0), (w, (L - w) / 2, h)),
        _box("plate_right_up", ((L + w) / 2, (L + s) / 2, 0), ((L - w) / 2, (L - s) / 2, h)),
        _box("plate_right_down", ((L + w) / 2, -(L + s) / 2, 0), ((L - w) / 2, (L - s) / 2, h)),
        _box("plate_slot_end", ((L + xs) / 2, 0, 0), ((L - xs) / 2, s, h)),
    ]


def _frame_geoms() -> list[str]:
    """Un-rotated outer collision frame: covers the board outside the plate's inscribed circle."""
    O, I, h = 0.12, 0.055, PLATE_HALF
    z = BOARD_TOP - h
    return [
        _box("frame_xp", ((O + I) / 2, 0, z), ((O - I) / 2, O, h)),
        _box("frame_xn", (-(O + I) / 2, 0, z), ((O - I) / 2, O, h)),
        _box("frame_yp", (0, (O + I) / 2, z), (I, (O - I) / 2, h)),
        _box("frame_yn", (0, -(O + I) / 2, z), (I, (O - I) / 2, h)),
    ]


def build_mjcf(timestep: float = 0.002) -> str:
    board_rgba = " ".join(map(str, BOARD_RGBA))
    table_rgba = " ".join(map(str, TABLE_RGBA))
    kx, ky, kz = KEY_HALF
    clutter = "\n".join(
        f'<geom name="clutter{i}" type="{"box" if i % 2 else "cylinder"}" pos="0 0 -1" '
        f'size="0.012 0.012 0.012" rgba="0.2 0.6 0.9 1" contype="0" conaffinity="0" group="0"/>'
        for i in range(N_CLUTTER))
    plate = "\n        ".join(_plate_geoms())
    frame = "\n      ".join(_frame_geoms())
    return f"""
<mujoco model="policystack_peg_keyway">
  <compiler angle="radian"/>
  <option timestep="{timestep}" gravity="0 0 -9.81" integrator="implicitfast"/>
  <visual>
    <global offwidth="256" offheight="256"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5" specular="0.05 0.05 0.05"/>
  </visual>
  <default>
    <geom friction="0.6 0.005 0.0001" solref="0.004 1" solimp="0.95 0.99 0.001"/>
  </default>
  <worldbody>
    <light name="top" pos="0 -0.2 0.6" dir="0 0.3 -1" directional="true" castshadow="false"/>
    <geom name="table" type="plane" size="0.4 0.4 0.01" rgba="{table_rgba}" contype="1" conaffinity="1"/>
    <camera name="front" pos="0 -0.10 0.22" xyaxes="1 0 0 0 0.8619 0.5070" fovy="42"/>
    <camera name="side" pos="0.25 0 0.14" xyaxes="0 1 0 -0.4 0 0.917" fovy="45"/>
    {clutter}
    <body name="board" pos="0 0 0">
      <geom name="board_visual" type="box" pos="0 0 {BOARD_TOP / 2:.4f}" size="0.09 0.09 {BOARD_TOP / 2:.4f}"
            rgba="{board_rgba}" contype="0" conaffinity="0" group="0"/>
      <geom name="hole_marker" type="cylinder" pos="0 0 {BOARD_TOP + 0.0004:.4f}" size="0.027 0.0004"
            rgba="0.05 0.05 0.05 1" contype="0" conaffinity="0" group="0"/>
      {frame}
      <body name="plate" pos="0 0 {BOARD_TOP - PLATE_HALF:.4f}">
        {plate}
      </body>
    </body>
    <body name="peg" pos="0 0 0" gravcomp="1">
      <joint name="px" type="slide" axis="1 0 0" damping="0.5"/>
      <joint name="py" type="slide" axis="0 1 0" damping="0.5"/>
      <joint name="pz" type="slide" axis="0 0 1" damping="0.5"/>
      <joint name="pyaw" type="hinge" axis="0 0 1" armature="0.0002" damping="0.002"/>
      <geom name="peg" type="cylinder" size="{PEG_RADIUS} {PEG_HALF_LEN}" rgba="0.92 0.38 0.12 1"
            density="1500" contype="1" conaffinity="1"/>
      <geom name="key" type="box" pos="{KEY_CENTER_X} 0 {-PEG_HALF_LEN + kz:.4f}" size="{kx} {ky} {kz}"
            rgba="0.92 0.38 0.12 1" density="1500" contype="1" conaffinity="1"/>
      <geom name="finger_l" type="box" pos="0 0.0125 {GRASP_OFFSET}" size="0.006 0.0025 0.010"
            rgba="0.25 0.25 0.28 1" contype="0" conaffinity="0" mass="0"/>
      <geom name="finger_r" type="box" pos="0 -0.0125 {GRASP_OFFSET}" size="0.006 0.0025 0.010"
            rgba="0.25 0.25 0.28 1" contype="0" conaffinity="0" mass="0"/>
      <camera name="wrist" pos="0 -0.022 0.035" xyaxes="1 0 0 0 1 0" fovy="75"/>
      <geom name="palm" type="box" pos="0 0 {GRASP_OFFSET + 0.016}" size="0.006 0.015 0.004"
            rgba="0.3 0.3 0.33 1" contype="0" conaffinity="0" mass="0"/>
    </body>
  </worldbody>
  <actuator>
    <position name="ax" joint="px" kp="400" dampratio="1"/>
    <position name="ay" joint="py" kp="400" dampratio="1"/>
    <position name="az" joint="pz" kp="400" dampratio="1"/>
    <position name="ayaw" joint="pyaw" kp="2" dampratio="1"/>
  </actuator>
</mujoco>
"""


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
