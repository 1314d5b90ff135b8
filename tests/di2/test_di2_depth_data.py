"""DI² depth data path: metric conversion against a known plane, scaling, and aligned augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policystack import keys as K
from policies.di2.depth import (buffer_to_metres, mujoco_near_far, prepare_depth, scale_depth,
                                shared_random_shift)

from di2_helpers import CAMERAS, tiny_policy_config

PLANE_XML = """<mujoco><visual><map znear="0.01" zfar="50"/></visual><worldbody>
<geom type="box" size="5 5 0.01" pos="0 0 -0.01" rgba="0.5 0.5 0.5 1"/>
<camera name="down" pos="0.3 -0.2 {h}" xyaxes="1 0 0 0 1 0" fovy="50"/>
</worldbody></mujoco>"""


def _raw_depth_buffer(model, data, reversed_z: bool, size: int = 24) -> np.ndarray:
    """The OpenGL depth buffer exactly as MuJoCo leaves it (no metric conversion).

    ``reversed_z``: MuJoCo's mjDEPTH_ZEROFAR map (what ``mujoco.Renderer`` uses); otherwise the
    default mjDEPTH_ZERONEAR map, i.e. the standard buffer robosuite/LIBERO read."""
    import mujoco
    from sim.render import ensure_headless_gl
    ensure_headless_gl()
    ctx = mujoco.GLContext(size, size)
    ctx.make_current()
    try:
        con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        if reversed_z:
            con.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
        scn = mujoco.MjvScene(model, maxgeom=100)
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        cam.fixedcamid = 0
        mujoco.mjv_updateScene(model, data, mujoco.MjvOption(), None, cam, mujoco.mjtCatBit.mjCAT_ALL, scn)
        rect = mujoco.MjrRect(0, 0, size, size)
        mujoco.mjr_render(rect, scn, con)
        buf = np.empty((size, size), np.float32)
        mujoco.mjr_readPixels(None, buf, rect, con)
        con.free()
        return buf
    finally:
        ctx.free()


@pytest.mark.sim
@pytest.mark.parametrize("height", [0.45, 1.37, 3.2])
def test_metric_depth_of_a_plane_at_known_distance(height):
    mujoco = pytest.importorskip("mujoco")
    model = mujoco.MjModel.from_xml_string(PLANE_XML.format(h=height))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    near, far = mujoco_near_far(model)
    # a plane perpendicular to the optical axis has the same z-depth at every pixel
    standard = _raw_depth_buffer(model, data, reversed_z=False)
    assert np.all((standard > 0) & (standard < 1))
    np.testing.assert_allclose(buffer_to_metres(standard, near, far), height, rtol=2e-4)
    reverse = _raw_depth_buffer(model, data, reversed_z=True)
    np.testing.assert_allclose(buffer_to_metres(reverse, near, far, reversed_z=True), height, rtol=2e-4)
    # reading one map with the other's formula is badly wrong: the flag matters
    assert abs(float(buffer_to_metres(reverse, near, far)[0, 0]) - height) > 0.1 * height
    # and the env renderer that produces observation.depth.* agrees
    from sim.render import FastRenderer
    r = FastRenderer(model, 24, 24)
    try:
        np.testing.assert_allclose(r.depth(data, "down"), height, rtol=2e-4)
    finally:
        r.close()


def test_buffer_conversion_end_points_and_bad_clip_planes():
    near, far = 0.0106, 530.49
    np.testing.assert_allclose(buffer_to_metres(np.array([0.0, 1.0]), near, far), [near, far], rtol=1e-9)
    np.testing.assert_allclose(buffer_to_metres(np.array([1.0, 0.0]), near, far, reversed_z=True),
                               [near, far], rtol=1e-9)
    with pytest.raises(ValueError, match="near"):
        buffer_to_metres(np.zeros(2), 1.0, 0.5)


def test_depth_is_clipped_to_the_paper_range_and_scaled_to_unit():
    d = torch.tensor([0.0, 0.005, 0.01, 1.0, 2.5, 5.0, 112.9])
    s = scale_depth(d, 0.01, 5.0)
    np.testing.assert_allclose(s.numpy(), [0.002, 0.002, 0.002, 0.2, 0.5, 1.0, 1.0], rtol=1e-6)
    three = prepare_depth(d.view(1, 1, 7).expand(2, 1, 7), 0.01, 5.0)
    assert three.shape == (2, 3, 1, 7)
    # the three channels carry the same (scaled) depth, up to the per-channel CLIP normalisation
    from policies.di2.depth import CLIP_MEAN, CLIP_STD
    back = three * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    for c in range(3):
        np.testing.assert_allclose(back[:, c].numpy(), s.expand(2, 1, 7).numpy(), atol=1e-6)


def _square_scene(n: int, size: int, rng) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB frames with a white square on black, and depth maps with the square nearer (1 m vs 2 m)."""
    rgb = torch.zeros(n, size, size, 3, dtype=torch.uint8)
    depth = torch.full((n, size, size), 2.0)
    for i in range(n):
        y, x = rng.integers(6, size - 12, size=2)
        rgb[i, y:y + 6, x:x + 6] = 255
        depth[i, y:y + 6, x:x + 6] = 1.0
    return rgb, depth


