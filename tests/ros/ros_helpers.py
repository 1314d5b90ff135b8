"""Helpers for the ROS tests (a uniquely named module: `from conftest import` is ambiguous across areas)."""

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_launch(args: list[str], timeout: float) -> str:
    """`policystack ros launch ...` to completion; returns its output (stdout + stderr).

    On a timeout the launcher gets SIGINT (it stops its nodes, which publish their safe stop) and the
    assertion carries the log tail, so a stuck graph says where it stopped and leaves no node behind.
    """
    p = subprocess.Popen([sys.executable, "-m", "policystack.cli", "ros", "launch", *args], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        raise AssertionError(f"launch did not finish in {timeout} s; log tail:\n{out[-4000:]}") from None
    assert p.returncode == 0, f"launch exited with {p.returncode}; log tail:\n{out[-4000:]}"
    return out
