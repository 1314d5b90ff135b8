"""Segment sampler and batch sampler (spec §4.2 'Sampler')."""

import numpy as np
import pytest
import torch

from policies.decisionnce.data import (SegmentDataset, UniqueInstructionBatchSampler, collate_segments,
                                       load_task_episodes, shared_crop)
from policystack import keys as K
from policystack.dataset import EpisodeWriter
from policystack.errors import DatasetError
from policystack.spec import Feature, Spec

from dnce_helpers import IMG, synthetic_world, write_groups


def test_frames_are_sorted_distinct_and_taken_from_one_trajectory():
    groups = synthetic_world(3, 2, T=10)
    ds = SegmentDataset(groups, IMG, num_frames=3, resolution=32, augment=False, seed=0)
    for _ in range(200):
        k = int(np.random.default_rng().integers(len(ds)))
        item = ds[k]
        idx = item["frame_index"].numpy()
        assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < 10
        eps = groups[item["task"]]
        want = torch.from_numpy(np.stack([e.obs[IMG][idx] for e in eps])).permute(0, 1, 4, 2, 3).float() / 255
        assert any(torch.allclose(item["frames"], w, atol=1e-6) for w in want)


def test_crop_is_shared_across_frames_and_brightness_is_not():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)     # spatially varying, same in every frame
    x = torch.from_numpy(np.stack([img] * 4)).permute(0, 3, 1, 2).float() / 255
    for _ in range(20):
        out = shared_crop(x, 16, (0.2, 1.0), rng)
        assert out.shape == (4, 3, 16, 16)
        assert all(torch.equal(out[0], out[i]) for i in range(1, 4))
    # through the dataset: with brightness jitter off, frames of a static episode stay identical
    from policystack.dataset import Episode
    static = Episode(obs={IMG: np.stack([img] * 8)}, actions=np.zeros((8, 4), np.float32),
                     rewards=np.zeros(8, np.float32), dones=np.zeros(8, np.uint8), task="stay")
    ds = SegmentDataset({"stay": [static]}, IMG, resolution=32, brightness=0.0, seed=1)
    f = ds[0]["frames"]
    assert torch.equal(f[0], f[1])
    ds_b = SegmentDataset({"stay": [static]}, IMG, resolution=32, brightness=0.5, seed=1)
    f = ds_b[0]["frames"]
    assert not torch.equal(f[0], f[1])       # brightness is drawn per frame


def test_batches_never_repeat_an_instruction_and_an_epoch_covers_each_once():
    n, bs = 32, 8
    s = UniqueInstructionBatchSampler(n, bs, seed=3)
    for epoch in range(3):
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s) == 4
        assert all(len(set(b)) == len(b) == bs for b in batches)
        assert sorted(i for b in batches for i in b) == list(range(n))
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    assert e0 != list(s)                  # reshuffled every epoch


def test_ranks_get_disjoint_shards():
    shards = []
    for r in range(2):
        s = UniqueInstructionBatchSampler(20, 5, seed=0, rank=r, world_size=2)
        shards.append({i for b in s for i in b})
    assert not shards[0] & shards[1] and len(shards[0] | shards[1]) == 20


def test_too_large_a_batch_is_an_error():
    with pytest.raises(DatasetError, match="repeat"):
        UniqueInstructionBatchSampler(10, 16)


def test_dataset_items_are_unique_instructions_from_files(tmp_path):
    groups = synthetic_world(4, 3, T=8)
    # two files with the same instruction collapse into one item
    write_groups(groups, tmp_path / "a")
    write_groups({k: v[:1] for k, v in groups.items()}, tmp_path / "b")
    loaded = load_task_episodes([tmp_path / "a", tmp_path / "b"], [IMG])
    assert sorted(loaded) == sorted(groups) and all(len(v) == 4 for v in loaded.values())
    ds = SegmentDataset(loaded, IMG, resolution=32)
    batch = collate_segments([ds[i] for i in range(len(ds))])
    assert batch["frames"].shape == (4, 2, 3, 32, 32) and len(set(batch["task"])) == 4
    held = load_task_episodes([tmp_path / "a"], [IMG], exclude=["task0"])
    assert len(held) == 3
    assert len(load_task_episodes([tmp_path / "a"], [IMG], exclude=["task0", "tsak1"])) == 3   # lenient default
    with pytest.raises(DatasetError, match="tsak1"):
        load_task_episodes([tmp_path / "a"], [IMG], exclude=["task0", "tsak1"], strict=True)


def test_a_file_holding_several_tasks_splits_per_instruction(tmp_path):
    """A LIBERO suite file holds every task: the train/eval split and the task name follow the instruction."""
    groups = synthetic_world(3, 3, T=8)
    ep0 = next(iter(groups.values()))[0]
    feats = Spec.of([Feature(IMG, ep0.obs[IMG].shape[1:], "uint8"), Feature(K.STATE, ep0.obs[K.STATE].shape[1:], "float32"),
                     Feature(K.TASK, (), "str"), Feature(K.ACTION, (4,), "float32")])
    with EpisodeWriter(tmp_path / "suite.hdf5", features=feats) as w:
        for i in range(3):                                   # interleaved: task a, b, c, a, b, c, ...
            for task in sorted(groups):
                w.add(groups[task][i])
    train = load_task_episodes([tmp_path], [IMG], limit=2)
    assert sorted(train) == sorted(groups) and all(len(v) == 2 for v in train.values())
    for task, eps in train.items():
        assert all(e.attrs["task_name"] == task for e in eps)
        np.testing.assert_array_equal(eps[1].obs[IMG], groups[task][1].obs[IMG])
    held_out = sorted(groups)[0]
    rest = load_task_episodes([tmp_path], [IMG], exclude=[held_out])
    assert held_out not in rest and len(rest) == 2