def test_shared_shift_keeps_rgb_and_depth_pixel_aligned(rng):
    rgb, depth = _square_scene(64, 32, rng)
    x = rgb.movedim(-1, 1).float() / 255
    d = (2.0 - depth).unsqueeze(1)  # square = 1, background = 0
    g = torch.Generator().manual_seed(0)
    xs, ds = shared_random_shift(x, d, pad=4, generator=g)
    # the square's mask is the same in the shifted RGB and the shifted depth, frame by frame
    assert torch.equal(xs[:, 0] > 0.5, ds[:, 0] > 0.5)
    # and the shift is real: square positions moved in many frames
    moved = [(not torch.equal(xs[i, 0] > 0.5, x[i, 0] > 0.5)) for i in range(64)]
    assert sum(moved) > 40


def test_policy_views_apply_one_shift_to_each_rgb_and_depth_pair(rng):
    """The policy's own training path (augment=True) shifts RGB and its depth identically."""
    from policies.base import make_policy
    from policystack.spec import Feature, Spec
    feats = [Feature(K.image_key(c), (32, 32, 3), "uint8") for c in CAMERAS]
    feats += [Feature(K.depth_key(c), (32, 32), "float32") for c in CAMERAS]
    feats += [Feature(K.TASK, (), "str"), Feature(K.ACTION, (4,), "float32")]
    policy = make_policy(tiny_policy_config(depth_source="gt"), Spec.of(feats))
    batch = {}
    for c in CAMERAS:
        rgb, depth = _square_scene(24, 32, rng)
        batch[K.image_key(c)], batch[K.depth_key(c)] = rgb.view(8, 3, 32, 32, 3), depth.view(8, 3, 32, 32)
    torch.manual_seed(0)
    views = policy._views(batch, with_depth=True, augment=True)
    for (rgb, dep), pad in zip(views, policy.shift_pads):
        assert pad > 0
        rgb_mask = rgb.mean(1) > rgb.mean()          # the white square, after CLIP normalisation
        dep_mask = dep.mean(1) < dep.mean()          # the near square
        assert torch.equal(rgb_mask, dep_mask)


def test_per_camera_far_clip_scales_each_camera_by_its_own_range():
    """A near wrist camera keeps its contrast with its own far clip instead of going black at /5 m."""
    from policies.base import make_policy
    from policystack.config import ConfigError
    from policystack.spec import Feature, Spec
    feats = [Feature(K.image_key(c), (16, 16, 3), "uint8") for c in CAMERAS]
    feats += [Feature(K.depth_key(c), (16, 16), "float32") for c in CAMERAS]
    feats += [Feature(K.TASK, (), "str"), Feature(K.ACTION, (4,), "float32")]
    far = tuple(5.0 if i == 0 else 0.4 for i in range(len(CAMERAS)))
    policy = make_policy(tiny_policy_config(depth_source="gt", depth_max_per_camera=far), Spec.of(feats))
    depth = torch.linspace(0.04, 0.37, 16 * 16).view(1, 1, 16, 16)     # LIBERO's wrist range
    batch = {K.image_key(c): torch.zeros(1, 1, 16, 16, 3, dtype=torch.uint8) for c in CAMERAS}
    batch |= {K.depth_key(c): depth for c in CAMERAS}
    views = policy._views(batch, with_depth=True, augment=False)
    for (_, dep), f in zip(views, far):
        np.testing.assert_allclose(dep[:, 0].numpy(), prepare_depth(depth.view(1, 16, 16), 0.01, f)[:, 0].numpy())
    spread = [float(dep[:, 0].max() - dep[:, 0].min()) for _, dep in views]
    assert spread[-1] > 10 * spread[0]                # the far-clip-0.4 camera spans 12x the range
    with pytest.raises(ConfigError, match="depth_max_per_camera"):
        tiny_policy_config(depth_max_per_camera=(5.0,) * (len(CAMERAS) + 1))
