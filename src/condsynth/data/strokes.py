"""The neural renderer's training data: random strokes and their rasterised alpha maps.

Stroke ``i`` of the stream of seed ``s`` has the shape parameters ``default_rng([s, i]).random(10)``
(see :mod:`condsynth.data.synth.strokes` for their meaning). :class:`StrokeDataset` rasterises
them on the fly; :class:`StrokeBank` reads a file that ``condsynth data strokes``
(:func:`write_stroke_bank`) rasterised once, which frees the CPU core a data worker would need.
Both return ``(params 10, alpha S x S)`` for a key ``index`` or ``(index, seed)``; the stream is
fixed, so the sampler's seed is not used.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from condsynth.config import bounded
from condsynth.data import split_key
from condsynth.data.synth.strokes import SHAPE_PARAMS, rasterize_stroke
from condsynth.errors import ConfigError
from condsynth.io.state import save_tensors

BANK_FORMAT = "condsynth-stroke-bank-1"
_CHUNK = 2000             # strokes per writer job


@dataclass
class RendererDataConfig:
    length: int = bounded(100_000, 1, 1000000000000)            # strokes per "epoch"; item i is drawn from seed (seed, i)
    seed: int = 0
    heldout_seed: int = 1
    # A stroke bank written by `condsynth data strokes` (the first N items of the same (seed, i)
    # stream, rasterised once). Training then reads it instead of rasterising on the fly, which
    # frees the CPU core a data worker would need. None: rasterise on the fly.
    bank: Optional[str] = None


class StrokeDataset(torch.utils.data.Dataset):
    """Random strokes, item ``i`` drawn deterministically from ``(seed, i)``: (params, alpha)."""

    def __init__(self, length: int, seed: int, size: int = 128, relative_p1: bool = False):
        self.length, self.seed, self.size, self.relative_p1 = length, seed, size, relative_p1

    def __len__(self):
        return self.length

    def params(self, index: int) -> np.ndarray:
        return np.random.default_rng([self.seed, index]).random(SHAPE_PARAMS).astype(np.float32)

    def __getitem__(self, key):
        p = self.params(split_key(key)[0])
        return torch.from_numpy(p), torch.from_numpy(rasterize_stroke(p, self.size, self.relative_p1))


class StrokeBank(torch.utils.data.Dataset):
    """Pre-rasterised strokes from ``condsynth data strokes``: (params, alpha), like :class:`StrokeDataset`.

    The file is safetensors: ``params`` (N x 10 float32) and ``alpha`` (N x S x S uint8, alpha * 255
    rounded), with ``seed``, ``size`` and ``relative_p1`` in its metadata. Quantising alpha to 8
    bits costs at most (0.5/255)^2 = 4e-6 MSE, far below the renderer's error.
    """

    def __init__(self, path: str, size: int = 128, relative_p1: bool = False):
        if not Path(path).is_file():
            raise ConfigError(f"{path}: stroke bank not found (write it with `condsynth data strokes "
                              f"--out {path} --n N`)")
        try:
            with safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
                self.params, self.alpha = f.get_tensor("params"), f.get_tensor("alpha")
        except (SafetensorError, OSError, KeyError) as exc:
            raise ConfigError(f"{path}: not a stroke bank ({exc})") from None
        if meta.get("size") != str(size) or (meta.get("relative_p1") == "true") != relative_p1:
            raise ConfigError(f"{path}: strokes of size {meta.get('size')} relative_p1="
                              f"{meta.get('relative_p1')}, the renderer wants {size} / {relative_p1}")
        if self.alpha.dtype != torch.uint8 or self.params.shape[0] != self.alpha.shape[0]:
            raise ConfigError(f"{path}: malformed stroke bank (params/alpha shapes or dtype)")

    def __len__(self):
        return self.params.shape[0]

    def __getitem__(self, key):
        index = split_key(key)[0]
        return self.params[index], self.alpha[index].float() / 255.0


def _bank_chunk(args):
    seed, start, stop, size, relative_p1 = args
    ds = StrokeDataset(stop, seed, size, relative_p1)
    params = np.stack([ds.params(i) for i in range(start, stop)])
    alpha = np.stack([np.round(rasterize_stroke(q, size, relative_p1) * 255).astype(np.uint8) for q in params])
    return params, alpha


def write_stroke_bank(out, n: int, seed: int = 0, size: int = 128, relative_p1: bool = False,
                      workers: int = 1) -> dict:
    """Rasterise items ``0..n-1`` of the ``(seed, i)`` stroke stream into a safetensors bank (atomic)."""
    jobs = [(seed, a, min(a + _CHUNK, n), size, relative_p1) for a in range(0, n, _CHUNK)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_bank_chunk, jobs))
    else:
        parts = [_bank_chunk(j) for j in jobs]
    params = np.concatenate([p for p, _ in parts]) if parts else np.zeros((0, SHAPE_PARAMS), np.float32)
    alpha = np.concatenate([a for _, a in parts]) if parts else np.zeros((0, size, size), np.uint8)
    meta = {"format": BANK_FORMAT, "seed": str(seed), "size": str(size),
            "relative_p1": "true" if relative_p1 else "false", "n": str(n)}
    save_tensors(out, {"params": torch.from_numpy(params), "alpha": torch.from_numpy(alpha)}, metadata=meta)
    return meta
