"""Fine-tuning the MiniLM text tower (the paper trains its whole text tower; the default keeps MiniLM
frozen and trains only a linear head)."""

import pytest
import torch

from policies.decisionnce.configuration_decisionnce import EncoderConfig, PretrainConfig
from policies.decisionnce.encoder import DualEncoder
from policies.decisionnce.train_decisionnce import pretrain
from policystack.errors import ConfigError

from dnce_helpers import IMG, synthetic_world, tiny_clip, write_groups

TEXTS = ["open the door", "close the door", "press the button from the top"]


def _pair():
    torch.manual_seed(0)
    frozen = DualEncoder(EncoderConfig(clip=tiny_clip(), text_tower="minilm")).eval()
    tuned = DualEncoder(EncoderConfig(clip=tiny_clip(), text_tower="minilm", minilm_finetune=True)).eval()
    tuned.text_proj.load_state_dict(frozen.text_proj.state_dict())
    return frozen, tuned


def test_fine_tuned_tower_starts_as_the_frozen_one_and_its_weights_travel_with_the_encoder(tmp_path):
    frozen, tuned = _pair()
    with torch.no_grad():
        assert torch.allclose(frozen.encode_text(TEXTS), tuned.encode_text(TEXTS), atol=1e-5)
    assert not any(k.startswith("text_model.") for k in frozen.state_dict())
    assert any(k.startswith("text_model.") for k in tuned.state_dict())
    with torch.no_grad():   # a changed transformer must come back from disk, not from the package
        tuned.text_model[0].auto_model.embeddings.word_embeddings.weight.mul_(1.5)
        expected = tuned.encode_text(TEXTS)
    loaded = DualEncoder.load(tuned.save(tmp_path / "enc"))
    with torch.no_grad():
        assert torch.allclose(loaded.encode_text(TEXTS), expected, atol=1e-6)
        assert not torch.allclose(loaded.encode_text(TEXTS), frozen.encode_text(TEXTS), atol=1e-3)


def test_minilm_finetune_needs_the_minilm_tower_and_text_lr_must_be_positive():
    with pytest.raises(ConfigError, match="minilm_finetune"):
        EncoderConfig(text_tower="clip", minilm_finetune=True)
    with pytest.raises(ConfigError, match="text_lr"):
        PretrainConfig(text_lr=0.0)


def test_pretraining_moves_the_transformer_at_its_own_learning_rate(tmp_path):
    torch.manual_seed(0)
    data = write_groups(synthetic_world(4, 3, seed=0), tmp_path / "data")
    enc_cfg = EncoderConfig(clip=tiny_clip(), text_tower="minilm", minilm_finetune=True)
    start = DualEncoder(enc_cfg).text_model.state_dict()
    cfg = PretrainConfig(data=(str(data),), image_key=IMG, out_dir=str(tmp_path / "run"), encoder=enc_cfg,
                         batch_size=4, steps=3, lr=1e-3, text_lr=1e-5, warmup_steps=2, log_every=1)
    run = pretrain(cfg)
    state = torch.load(run / "checkpoints/last/train_state.pt", weights_only=False)
    rates = sorted({g["base_lr"] for g in state["optimizer"]["param_groups"]})
    assert rates == [1e-5, 1e-3]
    tuned = DualEncoder.load(run / "checkpoints/last/encoder").text_model.state_dict()
    moved = [k for k in start if not torch.equal(start[k], tuned[k])]
    assert moved and any("encoder.layer" in k for k in moved)
