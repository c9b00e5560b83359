"""Typed configuration: dataclasses, YAML files and dotted command-line overrides.

An experiment config has four sections::

    method: pix2pix          # which file under condsynth/models/ trains it
    model:  {...}            # that method's ModelConfig dataclass
    data:   {...}            # that method's DataConfig dataclass
    train:  {...}            # the engine's TrainConfig, shared by every method

Every key is checked against its dataclass: an unknown key, a value of the wrong type or a
missing required value is a :class:`~condsynth.errors.ConfigError` naming the dotted key. Numbers
are checked against their meaning too: every float must be finite, every integer must fit in 64
bits, and a field declared with :func:`bounded` must lie in its range (each element, for a size
given as ``[h, w]``), e.g. ``model.ngf: must be between 1 and 4096, got 1000000000``.
Overrides use the same dotted names, e.g. ``train.steps=200 model.ngf=32``; values are parsed
as YAML scalars, so ``true``, ``1e-4`` and ``[1, 2]`` mean what they look like.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from condsynth.errors import ConfigError


# --------------------------------------------------------------------------- bounds

INT64_MAX = 2 ** 63 - 1
SEED_MAX = INT64_MAX                # seeds go to torch, numpy and Python: all take 0 .. 2^63-1


def max_threads() -> int:
    """A sane ceiling for thread and worker counts on this machine."""
    return 4 * (os.cpu_count() or 1)


def bounded(default=dataclasses.MISSING, min=None, max=None, *, factory=None):  # noqa: A002 - read best in configs
    """A dataclass field whose value :func:`from_dict` checks to lie in ``[min, max]`` (every item
    of a list or of an ``[h, w]`` size).

    Either bound may be a callable, evaluated when a config is checked (for bounds that depend
    on the machine, e.g. :func:`max_threads`)::

        ngf: int = bounded(64, 1, 4096)
        threads: int = bounded(0, 0, max_threads)    # 0 = torch's default
        milestones: list[int] = bounded(min=0, factory=list)
    """
    meta = {"min": min, "max": max}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def range_problem(value, min=None, max=None) -> str | None:  # noqa: A002
    """What is wrong with number ``value`` for the range ``[min, max]``, or None."""
    lo = min() if callable(min) else min
    hi = max() if callable(max) else max
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            return f"must be between {lo} and {hi}, got {value}"
        return f"must be at least {lo}, got {value}" if lo is not None else f"must be at most {hi}, got {value}"
    return None


def check_range(value, key: str, min=None, max=None):  # noqa: A002
    """``value`` if it lies in ``[min, max]``, else a ConfigError ``<key>: must be ...``."""
    problem = range_problem(value, min, max)
    if problem:
        raise ConfigError(f"{key}: {problem}")
    return value


def _check_numbers(value, key: str, lo=None, hi=None) -> None:
    """Every number in a coerced value (a scalar, or the items of a list/tuple) against the
    field's bounds; integers without bounds must fit in 64 bits, floats must be finite."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_numbers(item, f"{key}[{i}]", lo, hi)
    elif isinstance(value, int) and not isinstance(value, bool):
        check_range(value, key, -INT64_MAX - 1 if lo is None else lo, INT64_MAX if hi is None else hi)
    elif isinstance(value, float):
        check_range(value, key, lo, hi)


def check_device(name: str, key: str = "--device"):
    """The torch device ``name`` names ('auto', 'cpu', 'cuda', 'cuda:1', 'mps'), if it exists here;
    anything else is a ConfigError naming ``key``."""
    import torch

    name = str(name).strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{key}: unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}: '{name}', but no CUDA device is available here (use cpu or auto)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"{key}: '{name}', but this machine has {count} CUDA device(s) "
                              f"(cuda:0 to cuda:{count - 1})")
        return dev
    if dev.type == "mps" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return dev
    raise ConfigError(f"{key}: device '{name}' is not available here (use auto, cpu or cuda)")


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
            except (TypeError, ValueError, OverflowError):
                raise ConfigError(f"config key '{key}' must be a number, got {value!r}") from None
        try:
            return float(value)
        except OverflowError:                            # an int beyond the float range
            raise ConfigError(f"{key}: must be a finite number, got {value}") from None
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
    unknown = sorted((k for k in data if k not in fields), key=str)   # YAML keys may be numbers
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}' (known keys here: {known})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], prefix + name)
            _check_numbers(kwargs[name], prefix + name, f.metadata.get("min"), f.metadata.get("max"))
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
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a YAML text file (not UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
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
