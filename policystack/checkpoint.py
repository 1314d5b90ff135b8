"""Checkpoint files: atomic writes, safetensors weights + config JSON, training state for resume.

A pretrained directory holds ``config.json`` (with the policy ``type``), ``model.safetensors``
(weights *and* normaliser buffers) and ``spec.json`` (the features it was trained on).
Every write goes to a temporary sibling and is renamed into place, so an interrupted write never
leaves a half checkpoint where a good one was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

from policystack.errors import CheckpointError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
SPEC_NAME = "spec.json"
TRAIN_STATE_NAME = "train_state.pt"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    import io
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def atomic_directory(target: Path):
    """Context manager yielding a temp dir that replaces ``target`` on success."""
    return _AtomicDir(Path(target))


class _AtomicDir:
    def __init__(self, target: Path):
        self.target = target

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", dir=self.target.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.target, old)
        os.replace(self.tmp, self.target)
        _fsync_dir(self.target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def save_weights(state_dict: Mapping[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file
    # safetensors refuses shared storage; clone makes every tensor own its memory
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    save_file(tensors, str(path))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint weights {path} do not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint weights {path} are corrupt or not safetensors: {e}") from e


def read_json(path: Path, what: str = "checkpoint config") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{what} {path} is corrupt (not JSON): {e}") from e


def resolve_pretrained_dir(path: str | os.PathLike) -> Path:
    """Accept a pretrained dir, a run dir (uses its ``last`` checkpoint) or fail naming the path."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    if (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).exists():
        return p
    for sub in ("checkpoints/last/pretrained", "last/pretrained", "pretrained"):
        if (p / sub / CONFIG_NAME).is_file():
            return p / sub
    raise CheckpointError(f"{p} is not a policystack checkpoint (no {CONFIG_NAME} + {WEIGHTS_NAME}, "
                          f"nor checkpoints/last/pretrained inside)")


def load_train_state(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"training state {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a truncated zip
        raise CheckpointError(f"training state {path} is corrupt: {e}") from e
