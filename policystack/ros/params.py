"""Read a ROS 2 params YAML (the launch files' files) without ROS, the way rcl resolves it for one node.

Sections are keyed by node name (``policy_node``), fully qualified name (``/robot/policy_node``) or
wildcards (``/**``); later, more specific sections win. Values are flattened to dotted names, as
``node.get_parameters_by_prefix`` sees them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from policystack.errors import ConfigError


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
    return out


def _matches(section: str, node: str, namespace: str) -> int:
    """0 = no match; higher = more specific."""
    fq = f"{namespace.rstrip('/')}/{node}" if namespace not in ("", "/") else f"/{node}"
    if section in ("/**", "**"):
        return 1
    if section.endswith("/**") and fq.startswith(section[:-2]):
        return 2
    if section in (node, fq, fq.lstrip("/")):
        return 3
    return 0


def load_params(path: str | Path, node: str, namespace: str = "/") -> dict[str, Any]:
    """The flattened ``ros__parameters`` that apply to ``node`` in ``path``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"params file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"params file {p} is not valid YAML: {e}") from e
    if not isinstance(data, Mapping):
        raise ConfigError(f"params file {p}: top level must map node names to ros__parameters")
    picked = []
    for section, body in data.items():
        score = _matches(str(section), node, namespace)
        if score and isinstance(body, Mapping):
            if "ros__parameters" not in body:
                raise ConfigError(f"params file {p}: section {section!r} has no 'ros__parameters'")
            picked.append((score, body["ros__parameters"] or {}))
    out: dict[str, Any] = {}
    for _, body in sorted(picked, key=lambda x: x[0]):
        out.update(flatten(body))
    return out


def node_sections(path: str | Path) -> list[str]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    return [str(k) for k in data]


def by_prefix(flat: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    pre = prefix.rstrip(".") + "."
    return {k[len(pre):]: v for k, v in flat.items() if k.startswith(pre)}
