"""scripts/dnce_compare_runs.py: the per-task comparison table and plot of the results document."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _compare():
    spec = importlib.util.spec_from_file_location("dnce_compare_runs", ROOT / "scripts" / "dnce_compare_runs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(path: Path, direction: dict[str, float]) -> str:
    per_task = {t: {"direction": d, "seg2text": 0.5} for t, d in direction.items()}
    held = {"direction": sum(direction.values()) / len(direction), "seg2text_top1": 0.4, "per_task": per_task}
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({"trained": {"heldout_tasks": held}}))
    return str(path)


def test_table_gives_mean_and_seeds_per_task_and_plots(tmp_path, capsys):
    a = [_run(tmp_path / f"a{i}", {"open it": d, "close it": 0.5}) for i, d in enumerate((0.6, 0.8))]
    b = _run(tmp_path / "b", {"open it": 1.0, "close it": 0.25})
    plot = tmp_path / "cmp.png"
    assert _compare().main([f"base={','.join(a)}", f"more={b}", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "| open it | 0.70 (0.60 / 0.80) | 1.00 (1.00) |" in out
    assert "| close it | 0.50 (0.50 / 0.50) | 0.25 (0.25) |" in out
    assert plot.stat().st_size > 5000


def test_runs_on_different_held_out_tasks_or_missing_runs_are_refused(tmp_path):
    a = _run(tmp_path / "a", {"open it": 0.6})
    b = _run(tmp_path / "b", {"close it": 0.6})
    with pytest.raises(SystemExit, match="different held-out tasks"):
        _compare().main([f"x={a},{b}"])
    with pytest.raises(SystemExit, match="not found"):
        _compare().main([f"x={tmp_path / 'nope'}"])
