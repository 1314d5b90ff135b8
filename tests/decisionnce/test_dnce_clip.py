"""The project's CLIP: OpenAI RN50 layout, strict loading of official-layout weights, tokenizers."""

import gzip

import pytest
import torch

from policies.common.clip import (CLIP, CLIPConfig, ClipBPETokenizer, HashWordTokenizer, load_openai_clip,
                                  load_strict, preprocess_images)
from policies.decisionnce.configuration_decisionnce import EncoderConfig
from policies.decisionnce.encoder import DualEncoder, load_encoder
from policystack.errors import CheckpointError, ConfigError

from dnce_helpers import tiny_clip


@pytest.fixture(scope="module")
def rn50_encoder():
    torch.manual_seed(0)
    return DualEncoder(EncoderConfig.rn50())


def test_rn50_has_openai_sizes_and_key_layout(rn50_encoder):
    sd = rn50_encoder.state_dict()
    # the official DecisionNCE wrapper keeps CLIP under `model.` and deletes logit_scale
    assert all(k.startswith("model.") for k in sd) and "model.logit_scale" not in sd
    shapes = {"model.visual.conv1.weight": (32, 3, 3, 3), "model.visual.layer1.0.downsample.0.weight": (256, 64, 1, 1),
              "model.visual.layer4.2.conv3.weight": (2048, 512, 1, 1),
              "model.visual.attnpool.positional_embedding": (50, 2048),
              "model.visual.attnpool.c_proj.weight": (1024, 2048), "model.token_embedding.weight": (49408, 512),
              "model.positional_embedding": (77, 512), "model.text_projection": (512, 1024),
              "model.transformer.resblocks.11.attn.in_proj_weight": (1536, 512),
              "model.transformer.resblocks.11.mlp.c_fc.weight": (2048, 512)}
    for k, s in shapes.items():
        assert tuple(sd[k].shape) == s, k
    n = sum(p.numel() for p in rn50_encoder.parameters())
    assert n == 102_007_137 - 1       # OpenAI RN50 has 102,007,137 parameters incl. logit_scale
    inner = {k[len("model."):]: v for k, v in sd.items()}
    assert CLIPConfig.from_state_dict(inner) == CLIPConfig.rn50()
    assert rn50_encoder.encode_image(torch.zeros(1, 224, 224, 3, dtype=torch.uint8)).shape == (1, 1024)


def test_official_decisionnce_checkpoint_loads_strictly(rn50_encoder, tmp_path):
    sd = rn50_encoder.state_dict()
    path = tmp_path / "DecisionNCE-T"          # the official file has no extension
    torch.save({"model": sd, "epoch": 50}, path)
    enc = load_encoder(path, EncoderConfig.rn50())
    got = enc.state_dict()
    assert all(torch.equal(got[k], sd[k]) for k in ("model.visual.conv1.weight", "model.text_projection",
                                                     "model.visual.layer3.5.bn2.running_var"))
    # a key mismatch is an error, never a silent fallback to random weights
    bad = dict(sd)
    bad["model.visual.attnpool.qproj.weight"] = bad.pop("model.visual.attnpool.q_proj.weight")
    with pytest.raises(CheckpointError, match="missing.*unexpected"):
        load_strict(enc, bad, "test")
    shaped = dict(sd)
    shaped["model.text_projection"] = torch.zeros(512, 512)
    with pytest.raises(CheckpointError, match="shape"):
        load_strict(enc, shaped, "test")


def test_openai_layout_weights_load_and_vanilla_clip_is_not_a_decisionnce_checkpoint(tmp_path):
    torch.manual_seed(0)
    clip = CLIP(tiny_clip())
    sd = dict(clip.state_dict())
    sd.update(input_resolution=torch.tensor(32), context_length=torch.tensor(12), vocab_size=torch.tensor(256))
    path = tmp_path / "RN_tiny.pt"
    torch.save(sd, path)
    loaded = load_openai_clip(path)
    assert loaded.cfg == tiny_clip()
    assert torch.equal(loaded.visual.attnpool.q_proj.weight, clip.visual.attnpool.q_proj.weight)
    enc = load_encoder(path, EncoderConfig(clip=tiny_clip()))     # initialise DecisionNCE from OpenAI weights
    assert torch.equal(enc.model.text_projection, clip.text_projection)
    # a DecisionNCE checkpoint keeps no logit_scale: vanilla CLIP keys under model. are refused
    with pytest.raises(CheckpointError, match="logit_scale"):
        DualEncoder(EncoderConfig(clip=tiny_clip())).load_official_state({"model." + k: v for k, v in clip.state_dict().items()})
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder(tmp_path / "nope.pth", EncoderConfig(clip=tiny_clip()))


def test_saved_encoder_round_trip(tmp_path, tiny_encoder_cfg):
    enc = DualEncoder(tiny_encoder_cfg).eval()
    enc.save(tmp_path / "enc")
    back = DualEncoder.load(tmp_path / "enc")
    x = torch.randint(0, 255, (2, 40, 48, 3), dtype=torch.uint8)
    assert torch.allclose(enc.encode_image(x), back.encode_image(x))
    assert torch.allclose(enc.encode_text(["open the door"]), back.encode_text(["open the door"]))


def test_preprocess_matches_clip_tensor_path():
    x = torch.full((1, 3, 100, 50), 0.5)
    out = preprocess_images(x, 32)
    assert out.shape == (1, 3, 32, 32)
    assert torch.allclose(out[0, 0], torch.full((32, 32), (0.5 - 0.48145466) / 0.26862954), atol=1e-4)
    assert torch.allclose(preprocess_images(x * 255, 32), out, atol=1e-4)     # max > 10 -> /255


def _write_merges(path):
    merges = ["o p", "op e", "ope n</w>", "t h", "th e</w>", "d r", "dr a", "dra w", "draw e", "drawe r</w>"]
    with gzip.open(path, "wt") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return len(merges)


def test_clip_bpe_tokenizer_from_a_user_supplied_merges_file(tmp_path):
    n = _write_merges(tmp_path / "bpe.txt.gz")
    tok = ClipBPETokenizer(tmp_path / "bpe.txt.gz")
    assert tok.vocab_size == 512 + n + 2 and tok.eot == tok.vocab_size - 1
    ids = tok.encode("Open  the DRAWER")
    assert [tok.decoder[i] for i in ids] == ["open</w>", "the</w>", "drawer</w>"]
    assert tok.decode(ids) == "open the drawer"
    t = tok(["open the drawer", "x"], context_length=8)
    assert t.shape == (2, 8) and t[0, 0] == tok.sot and t[0, 4] == tok.eot and t[0, 5:].sum() == 0
    assert tok.decode(tok.encode("unmerged words")) == "unmerged words"      # byte fallback
    with pytest.raises(ValueError, match="context length"):
        tok(["open the drawer " * 5], context_length=8)
    with pytest.raises(ConfigError, match="does not exist"):
        ClipBPETokenizer(tmp_path / "missing.gz")


def test_hash_tokenizer_is_deterministic_and_ends_with_the_largest_id():
    tok = HashWordTokenizer(256)
    a, b = tok(["push the puck"], 8), tok(["push the puck"], 8)
    assert torch.equal(a, b) and a[0, 4] == 255 and a.argmax() == 4
    assert not torch.equal(tok(["pull the puck"], 8), a)
