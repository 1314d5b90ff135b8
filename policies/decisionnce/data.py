"""Segment sampling for DecisionNCE (spec §1.4).

One dataset item per *unique instruction*: item k picks a random trajectory of instruction k and F
distinct frames uniformly inside it (sorted), so segment length is random (local and global progress).
Brightness jitter is drawn per frame; one RandomResizedCrop is shared by all frames of a segment.
Batches come from ``UniqueInstructionBatchSampler``: a permutation of instruction indices cut into
batches, so no instruction repeats within a batch (no false negatives) and an epoch covers each once.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from policystack.dataset import Episode, read_episodes
from policystack.errors import DatasetError

log = logging.getLogger(__name__)


def episode_files(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.hdf5"))
        elif p.is_file():
            files.append(p)
        else:
            raise DatasetError(f"dataset path {p} does not exist")
    if not files:
        raise DatasetError(f"no .hdf5 episode files under {list(map(str, paths))}")
    return files


def load_task_episodes(paths: Sequence[str | Path], keys: Sequence[str], include: Sequence[str] | None = None,
                       exclude: Sequence[str] = (), limit: int | None = None,
                       strict: bool = False) -> dict[str, list[Episode]]:
    """Episodes grouped by instruction. ``include``/``exclude`` match a file stem (task name) or instruction.

    ``limit`` keeps the first N episodes of each instruction, so a file holding a whole suite (LIBERO)
    splits the same way as one file per task (Meta-World). A task is named by its file when the file
    holds one instruction, else by the instruction itself. ``strict``: a name in ``include`` or
    ``exclude`` that matches no file or instruction is an error (a typo would silently train on it).
    """
    out: dict[str, list[Episode]] = {}
    present: set[str] = set()
    for f in episode_files(paths):
        eps = read_episodes(f, keys=list(keys))
        if any(not ep.task for ep in eps):
            raise DatasetError(f"{f}: an episode has no instruction ('task' attribute)")
        single = len({ep.task for ep in eps}) == 1
        for ep in eps:
            names = {f.stem, ep.task}
            present |= names
            if include is not None and not names & set(include):
                continue
            if names & set(exclude):
                continue
            group = out.setdefault(ep.task, [])
            if limit is not None and len(group) >= limit:
                continue
            ep.attrs["task_name"] = f.stem if single else ep.task
            group.append(ep)
    missing = sorted((set(include or ()) | set(exclude)) - present) if strict else []
    if missing:
        raise DatasetError(f"tasks not in {[str(x) for x in paths]}: {missing}")
    return out


def to_float_chw(frames: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> float (F, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


def random_resized_crop_params(h: int, w: int, scale: tuple[float, float], rng: np.random.Generator,
                               ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, height, width) as torchvision's RandomResizedCrop samples them (10 tries, then centre)."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ar = math.exp(rng.uniform(*log_r))
        cw, ch = int(round(math.sqrt(target * ar))), int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def shared_crop(x: torch.Tensor, size: int, scale: tuple[float, float], rng: np.random.Generator) -> torch.Tensor:
    """One random resized crop applied to every frame of ``x`` (F, C, H, W) -> (F, C, size, size)."""
    top, left, ch, cw = random_resized_crop_params(x.shape[-2], x.shape[-1], scale, rng)
    x = x[..., top:top + ch, left:left + cw]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


class SegmentDataset(torch.utils.data.Dataset):
    """Item k -> {"frames": (F, 3, R, R) float [0,1], "task": instruction k, "index": k}."""

    def __init__(self, groups: dict[str, list[Episode]], image_key: str, num_frames: int = 2,
                 resolution: int = 64, crop_scale: tuple[float, float] = (0.2, 1.0), brightness: float = 0.5,
                 augment: bool = True, seed: int = 0):
        if not groups:
            raise DatasetError("SegmentDataset needs at least one instruction with episodes")
        self.instructions = sorted(groups)
        self.groups = [groups[k] for k in self.instructions]
        for inst, eps in zip(self.instructions, self.groups):
            for ep in eps:
                if image_key not in ep.obs:
                    raise DatasetError(f"episode of {inst!r} lacks {image_key!r}; it has {sorted(ep.obs)}")
                if len(ep) < num_frames:
                    raise DatasetError(f"an episode of {inst!r} has {len(ep)} frames < num_frames={num_frames}")
        self.image_key, self.num_frames, self.resolution = image_key, num_frames, resolution
        self.crop_scale, self.brightness, self.augment = tuple(crop_scale), brightness, augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.instructions)

    def sample_indices(self, T: int) -> np.ndarray:
        """F distinct frame indices uniform in [0, T), sorted."""
        return np.sort(self.rng.choice(T, size=self.num_frames, replace=False))

    def __getitem__(self, k: int) -> dict:
        eps = self.groups[k]
        ep = eps[int(self.rng.integers(len(eps)))]
        idx = self.sample_indices(len(ep))
        x = to_float_chw(ep.obs[self.image_key][idx])
        if self.augment:
            if self.brightness > 0:  # ColorJitter(brightness=b): factor ~ U[max(0, 1-b), 1+b] per frame
                f = self.rng.uniform(max(0.0, 1 - self.brightness), 1 + self.brightness, size=len(x))
                x = (x * torch.as_tensor(f, dtype=x.dtype).view(-1, 1, 1, 1)).clamp(0, 1)
            x = shared_crop(x, self.resolution, self.crop_scale, self.rng)
        elif x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear",
                              align_corners=False, antialias=True).clamp(0, 1)
        return {"frames": x, "task": self.instructions[k], "index": k, "frame_index": torch.from_numpy(idx)}


class UniqueInstructionBatchSampler(torch.utils.data.Sampler):
    """Batches of distinct instruction indices; with ``world_size`` > 1 each rank gets its own shard.

    Every epoch draws one permutation (seeded by ``seed`` and the epoch, identical on all ranks), gives
    rank r the items r, r+W, ..., and cuts them into ``batch_size`` batches (drop_last).
    """

    def __init__(self, n_items: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True):
        per_rank = n_items // world_size
        if batch_size > per_rank and drop_last:
            raise DatasetError(f"batch_size {batch_size} exceeds the {per_rank} distinct instructions per "
                               f"process ({n_items} in all, {world_size} processes): a batch would repeat one")
        self.n, self.bs, self.seed, self.rank, self.world = n_items, batch_size, seed, rank, world_size
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        per = len(range(self.rank, self.n - self.n % self.world if self.world > 1 else self.n, self.world))
        return per // self.bs if self.drop_last else math.ceil(per / self.bs)

    def __iter__(self) -> Iterator[list[int]]:
        g = np.random.default_rng([self.seed, self.epoch])
        perm = g.permutation(self.n)
        if self.world > 1:
            perm = perm[: self.n - self.n % self.world]
        mine = perm[self.rank::self.world].tolist()
        for i in range(0, len(mine), self.bs):
            b = mine[i:i + self.bs]
            if len(b) < self.bs and self.drop_last:
                break
            yield b


def collate_segments(items: list[dict]) -> dict:
    return {"frames": torch.stack([it["frames"] for it in items]), "task": [it["task"] for it in items],
            "index": torch.tensor([it["index"] for it in items]),
            "frame_index": torch.stack([it["frame_index"] for it in items])}
