"""Nested training state (optimizers, schedulers, RNGs) as safetensors + JSON, with no pickle.

``pack`` walks a nested structure of dicts, lists, tuples, numbers, strings and tensors; each
tensor is replaced by ``{"__tensor__": key}`` and collected into a flat dict for safetensors. The
remaining skeleton is JSON. ``unpack`` reverses it. Optimizer state dicts use integer keys, so
dict keys are stored with their type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from condsynth.errors import CheckpointError
from condsynth.io.atomic import atomic_path

_TENSOR = "__tensor__"
_TUPLE = "__tuple__"
_DICT = "__dict__"
_NDARRAY = "__ndarray__"


def pack(obj: Any, prefix: str = "s") -> tuple[Any, dict[str, torch.Tensor]]:
    tensors: dict[str, torch.Tensor] = {}

    def walk(x, path):
        if isinstance(x, torch.Tensor):
            tensors[path] = x.detach().cpu().contiguous().clone()
            return {_TENSOR: path}
        if isinstance(x, np.ndarray):
            tensors[path] = torch.from_numpy(np.ascontiguousarray(x)).clone()
            return {_NDARRAY: path}
        if isinstance(x, dict):
            items = [[type(k).__name__, k, walk(v, f"{path}.{k}")] for k, v in x.items()]
            return {_DICT: items}
        if isinstance(x, tuple):
            return {_TUPLE: [walk(v, f"{path}.{i}") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(x)]
        if isinstance(x, (bool, int, float, str)) or x is None:
            return x
        if isinstance(x, (np.integer, np.floating)):
            return x.item()
        raise TypeError(f"cannot store object of type {type(x).__name__} at '{path}' in a checkpoint")

    return walk(obj, prefix), tensors


def unpack(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    key_types = {"int": int, "str": str, "float": float, "bool": bool}

    def walk(x):
        if isinstance(x, dict):
            if _TENSOR in x:
                return tensors[x[_TENSOR]]
            if _NDARRAY in x:
                return tensors[x[_NDARRAY]].numpy()
            if _TUPLE in x:
                return tuple(walk(v) for v in x[_TUPLE])
            if _DICT in x:
                return {key_types.get(t, str)(k) if t != "NoneType" else None: walk(v) for t, k, v in x[_DICT]}
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    return walk(skeleton)


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """safetensors file, written atomically; tensors that share memory are copied apart."""
    clean = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata=metadata)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise CheckpointError(f"{path}: not a valid safetensors file ({type(exc).__name__}: {exc})") from None


def save_state(stem: str | Path, obj: Any) -> None:
    """Write ``stem.safetensors`` and ``stem.json`` describing any nested state."""
    stem = Path(stem)
    skeleton, tensors = pack(obj)
    save_tensors(stem.with_suffix(".safetensors"), tensors)
    with atomic_path(stem.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(skeleton), encoding="utf-8")


def load_state(stem: str | Path) -> Any:
    stem = Path(stem)
    js = stem.with_suffix(".json")
    if not js.is_file():
        raise CheckpointError(f"{js}: file not found")
    try:
        skeleton = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:    # ValueError: bad JSON, not UTF-8
        raise CheckpointError(f"{js}: not valid JSON ({exc})") from None
    tensors_file = stem.with_suffix(".safetensors")
    tensors = load_tensors(tensors_file)
    try:
        return unpack(skeleton, tensors)
    except KeyError as exc:
        raise CheckpointError(f"{js}: names tensor {exc} that {tensors_file.name} does not hold") from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{js}: not a condsynth training state ({type(exc).__name__}: {exc})") from None
