"""`policystack msbot` verbs (cheap paths; the experiment itself is exercised by the integration tests)."""

import json

import pytest

from policystack.cli import main


def test_help_lists_the_steps(capsys):
    with pytest.raises(SystemExit):
        main(["msbot", "--help"])
    out = capsys.readouterr().out
    for step in ("demos", "train", "eval", "experiment", "summarize"):
        assert step in out


@pytest.mark.sim
def test_demos_train_eval_through_the_cli(tmp_path, capsys):
    demos = tmp_path / "d.hdf5"
    assert main(["msbot", "demos", "--out", str(demos), "--episodes", "2", "--image-size", "32"]) == 0
    run = tmp_path / "run"
    assert main(["msbot", "train", f"dataset={demos}", f"output_dir={run}", "epochs=1",
                 "policy.type=concat_fusion", "policy.tokenizer.channels=8", "policy.tokenizer.token_dim=16",
                 "policy.n_heads=2", "policy.tokenizer.audio_stream=true"]) == 0
    out = tmp_path / "eval.json"
    assert main(["msbot", "eval", "--policy", str(run), "--episodes", "1", "--condition", "audio",
                 "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["n_episodes"] == 1 and "success_rate" in res
    assert main(["msbot", "eval", "--policy", str(run), "--condition", "fog"]) == 2
    assert main(["msbot", "train", "dataset=/nonexistent.hdf5", f"output_dir={tmp_path / 'x'}"]) == 2
