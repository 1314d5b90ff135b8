"""ResNet building blocks without torchvision, named as torchvision names them so its ImageNet
``resnet18`` state dict loads as it is (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, ...)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from policystack.errors import CheckpointError, ConfigError
from policies.common.clip import read_torch_file


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18Trunk(nn.Module):
    """MS-Bot's per-modality encoder (spec §1.5): ResNet-18 without fc, global average pool,
    Linear(512, out_dim) per frame. ``in_ch`` other than 3 gets its own conv1 (the reference's audio)."""

    def __init__(self, in_ch: int, out_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.stem = nn.Sequential(nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        inplanes = 64
        for i in range(4):
            planes = 64 * 2 ** i
            layer = [BasicBlock(inplanes, planes, 2 if i > 0 else 1), BasicBlock(planes, planes)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            inplanes = planes
        self.proj = nn.Linear(512, out_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(self.bn1(self.conv1(x)))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        return self.proj(h.mean(dim=(-2, -1)))


def _read_state_dict(path: str | Path) -> dict:
    if not Path(path).is_file():
        raise CheckpointError(f"ResNet-18 weights {path}: no such file")
    try:
        sd = read_torch_file(path)
    except CheckpointError as e:
        raise CheckpointError(f"ResNet-18 weights {path}: cannot be read ({e})") from e
    return sd.get("state_dict", sd)  # a training checkpoint that wraps the weights


def _matched(trunk: ResNet18Trunk, sd: dict, path: str | Path) -> tuple[dict, list[str]]:
    """(the tensors of ``sd`` that ``trunk`` takes, the keys left at their init); an error naming the
    missing and mis-shaped keys when ``sd`` is not torchvision's resnet18 layout."""
    own = trunk.state_dict()
    fresh = ["proj.weight", "proj.bias"]
    if own["conv1.weight"].shape != getattr(sd.get("conv1.weight"), "shape", None):
        fresh.append("conv1.weight")
    wanted = [k for k in own if k not in fresh]
    missing = [k for k in wanted if k not in sd]
    wrong = [k for k in wanted if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise CheckpointError(f"ResNet-18 weights {path} do not match torchvision's resnet18 layout: "
                              f"{len(missing)} missing (e.g. {missing[:3]}), {len(wrong)} of another shape "
                              f"(e.g. {wrong[:3]})")
    return {k: sd[k] for k in wanted}, fresh


def load_imagenet_resnet18(trunk: ResNet18Trunk, path: str | Path) -> list[str]:
    """Load torchvision's ``resnet18`` ImageNet state dict into ``trunk`` (fc dropped, as the reference's
    ``strict=False``); a conv1 of another input width stays fresh. Returns the keys left at their init.

    Unlike ``strict=False`` a file of another layout is an error: every backbone tensor must be there."""
    tensors, fresh = _matched(trunk, _read_state_dict(path), path)
    trunk.load_state_dict(tensors, strict=False)
    return fresh


def load_imagenet_into(model: nn.Module, path: str | Path) -> int:
    """Load ImageNet ResNet-18 weights into every :class:`ResNet18Trunk` of ``model``; -> how many.
    The file is read once and checked against every trunk before any is changed."""
    trunks = [m for m in model.modules() if isinstance(m, ResNet18Trunk)]
    if not trunks:
        raise ConfigError(f"ResNet-18 weights {path} given, but the model has no ResNet-18 trunk "
                          f"(set policy.tokenizer.trunk=resnet18)")
    sd = _read_state_dict(path)
    matched = [_matched(t, sd, path)[0] for t in trunks]  # all checked before any is changed
    for t, tensors in zip(trunks, matched):
        t.load_state_dict(tensors, strict=False)
    return len(trunks)
