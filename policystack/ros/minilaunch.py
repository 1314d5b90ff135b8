"""Run a standard ``launch_ros`` Python launch file without ROS's ``launch`` (not installable from PyPI).

The launch files stay standard (``ros2 launch policystack_ros sim.launch.py`` works on a ROS machine);
they only use a declarative subset, which this module provides as shim modules while it evaluates
``generate_launch_description()``:

    launch.LaunchDescription, launch.actions.{DeclareLaunchArgument, Shutdown},
    launch.conditions.{IfCondition, UnlessCondition},
    launch.substitutions.{LaunchConfiguration, PathJoinSubstitution, ThisLaunchFileDir, TextSubstitution},
    launch_ros.actions.Node(package, executable, name, namespace, parameters, remappings, arguments,
                            output, condition, on_exit=Shutdown(), emulate_tty)

Each node is started the way launch_ros starts it: ``<prefix>/lib/<package>/<executable> --ros-args
-r __node:=<name> -r __ns:=<ns> --params-file <file> ... -r from:=to``; dict parameters are written
to a temporary params file (YAML-typed, as launch_ros does). Without a colcon install of
``policystack_ros`` the executables run as ``python -m policystack.ros <executable>``. Anything outside
the subset fails loudly, so a launch file cannot silently drift from what CI checks.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from policystack.errors import ConfigError
from policystack.ros import EXECUTABLES, PACKAGE

log = logging.getLogger(__name__)


# ----- the shimmed subset -------------------------------------------------------------------------
class _Subst:
    def perform(self, ctx: "_Context") -> str:
        raise NotImplementedError


class LaunchConfiguration(_Subst):
    def __init__(self, variable_name: str, default: Any = None):
        self.name, self.default = variable_name, default

    def perform(self, ctx):
        if self.name in ctx.values:
            return ctx.values[self.name]
        if self.default is not None:
            return _text(self.default, ctx)
        raise ConfigError(f"launch configuration {self.name!r} is not set and has no default")


class TextSubstitution(_Subst):
    def __init__(self, text: str = ""):
        self.text = text

    def perform(self, ctx):
        return self.text


class ThisLaunchFileDir(_Subst):
    def perform(self, ctx):
        return str(ctx.file.parent)


class PathJoinSubstitution(_Subst):
    def __init__(self, substitutions: Sequence[Any]):
        self.parts = list(substitutions)

    def perform(self, ctx):
        return os.path.join(*[_text(p, ctx) for p in self.parts])


def _text(value: Any, ctx: "_Context") -> str:
    if isinstance(value, _Subst):
        return value.perform(ctx)
    if isinstance(value, (list, tuple)):
        return "".join(_text(v, ctx) for v in value)
    if isinstance(value, str):
        return value
    raise ConfigError(f"launch: {type(value).__name__} is outside the supported substitution subset")


class LaunchDescription:
    def __init__(self, initial_entities: Sequence[Any] | None = None):
        self.entities = list(initial_entities or [])

    def add_action(self, action: Any) -> None:
        self.entities.append(action)


class DeclareLaunchArgument:
    def __init__(self, name: str, default_value: Any = None, description: str = "", choices=None, **kw):
        if kw:
            raise ConfigError(f"DeclareLaunchArgument({name!r}): unsupported arguments {sorted(kw)}")
        self.name, self.default_value, self.description, self.choices = name, default_value, description, choices


class Shutdown:
    def __init__(self, reason: str = ""):
        self.reason = reason


class IfCondition:
    negate = False

    def __init__(self, predicate: Any):
        self.predicate = predicate

    def evaluate(self, ctx) -> bool:
        v = _text(self.predicate, ctx).strip().lower()
        if v not in ("true", "false", "1", "0"):
            raise ConfigError(f"condition value {v!r} is not a boolean (true/false/1/0)")
        return (v in ("true", "1")) != self.negate


class UnlessCondition(IfCondition):
    negate = True


_NODE_ARGS = {"package", "executable", "name", "namespace", "parameters", "remappings", "arguments",
              "output", "condition", "on_exit", "emulate_tty", "respawn"}


class Node:
    def __init__(self, **kw):
        bad = set(kw) - _NODE_ARGS
        if bad:
            raise ConfigError(f"launch_ros Node: unsupported arguments {sorted(bad)} (subset: {sorted(_NODE_ARGS)})")
        for req in ("package", "executable"):
            if req not in kw:
                raise ConfigError(f"launch_ros Node needs {req}=")
        on_exit = kw.get("on_exit")
        if on_exit is not None and not isinstance(on_exit, Shutdown):
            raise ConfigError("launch_ros Node: on_exit supports only launch.actions.Shutdown()")
        self.kw = kw


def _shim_modules() -> dict[str, types.ModuleType]:
    mods = {}

    def mod(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        m.__policystack_shim__ = True
        mods[name] = m
        return m
    launch = mod("launch", LaunchDescription=LaunchDescription)
    launch.actions = mod("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument, Shutdown=Shutdown)
    launch.conditions = mod("launch.conditions", IfCondition=IfCondition, UnlessCondition=UnlessCondition)
    launch.substitutions = mod("launch.substitutions", LaunchConfiguration=LaunchConfiguration,
                               PathJoinSubstitution=PathJoinSubstitution, ThisLaunchFileDir=ThisLaunchFileDir,
                               TextSubstitution=TextSubstitution)
    launch_ros = mod("launch_ros")
    launch_ros.actions = mod("launch_ros.actions", Node=Node)
    return mods


# ----- evaluation ---------------------------------------------------------------------------------
@dataclass
class _Context:
    file: Path
    values: dict[str, str]


@dataclass
class NodeLaunch:
    package: str
    executable: str
    name: str
    namespace: str = "/"
    params_files: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    shutdown_on_exit: bool = False


@dataclass
class Graph:
    file: Path
    arguments: dict[str, DeclareLaunchArgument]
    values: dict[str, str]
    nodes: list[NodeLaunch]


def load_description(path: str | Path) -> tuple[Path, LaunchDescription]:
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"launch file {path} does not exist")
    shims = _shim_modules()
    saved = {k: sys.modules.get(k) for k in shims}
    sys.modules.update(shims)
    try:
        spec = importlib.util.spec_from_file_location(f"_launch_{path.stem.replace('.', '_')}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, "generate_launch_description"):
            raise ConfigError(f"{path} defines no generate_launch_description()")
        desc = module.generate_launch_description()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    if not isinstance(desc, LaunchDescription):
        raise ConfigError(f"{path}: generate_launch_description() must return a LaunchDescription")
    return path, desc


def resolve(path: str | Path, overrides: Mapping[str, str] | None = None) -> Graph:
    """Evaluate a launch file with ``name:=value`` overrides into the nodes it starts."""
    file, desc = load_description(path)
    args = {e.name: e for e in desc.entities if isinstance(e, DeclareLaunchArgument)}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(args))
    if unknown:
        raise ConfigError(f"{file.name} declares no argument(s) {unknown}; it has: {', '.join(args)}")
    ctx = _Context(file, {})
    for name, a in args.items():
        if name in overrides:
            ctx.values[name] = str(overrides[name])
        elif a.default_value is not None:
            ctx.values[name] = _text(a.default_value, ctx)
        if a.choices and name in ctx.values and ctx.values[name] not in a.choices:
            raise ConfigError(f"launch argument {name}={ctx.values[name]!r} is not one of {a.choices}")
    missing = [n for n in args if n not in ctx.values]
    if missing:
        raise ConfigError(f"{file.name}: launch argument(s) {missing} have no default; pass {missing[0]}:=...")
    nodes = []
    for e in desc.entities:
        if isinstance(e, DeclareLaunchArgument):
            continue
        if not isinstance(e, Node):
            raise ConfigError(f"{file.name}: {type(e).__name__} is outside the supported launch subset")
        kw = e.kw
        cond = kw.get("condition")
        if cond is not None and not cond.evaluate(ctx):
            continue
        n = NodeLaunch(package=_text(kw["package"], ctx), executable=_text(kw["executable"], ctx),
                       name=_text(kw.get("name") or kw["executable"], ctx),
                       namespace=_text(kw.get("namespace") or "/", ctx) or "/",
                       arguments=[_text(a, ctx) for a in kw.get("arguments") or []],
                       shutdown_on_exit=isinstance(kw.get("on_exit"), Shutdown))
        if not n.namespace.startswith("/"):
            n.namespace = "/" + n.namespace
        for p in kw.get("parameters") or []:
            if isinstance(p, dict):
                for k, v in p.items():
                    n.params[_text(k, ctx)] = _param_value(v, ctx)
            else:
                n.params_files.append(_text(p, ctx))
        n.remaps = [(_text(a, ctx), _text(b, ctx)) for a, b in kw.get("remappings") or []]
        nodes.append(n)
    return Graph(file, args, ctx.values, nodes)


def _param_value(v: Any, ctx) -> Any:
    if isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, (list, tuple)) and not any(isinstance(x, _Subst) for x in v):
        return list(v)
    text = _text(v, ctx)
    try:  # launch_ros types substituted values by parsing them as YAML
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if parsed is None or isinstance(parsed, dict) else parsed


# ----- starting the nodes -------------------------------------------------------------------------
def find_executable(package: str, executable: str) -> list[str]:
    if os.environ.get("AMENT_PREFIX_PATH"):
        try:
            from ament_index_python.packages import PackageNotFoundError, get_package_prefix
            try:
                exe = Path(get_package_prefix(package)) / "lib" / package / executable
                if exe.is_file() and os.access(exe, os.X_OK):
                    return [str(exe)]
            except PackageNotFoundError:
                pass
        except ImportError:
            pass
    if package == PACKAGE and executable in EXECUTABLES:
        return [sys.executable, "-m", "policystack.ros", executable]
    raise ConfigError(f"executable {executable!r} of package {package!r} not found: build the workspace "
                      f"(colcon build) and source install/setup.bash")


def command(node: NodeLaunch, tmpdir: Path) -> list[str]:
    cmd = find_executable(node.package, node.executable) + list(node.arguments)
    cmd += ["--ros-args", "-r", f"__node:={node.name}", "-r", f"__ns:={node.namespace}"]
    for f in node.params_files:
        if not Path(f).is_file():
            raise ConfigError(f"params file {f} (node {node.name}) does not exist")
        cmd += ["--params-file", f]
    if node.params:
        p = tmpdir / f"{node.name}_params.yaml"
        p.write_text(yaml.safe_dump({"/**": {"ros__parameters": node.params}}))
        cmd += ["--params-file", str(p)]
    for a, b in node.remaps:
        cmd += ["-r", f"{a}:={b}"]
    return cmd


def _die_with_launcher() -> None:
    """preexec_fn: the kernel sends SIGINT to a node when this launcher dies, even by SIGKILL, so no node
    (least of all one commanding an arm) outlives its launcher; the node's SIGINT handler stops safely."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: fall back to the launcher's own clean-up
        pass


