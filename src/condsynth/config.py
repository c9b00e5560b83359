"""Typed configuration: dataclasses, YAML files and dotted command-line overrides.

An experiment config has four sections::

    method: pix2pix          # which file under condsynth/models/ trains it
    model:  {...}            # that method's ModelConfig dataclass
    data:   {...}            # that method's DataConfig dataclass
    train:  {...}            # the engine's TrainConfig, shared by every method

Every key is checked against its dataclass: an unknown key, a value of the wrong type or a
missing required value is a :class:`~condsynth.errors.ConfigError` naming the dotted key.
Overrides use the same dotted names, e.g. ``train.steps=200 model.ngf=32``; values are parsed
as YAML scalars, so ``true``, ``1e-4`` and ``[1, 2]`` mean what they look like.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from condsynth.errors import ConfigError


# --------------------------------------------------------------------------- dict <-> dataclass

def _is_optional(tp) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _describe(tp) -> str:
    """How a config error names a type: 'an integer', 'a list of 2 integers', ..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            plural = {int: "integers", float: "numbers", str: "strings"}.get(args[0], "items")
            return f"a list of {len(args)} {plural}"
        return "a list"
    if origin is typing.Literal:
        return f"one of {list(args)}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value to the annotated type, or raise a ConfigError naming ``key``."""
    optional, inner = _is_optional(tp)
    if value is None:
        if optional or tp is Any or type(None) in typing.get_args(tp):
            return None
        raise ConfigError(f"config key '{key}' must not be null")
    tp = inner
    if tp is Any:
        return value
    if typing.get_origin(tp) in (Union, types.UnionType):
        # e.g. ``int | tuple[int, int]`` (a square size or [h, w]): the first type the value fits
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        for arm in arms:
            try:
                return _coerce(value, arm, key)
            except ConfigError:
                pass
        raise ConfigError(f"config key '{key}' must be {' or '.join(map(_describe, arms))}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {type(value).__name__}")
        return from_dict(tp, value, prefix=key + ".")
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:     # fixed length, e.g. tuple[int, int]
            if len(value) != len(args):
                raise ConfigError(f"config key '{key}' must be {_describe(tp)}, got {value!r}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"config key '{key}' must be one of {list(choices)}, got {value!r}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML 1.1 reads '1e-4' (no dot) as a string; accept it as a number here.
            try:
                return float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"config key '{key}' must be a number, got {value!r}") from None
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            return str(value)
        return value
    return value


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and checking types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}' (known keys here: {known})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"config key '{prefix}{name}' is required")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # __post_init__ validation
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}': {exc}") from None


def to_dict(obj) -> dict:
    """A plain, JSON/YAML-serialisable dict of a dataclass (tuples become lists)."""
    def convert(v):
        if dataclasses.is_dataclass(v):
            return {f.name: convert(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [convert(x) for x in v]
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        return v
    return convert(obj)


# --------------------------------------------------------------------------- files and overrides

def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config sections")
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides to a nested dict (in place, and returned)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like section.key=value")
        dotted, raw = item.split("=", 1)
        keys = [k for k in dotted.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"override '{item}' has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = data
        for k in keys[:-1]:
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{k}' is not a config section")
            node = child
        node[keys[-1]] = value
    return data
