"""colcon test: the installed layout is what `ros2 launch` / `ros2 run` need (no DDS traffic here)."""

import ast
import os
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1]
LAUNCH = PKG.parents[2] / "launch"


def test_launch_files_parse_and_define_generate_launch_description():
    files = sorted(LAUNCH.glob("*.launch.py"))
    assert {f.name for f in files} >= {"sim.launch.py", "real_robot.launch.py"}
    for f in files:
        tree = ast.parse(f.read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "generate_launch_description" in names, f
        imported = {a.module.split(".")[0] for a in tree.body if isinstance(a, ast.ImportFrom)}
        assert imported <= {"launch", "launch_ros"}, f"{f.name} imports {imported}"


def test_every_executable_named_by_a_launch_file_is_a_console_script():
    setup = (PKG / "setup.py").read_text()
    exes = set(re.search(r"EXECUTABLES = \[(.*?)\]", setup).group(1).replace('"', "").replace(" ", "").split(","))
    for f in LAUNCH.glob("*.launch.py"):
        for pkg, exe in re.findall(r'package="(\w+)", executable="(\w+)"', f.read_text()):
            assert pkg == "policystack_ros" and exe in exes, (f.name, pkg, exe)
    for exe in exes:
        assert (PKG / "policystack_ros" / f"{exe}.py").is_file()


def test_installed_tree_when_built():
    prefix = os.environ.get("AMENT_PREFIX_PATH", "").split(":")[0]
    if not prefix or not (Path(prefix) / "share" / "policystack_ros").is_dir():
        pytest.skip("package not installed in AMENT_PREFIX_PATH (run after colcon build + source)")
    share = Path(prefix) / "share" / "policystack_ros"
    assert (share / "launch" / "sim.launch.py").is_file() and (share / "launch" / "sim.yaml").is_file()
    assert (Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / "policystack_ros").is_file()