def run_graph(graph: Graph, env: Mapping[str, str] | None = None, sigterm_timeout: float = 5.0) -> int:
    """Start every node; a node with ``on_exit=Shutdown()`` ending (or SIGINT/SIGTERM here) stops the rest.

    Returns 0 when every node exited cleanly, else the first non-zero exit code.
    """
    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    procs: list[tuple[NodeLaunch, subprocess.Popen]] = []
    codes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="minilaunch_") as tmp:
        try:
            cmds = [(n, command(n, Path(tmp))) for n in graph.nodes]
            for n, cmd in cmds:
                log.info("[minilaunch] %s", " ".join(cmd))
                procs.append((n, subprocess.Popen(cmd, env={**os.environ, **(env or {})},
                                                  preexec_fn=_die_with_launcher)))
            shutting = False
            while True:
                alive = [(n, p) for n, p in procs if p.poll() is None]
                for n, p in procs:
                    if p.returncode is not None and n.name not in codes:
                        codes[n.name] = p.returncode
                        log.info("[minilaunch] %s exited with %d", n.name, p.returncode)
                        if n.shutdown_on_exit and not shutting:
                            shutting = True
                if not alive:
                    break
                if stop["signal"] is not None or shutting:
                    for _, p in alive:
                        p.send_signal(signal.SIGINT)
                    deadline = time.monotonic() + sigterm_timeout
                    for _, p in alive:
                        try:
                            p.wait(max(0.0, deadline - time.monotonic()))
                        except subprocess.TimeoutExpired:
                            p.terminate()
                    for _, p in alive:
                        try:
                            p.wait(2.0)
                        except subprocess.TimeoutExpired:
                            p.kill()
                            p.wait()
                    continue
                time.sleep(0.05)
        finally:
            for _, p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for s, h in old.items():
                signal.signal(s, h)
    bad = [c for c in codes.values() if c != 0]
    return bad[0] if bad else 0


