"""bag -> HDF5 episodes on bags with known timing (written here with rosbags + the real rclpy
serialization): the resampling pairs each observation with the command executed after it."""

import json

import numpy as np
import pytest

pytest.importorskip("rclpy")
from rclpy.serialization import serialize_message  # noqa: E402

from policystack import keys as K  # noqa: E402
from policystack.dataset import read_episodes  # noqa: E402
from policystack.errors import DatasetError  # noqa: E402
from policystack.ros import convert  # noqa: E402
from policystack.ros.bag import bag_to_episodes, convert_bag  # noqa: E402
from policystack.ros.topics import parse_inputs  # noqa: E402

MS = 1_000_000
INPUTS = parse_inputs({"s.key": K.STATE, "s.topic": "/state", "s.type": "JointState",
                       "c.key": K.image_key("cam"), "c.topic": "/cam", "c.type": "Image",
                       "t.key": K.TASK, "t.topic": "/task", "t.type": "String"})


def write_bag(path, episodes=(12, 7), period=50 * MS, jitter=2 * MS, seed=0):
    """Sim-like timing: obs k at t_k (+-jitter), the policy's answer ~10-40 ms later, applied at t_{k+1}."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    rng = np.random.default_rng(seed)
    store = get_typestore(Stores.ROS2_JAZZY)
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    w.open()
    c = {t: w.add_connection(t, ty, typestore=store) for t, ty in [
        ("/state", "sensor_msgs/msg/JointState"), ("/cam", "sensor_msgs/msg/Image"),
        ("/task", "std_msgs/msg/String"), ("/policy/action", "std_msgs/msg/Float64MultiArray"),
        ("/sim/events", "std_msgs/msg/String")]}
    msgs = [(0, "/task", convert.encode_string("reach"))]
    t = 10 * MS
    for e, length in enumerate(episodes):
        msgs.append((t, "/sim/events", convert.json_msg({"event": "episode_start", "episode": e})))
        t += 5 * MS
        for k in range(length):
            tk = t + k * period
            v = 100 * e + k
            msgs.append((tk + int(rng.integers(-jitter, jitter + 1)), "/state",
                         convert.encode_joint_state(np.array([v, 0.5]), ["a", "b"], tk)))
            msgs.append((tk + int(rng.integers(0, jitter + 1)), "/cam",
                         convert.encode_image(np.full((4, 5, 3), v % 256, np.uint8), tk)))
            msgs.append((tk + int(rng.integers(10, 40)) * MS, "/policy/action", convert.action_msg(np.array([v, -v]))))
        t += length * period
        msgs.append((t, "/sim/events", convert.json_msg({"event": "episode_end", "episode": e, "success": e == 0,
                                                         "init_state_index": 5 + e})))
        msgs.append((t + 5 * MS, "/policy/action", convert.action_msg(np.array([-1.0, -1.0]))))  # holding after
        t += 200 * MS
    for ts, topic, m in sorted(msgs, key=lambda x: x[0]):
        w.write(c[topic], ts, serialize_message(m))
    w.close()
    return path


def test_each_observation_is_paired_with_the_command_that_followed_it(tmp_path):
    bag = write_bag(tmp_path / "bag")
    eps, spec = bag_to_episodes(bag, INPUTS, rate=20)
    assert [len(e) for e in eps] == [12, 7]
    for e, ep in enumerate(eps):
        s = ep.obs[K.STATE][:, 0]
        assert np.array_equal(s, 100 * e + np.arange(len(ep)))
        assert np.array_equal(ep.actions[:, 0], s)                 # no off-by-one, no cross-episode steps
        assert np.array_equal(ep.obs[K.image_key("cam")][:, 0, 0, 0], s % 256)
        assert ep.task == "reach"
    assert eps[0].attrs["success"] and not eps[1].attrs["success"] and eps[1].attrs["init_state_index"] == 6
    assert spec[K.STATE].names == ("a", "b") and spec[K.image_key("cam")].shape == (4, 5, 3)


def test_resampling_at_half_rate_and_the_cli_file(tmp_path):
    bag = write_bag(tmp_path / "bag", episodes=(20,))
    eps, _ = bag_to_episodes(bag, INPUTS, rate=10)
    assert len(eps[0]) == 10
    assert np.array_equal(eps[0].obs[K.STATE][:, 0], np.arange(0, 20, 2))
    out, n, steps = convert_bag(bag, tmp_path / "d.hdf5", INPUTS, rate=20)
    back = read_episodes(out)
    assert n == 1 and steps == 20 and len(back[0]) == 20 and back[0].task == "reach"


def test_missing_topics_and_bad_inputs_are_named(tmp_path):
    bag = write_bag(tmp_path / "bag", episodes=(5,))
    extra = parse_inputs({"s.key": K.STATE, "s.topic": "/state", "d.key": K.depth_key("cam"), "d.topic": "/depth",
                          "d.type": "Image"})
    eps, spec = bag_to_episodes(bag, extra, rate=20)          # unrecorded mapped topics are left out
    assert K.depth_key("cam") not in spec
    with pytest.raises(DatasetError, match="/depth"):
        bag_to_episodes(bag, extra, rate=20, keys=[K.STATE, K.depth_key("cam")])
    with pytest.raises(DatasetError, match="/nope"):
        bag_to_episodes(bag, INPUTS, rate=20, action_topic="/nope")
    with pytest.raises(DatasetError, match="not a rosbag2"):
        bag_to_episodes(tmp_path, INPUTS, rate=20)
    json.dumps(spec.to_dict())
