"""Typed dataclass configs: command-line overrides, JSON round trips, saved beside every run.

Overrides are ``dotted.name=value`` strings; values are parsed by the field's declared type, never
with ``eval``. A polymorphic sub-config (e.g. a policy's) is chosen by a ``type`` field through a
registry of config classes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from policystack.errors import ConfigError

# name -> config class, for polymorphic fields (policies register their configs here)
_CONFIG_REGISTRY: dict[str, dict[str, type]] = {}
# kind -> callable(name) that imports the module defining that name on demand
_RESOLVERS: dict[str, Callable[[str], None]] = {}


def register_config(kind: str, name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        _CONFIG_REGISTRY.setdefault(kind, {})[name] = cls
        cls.type_name = name  # type: ignore[attr-defined]
        return cls
    return deco


def set_resolver(kind: str, fn: Callable[[str], None]) -> None:
    _RESOLVERS[kind] = fn


def config_class(kind: str, name: str) -> type:
    reg = _CONFIG_REGISTRY.setdefault(kind, {})
    if name not in reg and kind in _RESOLVERS:
        from policystack.errors import UnknownNameError
        try:
            _RESOLVERS[kind](name)
        except UnknownNameError as e:
            raise ConfigError(f"unknown {kind} type {name!r}: {e}") from e
    if name not in reg:
        raise ConfigError(f"unknown {kind} type {name!r}; known: {', '.join(sorted(reg)) or 'none'}")
    return reg[name]


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_scalar(tp: Any, text: str, name: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if text.lower() in ("none", "null"):
            return None
        for a in args:
            try:
                return _parse_scalar(a, text, name)
            except (ConfigError, ValueError):
                continue
        raise ConfigError(f"{name}: cannot parse {text!r} as {tp}")
    if origin in (list, tuple, Sequence):
        (inner, *_) = typing.get_args(tp) or (str,)
        parts = [p for p in text.strip("[]()").split(",") if p.strip()]
        vals = [_parse_scalar(inner, p.strip(), name) for p in parts]
        return tuple(vals) if origin is tuple else vals
    if origin is dict or tp is dict:
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{name}: expected a JSON object, got {text!r}") from e
    if typing.get_origin(tp) is typing.Literal:
        choices = typing.get_args(tp)
        if text not in [str(c) for c in choices]:
            raise ConfigError(f"{name}: {text!r} is not one of {choices}")
        return next(c for c in choices if str(c) == text)
    if tp is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected a boolean, got {text!r}")
    if tp in (int, float, str):
        try:
            return tp(text)
        except ValueError as e:
            raise ConfigError(f"{name}: expected {tp.__name__}, got {text!r}") from e
    if tp is Path:
        return Path(text)
    raise ConfigError(f"{name}: cannot set a field of type {tp} from the command line")


def _poly_kind(cls: type, fname: str) -> str | None:
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}
    return meta.get(fname, {}).get("registry")


def apply_overrides(cfg: Any, overrides: Sequence[str]) -> Any:
    """Return a copy of ``cfg`` with ``a.b.c=value`` overrides applied (validated by __post_init__)."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like name=value")
        path, text = item.split("=", 1)
        _set_path(type(cfg), data, path.split("."), text, path)
    return from_dict(type(cfg), data)


def _set_path(cls: type, data: dict, parts: list[str], text: str, full: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    head = parts[0]
    if head not in fields:
        raise ConfigError(f"unknown config field {full!r}; {cls.__name__} has: {', '.join(fields)}")
    tp = _hints(cls)[head]
    kind = _poly_kind(cls, head)
    if len(parts) == 1:
        if kind and head in data and isinstance(data[head], dict):
            raise ConfigError(f"{full!r} is a sub-config; set {full}.type=<name> or {full}.<field>=...")
        data[head] = _jsonable(_parse_scalar(tp, text, full))
        return
    sub = data.get(head)
    if kind:
        if parts[1] == "type":
            data[head] = to_dict(config_class(kind, text)())
            data[head]["type"] = text
            return
        sub_cls = config_class(kind, sub["type"])
    else:
        sub_cls = _strip_optional(tp)
        if not dataclasses.is_dataclass(sub_cls):
            raise ConfigError(f"{full!r}: {head} is not a sub-config")
        if sub is None:
            sub = to_dict(sub_cls())
    _set_path(sub_cls, sub, parts[1:], text, full)
    data[head] = sub


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _jsonable(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def to_dict(cfg: Any) -> dict:
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            d = to_dict(v)
            if f.metadata.get("registry"):
                d["type"] = type(v).type_name
            out[f.name] = d
        elif isinstance(v, (list, tuple)):
            out[f.name] = [to_dict(x) if dataclasses.is_dataclass(x) else _jsonable(x) for x in v]
        else:
            out[f.name] = _jsonable(v)
    return out


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Build ``cls`` from a dict, recursively; unknown keys are an error naming them."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields) - {"type"}
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}; known: {', '.join(fields)}")
    hints = _hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        v = data[name]
        tp = _strip_optional(hints[name])
        kind = f.metadata.get("registry")
        if kind and isinstance(v, Mapping):
            sub = dict(v)
            kwargs[name] = from_dict(config_class(kind, sub.pop("type")), sub)
        elif dataclasses.is_dataclass(tp) and isinstance(v, Mapping):
            kwargs[name] = from_dict(tp, v)
        elif typing.get_origin(tp) is tuple and v is not None:
            kwargs[name] = tuple(v)
        elif tp is Path and v is not None:
            kwargs[name] = Path(v)
        else:
            kwargs[name] = v
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{cls.__name__}: {e}") from e


def save_json(cfg: Any, path: str | os.PathLike) -> None:
    from policystack.checkpoint import atomic_write_text
    atomic_write_text(Path(path), json.dumps(to_dict(cfg), indent=2, sort_keys=False))


def load_json(cls: type, path: str | os.PathLike) -> Any:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} does not exist") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path} is not valid JSON: {e}") from e
    return from_dict(cls, data)


def describe(cfg: "type | object", prefix: str = "") -> list[str]:
    """One line per overridable field, for --help. ``cfg`` is a config class or instance; nested configs
    show the values their parent gives them (not the nested class's own defaults)."""
    inst = cfg() if isinstance(cfg, type) else cfg
    lines = []
    for f in dataclasses.fields(inst):
        v = getattr(inst, f.name)
        if dataclasses.is_dataclass(v) and not f.metadata.get("registry"):
            lines += describe(v, prefix + f.name + ".")
            continue
        doc = f.metadata.get("help", "")
        shown = f"{type(v).type_name} (choose with {prefix}{f.name}.type=...)" if f.metadata.get("registry") else repr(v)
        lines.append(f"  {prefix}{f.name}={shown}" + (f"   {doc}" if doc else ""))
    return lines
