"""scripts/msbot_diagnose.py: the route and swap diagnostics the results document relies on."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from policystack.cli import main
from sim.multisensory_expert import generate_demos

ROOT = Path(__file__).resolve().parents[2]
ENV = {"image_size": 32, "audio_window_s": 0.2}


def _diagnose():
    spec = importlib.util.spec_from_file_location("msbot_diagnose", ROOT / "scripts" / "msbot_diagnose.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("diag")
    clean, color = d / "heldout.hdf5", d / "heldout_color.hdf5"
    generate_demos(clean, 2, init_seed=0, env_kwargs=ENV, progress=False)
    generate_demos(color, 2, init_seed=0, env_kwargs={**ENV, "visual_distractor": "color"}, progress=False)
    generate_demos(d / "other.hdf5", 1, init_seed=7, env_kwargs=ENV, progress=False)
    run = d / "run"
    assert main(["msbot", "train", f"dataset={clean}", f"output_dir={run}", "epochs=2", "policy.type=msbot",
                 "policy.tokenizer.channels=8", "policy.tokenizer.token_dim=16", "policy.n_heads=2",
                 "policy.tokenizer.audio_stream=true"]) == 0
    return d, run


@pytest.mark.sim
def test_swap_with_the_clean_recording_changes_nothing_and_refuses_other_trajectories(tiny):
    d, run = tiny
    diag = _diagnose()
    same = diag.swap(run, d / "heldout.hdf5", d / "heldout.hdf5")
    assert same["clean"] == same["distracted"] == same["query clean"] == same["contents clean"]
    res = diag.swap(run, d / "heldout.hdf5", d / "heldout_color.hdf5")
    assert res["clean"] == same["clean"] and len(res["distracted"]) == 3
    with pytest.raises(ValueError, match="same trajectories"):
        diag.swap(run, d / "heldout.hdf5", d / "other.hdf5")


@pytest.mark.sim
def test_route_reports_accuracy_per_path_and_attention_mass_per_head(tiny):
    d, run = tiny
    diag = _diagnose()
    r = diag.route(run, d / "heldout.hdf5")
    policy, ds = diag._policy_and_heldout(run, d / "heldout.hdf5")
    ok, st, _ = diag.correct_per_sample(policy, ds, batch=64)
    assert r["full"] == pytest.approx([float(ok[st == s].mean()) for s in range(3)])
    assert r["modalities"] == ["mic", "wrist", "fingers"]
    mass = np.asarray(r["mass"])
    assert mass.shape == (3, 3) and np.allclose(mass.sum(1), 1.0, atol=0.01)
    assert np.asarray(r["mass_per_head"]).shape == (3, 2, 3)          # stages x heads x modalities
    for k in ("query only", "contents only"):
        assert len(r[k]) == 3 and all(0.0 <= a <= 1.0 for a in r[k])
