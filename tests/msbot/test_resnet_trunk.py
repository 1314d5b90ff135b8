"""The reference's ResNet-18 encoders (spec §1.5): torchvision's layout, so its ImageNet file loads as is,
and the trainer's ``trunk_weights`` putting those weights into every trunk before training."""

import pytest
import torch

from policies.base import make_policy
from policies.common.resnet import ResNet18Trunk, load_imagenet_into, load_imagenet_resnet18
from policies.msbot import MSBotConfig
from policies.msbot.configuration_msbot import TokenizerConfig
from policystack.config import ConfigError
from policystack.errors import CheckpointError
from test_msbot_policy import PRIMS, paper_spec, small


def torchvision_resnet18_keys() -> set[str]:
    """The state-dict names of torchvision.models.resnet18(), spelled out from its architecture."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv1.weight", "fc.weight", "fc.bias"} | {f"bn1.{b}" for b in bn}
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            keys |= {f"{p}.conv1.weight", f"{p}.conv2.weight"} | {f"{p}.bn{i}.{b}" for i in (1, 2) for b in bn}
        if layer > 1:
            keys |= {f"layer{layer}.0.downsample.0.weight"} | {f"layer{layer}.0.downsample.1.{b}" for b in bn}
    return keys


def imagenet_like_file(path, seed=0):
    """A file in torchvision's resnet18 layout (random values: the real one cannot be downloaded here)."""
    g = torch.Generator().manual_seed(seed)

    def like(k, v):
        if not v.is_floating_point():
            return v.clone()
        if k.endswith("running_var"):
            return 0.5 + torch.rand(v.shape, generator=g)
        scale = (2.0 / v[0].numel()) ** 0.5 if v.ndim == 4 else 0.1  # He-scaled convs, as trained weights
        return (1.0 if k.endswith(".weight") and v.ndim == 1 else 0.0) + scale * torch.randn(v.shape, generator=g)

    sd = {k: like(k, v) for k, v in ResNet18Trunk(3, 128).state_dict().items() if not k.startswith("proj.")}
    sd["fc.weight"], sd["fc.bias"] = 0.01 * torch.randn(1000, 512, generator=g), torch.zeros(1000)
    torch.save(sd, path)
    return sd


def test_trunk_has_torchvisions_layout_and_encodes_frames():
    t = ResNet18Trunk(3, 128).eval()
    own = set(t.state_dict()) - {"proj.weight", "proj.bias"}
    assert own == torchvision_resnet18_keys() - {"fc.weight", "fc.bias"}
    assert len(torchvision_resnet18_keys()) == 122  # torchvision's resnet18().state_dict() has 122 entries
    assert t(torch.randn(4, 3, 96, 128)).shape == (4, 128)
    assert ResNet18Trunk(1, 64)(torch.randn(2, 1, 64, 48)).shape == (2, 64)  # a log-Mel chunk


def test_imagenet_weights_load_into_every_trunk_and_a_foreign_channel_count_keeps_its_conv1(tmp_path):
    sd = imagenet_like_file(tmp_path / "resnet18.pth")
    policy = make_policy(small(MSBotConfig(primitives=PRIMS), trunk="resnet18"), paper_spec())
    audio = policy.tokenizer.encoders["observation__audio__mic"]
    conv1_before = audio.conv1.weight.detach().clone()
    assert load_imagenet_into(policy, tmp_path / "resnet18.pth") == 3  # rgb, tactile, audio
    for name, trunk in policy.tokenizer.encoders.items():
        got = trunk.state_dict()
        for k in ("bn1.running_mean", "layer1.0.conv1.weight", "layer4.1.bn2.weight", "layer3.0.downsample.0.weight"):
            assert torch.equal(got[k], sd[k]), (name, k)
    assert torch.equal(policy.tokenizer.encoders["observation__images__rgb"].conv1.weight, sd["conv1.weight"])
    assert torch.equal(audio.conv1.weight, conv1_before)  # 1 channel: fresh conv1, as the reference's audio


def test_wrong_weight_files_are_refused_with_the_reason(tmp_path):
    trunk = ResNet18Trunk(3, 16)
    with pytest.raises(CheckpointError, match="no such file"):
        load_imagenet_resnet18(trunk, tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_imagenet_resnet18(trunk, tmp_path / "junk.pth")
    sd = imagenet_like_file(tmp_path / "r.pth")
    del sd["layer2.1.conv2.weight"]
    sd["layer1.0.bn1.weight"] = torch.ones(3)
    torch.save(sd, tmp_path / "r34.pth")
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"1 missing .*layer2\.1\.conv2\.weight.*1 of another shape"):
        load_imagenet_resnet18(trunk, tmp_path / "r34.pth")
    assert all(torch.equal(v, before[k]) for k, v in trunk.state_dict().items())  # nothing half-loaded
    small_trunk = make_policy(small(MSBotConfig(primitives=PRIMS)), paper_spec())
    with pytest.raises(ConfigError, match="tokenizer.trunk=resnet18"):
        load_imagenet_into(small_trunk, tmp_path / "r.pth")
    with pytest.raises(ConfigError, match="tokenizer.trunk"):
        TokenizerConfig(trunk="resnet50")


def test_trainer_starts_from_the_weights_file_and_stops_on_nan_gradients(tmp_path):
    from policies.base import load_policy
    from policies.msbot.train_msbot import MSBotTrainConfig, train
    from policystack.config import apply_overrides
    from sim.multisensory_expert import generate_demos

    demos = generate_demos(tmp_path / "demos.hdf5", 2, env_kwargs={"image_size": 32, "audio_window_s": 0.2},
                           progress=False)

    def run(name, weights):
        return train(apply_overrides(MSBotTrainConfig(), [
            f"dataset={demos}", f"output_dir={tmp_path / name}", "epochs=1", "warmup_epochs=0", "lr=1e-12",
            "policy.tokenizer.trunk=resnet18", "policy.tokenizer.token_dim=16", "policy.n_heads=2",
            "policy.tokenizer.audio_stream=true", f"trunk_weights={weights}"]), progress=False)

    sd = imagenet_like_file(tmp_path / "resnet18.pth")
    rgb = load_policy(run("run", tmp_path / "resnet18.pth")).tokenizer.encoders["observation__images__wrist"]
    torch.testing.assert_close(rgb.layer2[0].conv1.weight, sd["layer2.0.conv1.weight"], atol=1e-6, rtol=0)
    # unit-variance weights in every conv: the loss is finite, the backward pass is not
    g = torch.Generator().manual_seed(0)
    torch.save({k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v for k, v in sd.items()},
               tmp_path / "wild.pth")
    with pytest.raises(FloatingPointError, match="gradient norm became nan"):
        run("wild", tmp_path / "wild.pth")
    assert not (tmp_path / "wild" / "checkpoints" / "last").exists()  # no NaN checkpoint written
