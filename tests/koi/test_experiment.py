"""The KOI-vs-ROT aggregation: which runs count, per-seed means, and the `policystack koi plot` verb."""

import json

import numpy as np
import pytest


def fake_run(root, task, method, seed, successes, frames=(0, 1000, 2000), total=2000, seed_frames=500):
    d = root / "runs" / f"{task}_{method}_s{seed}"
    d.mkdir(parents=True)
    cfg = {"task": task, "seed": seed, "num_train_frames": total, "num_seed_frames": seed_frames,
           "reward": {"nu": "koi" if method == "koi" else "uniform"}}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "eval.json").write_text(json.dumps([{"frames": f, "success_rate": s} for f, s in zip(frames, successes)]))
    eps = [{"episode": i + 1, "frames": 400 * (i + 1), "ot_return": -10.0 - i - seed, "success": i >= 3}
           for i in range(5)]
    (d / "episodes.json").write_text(json.dumps(eps))


@pytest.fixture
def exp_dir(tmp_path):
    for seed, (a, b) in enumerate([(0.2, 0.6), (0.4, 0.8)]):
        fake_run(tmp_path, "drawer-close-v3", "koi", seed, [0.1, a, b])
        fake_run(tmp_path, "drawer-close-v3", "rot", seed, [0.1, 0.1, 0.3])
    fake_run(tmp_path, "drawer-close-v3", "koi", 2, [0.1, 1.0], frames=(0, 1000))   # still running
    return tmp_path


def test_summary_averages_finished_seeds_only(exp_dir):
    from policies.koi import experiment as X
    rows = {r["method"]: r for r in X.summarize(X.collect(exp_dir))}
    koi, rot = rows["koi"], rows["rot"]
    assert koi["seeds"] == [0, 1] and koi["frames"] == [0, 1000, 2000]
    np.testing.assert_allclose(koi["mean"], [0.1, 0.3, 0.7])
    assert koi["final"] == pytest.approx(0.7) and rot["final"] == pytest.approx(0.3)
    assert koi["auc"] == pytest.approx(np.mean([0.1, 0.3, 0.7]))
    # online episodes are those past the 500 seed frames: 4 per run, 2 of them successful
    assert koi["train_success"] == pytest.approx(0.5)
    np.testing.assert_allclose(koi["ot_return"], [-10.5, -11.5, -12.5, -13.5, -14.5])
    partial = {r["method"]: r for r in X.summarize(X.collect(exp_dir, finished_only=False))}
    assert partial["koi"]["seeds"] == [0, 1, 2]


def test_plot_verb_writes_figure_and_table(exp_dir, capsys):
    from policystack.cli import main
    fig = exp_dir / "fig.png"
    assert main(["koi", "plot", "--out", str(exp_dir), "--figure", str(fig)]) == 0
    out = capsys.readouterr().out
    assert "| drawer-close-v3 | KOI | 2 | 0.10 | 0.70 |" in out
    assert fig.stat().st_size > 5000
    assert json.loads((exp_dir / "summary.json").read_text())[0]["task"] == "drawer-close-v3"


def test_plot_verb_reports_an_empty_experiment(tmp_path, capsys):
    from policystack.cli import main
    assert main(["koi", "plot", "--out", str(tmp_path)]) == 1
    assert "no finished runs" in capsys.readouterr().err