def check_launch(path: str | Path, overrides: Mapping[str, str] | None = None) -> tuple[Graph, list[str]]:
    """Static check of a launch file: every package/executable exists, every params file exists and has a
    section for the node, and the node's dict parameters are not misspelt sections. Returns problems."""
    _, desc = load_description(path)
    args = [e for e in desc.entities if isinstance(e, DeclareLaunchArgument)]
    values = {a.name: "placeholder" for a in args if a.default_value is None}
    values.update(overrides or {})
    graph = resolve(path, values)
    problems: list[str] = []
    from policystack.ros.params import node_sections
    for n in graph.nodes:
        if n.package != PACKAGE:
            try:
                find_executable(n.package, n.executable)
            except ConfigError as e:
                problems.append(str(e))
        elif n.executable not in EXECUTABLES:
            problems.append(f"{n.name}: package {PACKAGE} has no executable {n.executable!r} "
                            f"(it has {', '.join(EXECUTABLES)})")
        for f in n.params_files:
            if not Path(f).is_file():
                problems.append(f"{n.name}: params file {f} does not exist")
                continue
            sections = node_sections(f)
            fq = f"{n.namespace.rstrip('/')}/{n.name}"
            if not any(s in (n.name, fq, fq.lstrip("/"), "/**") or (s.endswith("/**") and fq.startswith(s[:-2]))
                       for s in sections):
                problems.append(f"{n.name}: params file {Path(f).name} has no section for it (sections: {sections})")
    return graph, problems
