import h5py
import numpy as np
import pytest
import torch

from policystack.dataset import Episode, EpisodeWriter, features_of, read_episodes
from policystack.errors import DatasetError
from policystack.train_data import ChunkDataset


def _episode(T, seed=0, task="do it"):
    rng = np.random.default_rng(seed)
    return Episode(obs={"observation.state": rng.normal(size=(T, 5)).astype(np.float32),
                        "observation.images.cam": rng.integers(0, 255, (T, 8, 8, 3), dtype=np.uint8)},
                   actions=rng.normal(size=(T, 3)).astype(np.float32), rewards=np.zeros(T, np.float32),
                   dones=np.eye(1, T, T - 1, dtype=np.uint8)[0], task=task)


def test_round_trip_and_layout(tmp_path):
    p = tmp_path / "d.hdf5"
    with EpisodeWriter(p, env_args={"env_name": "x"}, language="do it") as w:
        w.add(_episode(6, 0))
        w.add(_episode(4, 1))
    with h5py.File(p) as f:  # robomimic/LIBERO layout
        assert f["data/demo_1/obs/observation.state"].shape == (4, 5)
        assert f["data/demo_0"].attrs["num_samples"] == 6
    eps = read_episodes(p)
    assert [len(e) for e in eps] == [6, 4] and eps[1].task == "do it"
    np.testing.assert_array_equal(eps[0].actions, _episode(6, 0).actions)
    assert features_of(eps)["observation.images.cam"].shape == (8, 8, 3)


def test_missing_key_and_bad_files_are_named(tmp_path):
    p = tmp_path / "d.hdf5"
    with EpisodeWriter(p) as w:
        w.add(_episode(3))
    with pytest.raises(DatasetError, match="observation.images.wrist"):
        read_episodes(p, keys=["observation.images.wrist"])
    with pytest.raises(DatasetError, match="does not exist"):
        read_episodes(tmp_path / "nope.hdf5")
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        read_episodes(tmp_path / "junk.hdf5")
    with h5py.File(tmp_path / "other.hdf5", "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(DatasetError, match="no 'data' group"):
        read_episodes(tmp_path / "other.hdf5")


def test_nan_actions_rejected_on_write(tmp_path):
    ep = _episode(3)
    ep.actions[1, 0] = np.nan
    with EpisodeWriter(tmp_path / "d.hdf5") as w, pytest.raises(DatasetError, match="NaN"):
        w.add(ep)


def test_chunks_pad_past_the_end_and_batches_match_samples():
    eps = [_episode(5, 0), _episode(3, 1)]
    ds = ChunkDataset(eps, ["observation.state", "observation.images.cam", "task"], n_obs_steps=2, chunk_size=4)
    s = ds[6]  # episode 1, t=1
    assert s["action_is_pad"].tolist() == [False, False, True, True]
    np.testing.assert_array_equal(s["action"][2].numpy(), eps[1].actions[-1])
    np.testing.assert_array_equal(s["observation.state"][0].numpy(), eps[1].obs["observation.state"][0])
    first = ds[0]  # history before t=0 repeats frame 0
    np.testing.assert_array_equal(first["observation.state"][0].numpy(), first["observation.state"][1].numpy())
    idx = [0, 6, 2, 7]
    b = ds.get_batch(idx)
    ref = torch.utils.data.default_collate([ds[i] for i in idx])
    for k in ref:
        if k == "task":
            assert list(b[k]) == list(ref[k])
        else:
            assert torch.equal(b[k], ref[k]), k
