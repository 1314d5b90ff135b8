"""numpy <-> standard messages with the real rclpy typesupport (no DDS): round trips and rejections."""

import array

import numpy as np
import pytest

pytest.importorskip("rclpy")
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

from policystack import keys as K  # noqa: E402
from policystack.ros import convert  # noqa: E402
from policystack.ros.topics import ConfigError, check_inputs, msg_class, parse_inputs  # noqa: E402
from policystack.spec import Feature, Spec  # noqa: E402

IMG = Feature(K.image_key("cam"), (6, 8, 3), "uint8")
DEPTH = Feature(K.depth_key("cam"), (6, 8), "float32")
STATE = Feature(K.STATE, (3,), "float32", names=("a", "b", "c"))


def wire(msg, type_name):
    """Through the real CDR typesupport, as a subscriber would receive it."""
    return deserialize_message(serialize_message(msg), msg_class(type_name))


def test_image_rgb_and_depth_round_trip():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    out = convert.decode(wire(convert.encode(img, IMG, stamp=1_500_000_000), "Image"), "Image", IMG)
    assert out.dtype == np.uint8 and np.array_equal(out, img)
    depth = rng.random((6, 8), dtype=np.float32) * 3
    msg = wire(convert.encode(depth, DEPTH), "Image")
    assert msg.encoding == "32FC1"
    assert np.array_equal(convert.decode(msg, "Image", DEPTH), depth)


def test_bgr_and_16uc1_are_converted():
    img = np.zeros((6, 8, 3), np.uint8)
    img[..., 0] = 200
    msg = convert.encode_image(img[..., ::-1].copy(), encoding="bgr8")
    assert convert.decode(msg, "Image", IMG)[0, 0].tolist() == [200, 0, 0]
    mm = np.full((6, 8), 1234, np.uint16)
    m = msg_class("Image")(height=6, width=8, encoding="16UC1", step=16)
    m.data = array.array("B", mm.tobytes())
    assert np.allclose(convert.decode(m, "Image", DEPTH), 1.234)


def test_stamp_round_trip():
    msg = convert.encode(np.zeros((6, 8, 3), np.uint8), IMG, stamp=12_345_678_901)
    assert convert.stamp_ns(wire(msg, "Image")) == 12_345_678_901


@pytest.mark.parametrize("mutate,reason", [
    (lambda m: setattr(m, "encoding", "yuv422"), "unsupported image encoding"),
    (lambda m: setattr(m, "width", 9), "step"),
    (lambda m: setattr(m, "data", array.array("B", bytes(10))), "bytes"),
    (lambda m: setattr(m, "encoding", "mono8"), "cannot feed"),
    (lambda m: (setattr(m, "height", 3), setattr(m, "data", array.array("B", bytes(3 * 24)))), "shape"),
])
def test_malformed_images_are_rejected_with_a_reason(mutate, reason):
    msg = convert.encode(np.zeros((6, 8, 3), np.uint8), IMG)
    mutate(msg)
    with pytest.raises(convert.MessageError, match=reason):
        convert.decode(msg, "Image", IMG)


def test_joint_state_by_name_and_size_check():
    msg = msg_class("JointState")(name=["c", "a", "b"], position=[3.0, 1.0, 2.0])
    assert convert.decode(wire(msg, "JointState"), "JointState", STATE, joint_names=("a", "b", "c")).tolist() == [1, 2, 3]
    with pytest.raises(convert.MessageError, match="lacks joint"):
        convert.decode(msg, "JointState", STATE, joint_names=("a", "z", "c"))
    with pytest.raises(convert.MessageError, match="shape"):
        convert.decode(msg_class("JointState")(position=[1.0, 2.0]), "JointState", STATE)
    enc = convert.encode(np.array([1, 2, 3], np.float32), STATE)
    assert list(enc.name) == ["a", "b", "c"]


def test_audio_multiarray_uses_layout():
    f = Feature(K.audio_key("mic"), (1, None), "float32")
    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    msg = wire(convert.encode(x, f), "Float32MultiArray")
    assert [d.label for d in msg.layout.dim] == ["channels", "samples"]
    assert np.array_equal(convert.decode(msg, "Float32MultiArray", f), x)


def test_action_message():
    msg = wire(convert.action_msg(np.array([0.1, -0.2], np.float32)), "Float64MultiArray")
    assert np.allclose(convert.action_from_msg(msg), [0.1, -0.2])
    assert convert.action_stamp(msg) is None          # timer mode / other publishers: untagged


def test_lockstep_action_carries_the_stamp_it_answers():
    stamp = 1_700_000_000_123_456_789
    msg = wire(convert.action_msg(np.array([0.5]), stamp=stamp), "Float64MultiArray")
    assert convert.action_stamp(msg) == stamp and np.allclose(convert.action_from_msg(msg), [0.5])
    msg.layout.dim[0].label = "action@soon"
    with pytest.raises(convert.MessageError, match="malformed action label"):
        convert.action_stamp(msg)


def test_inputs_map_checked_against_the_policy_spec():
    inputs = parse_inputs({"s.key": K.STATE, "s.topic": "/joint_states", "s.type": "sensor_msgs/msg/JointState"})
    need = Spec.of([STATE, IMG])
    with pytest.raises(Exception, match=r"observation.images.cam.*no topic"):
        check_inputs(inputs, need)
    check_inputs(inputs, Spec.of([STATE, Feature(K.TASK, (), "str")]), instruction="pick")
    with pytest.raises(ConfigError, match="unsupported message type"):
        parse_inputs({"s.key": K.STATE, "s.topic": "/x", "s.type": "Odometry"})
    with pytest.raises(ConfigError, match="unknown field"):
        parse_inputs({"s.key": K.STATE, "s.topic": "/x", "s.maxage": 1})
