import json

import numpy as np
import pytest

from policystack import config as C
from policystack.errors import ConfigError, SpecMismatchError
from policystack.spec import Feature, Spec
from policystack.training import TrainConfig


def test_overrides_are_typed_and_nested():
    cfg = C.apply_overrides(TrainConfig(), ["steps=12", "batch_size=8", "policy.hidden_dim=32",
                                            "policy.modalities=state,images", "resume=true", "max_episodes=none"])
    assert cfg.steps == 12 and cfg.batch_size == 8 and cfg.resume is True and cfg.max_episodes is None
    assert cfg.policy.hidden_dim == 32 and cfg.policy.modalities == ("state", "images")


def test_unknown_field_and_bad_value_name_the_problem():
    with pytest.raises(ConfigError, match="stepz"):
        C.apply_overrides(TrainConfig(), ["stepz=3"])
    with pytest.raises(ConfigError, match="steps: expected int"):
        C.apply_overrides(TrainConfig(), ["steps=many"])
    with pytest.raises(ConfigError, match="n_action_steps"):
        C.apply_overrides(TrainConfig(), ["policy.chunk_size=2", "policy.n_action_steps=3"])
    with pytest.raises(ConfigError, match="unknown policy type 'nope'"):
        C.apply_overrides(TrainConfig(), ["policy.type=nope"])


def test_json_round_trip(tmp_path):
    cfg = C.apply_overrides(TrainConfig(), ["steps=7", "policy.chunk_size=4", "policy.n_action_steps=2"])
    C.save_json(cfg, tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text())["policy"]["type"] == "bc"
    back = C.load_json(TrainConfig, tmp_path / "c.json")
    assert back == cfg


def test_spec_mismatch_names_the_key():
    provided = Spec.of([Feature("observation.state", (39,), "float32")])
    required = Spec.of([Feature("observation.state", (39,), "float32"),
                        Feature("observation.images.wrist", (84, 84, 3), "uint8")])
    with pytest.raises(SpecMismatchError, match="observation.images.wrist"):
        provided.check_satisfies(required)
    wrong = Spec.of([Feature("observation.state", (7,), "float32")])
    with pytest.raises(SpecMismatchError, match=r"observation.state.*\(7,\)"):
        wrong.check_satisfies(Spec.of([Feature("observation.state", (39,), "float32")]))
    with pytest.raises(SpecMismatchError, match="shape"):
        required.check_observation({"observation.state": np.zeros(39, np.float32),
                                    "observation.images.wrist": np.zeros((64, 64, 3), np.uint8)})


def test_wildcard_shapes_match():
    req = Spec.of([Feature("observation.audio.mic", (1, None), "float32")])
    Spec.of([Feature("observation.audio.mic", (1, 1600), "float32")]).check_satisfies(req)


def test_describe_shows_the_values_a_parent_gives_its_nested_config():
    import dataclasses

    @dataclasses.dataclass
    class Inner:
        lr: float = 1e-3

    @dataclasses.dataclass
    class Outer:
        inner: Inner = dataclasses.field(default_factory=lambda: Inner(lr=5e-4))
        steps: int = 3

    lines = C.describe(Outer)
    assert "  inner.lr=0.0005" in lines and "  steps=3" in lines
    assert C.describe(Outer(steps=9))[-1] == "  steps=9"   # an instance shows its own values
