"""Paired-image transforms: the same random resize / crop / flip applied to both sides.

pix2pix's jitter (§6.2): resize to 286x286, random crop back to 256x256, random horizontal flip.
Parameters are drawn once per sample from a NumPy generator and applied to A and B alike;
label maps use nearest-neighbour resampling so class colours are never blended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

Interp = Literal["bicubic", "bilinear", "nearest"]
_PIL = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}


@dataclass
class JitterParams:
    crop_xy: tuple[int, int]
    flip: bool


def sample_params(rng: np.random.Generator, size_hw: tuple[int, int], crop: int | None,
                  flip: bool) -> JitterParams:
    h, w = size_hw
    if crop is not None and (crop > h or crop > w):
        raise ValueError(f"crop {crop} larger than image {w}x{h}")
    x = int(rng.integers(0, w - crop + 1)) if crop else 0
    y = int(rng.integers(0, h - crop + 1)) if crop else 0
    return JitterParams((x, y), bool(flip and rng.random() < 0.5))


def resize(arr: np.ndarray, size: int | tuple[int, int] | None, interp: Interp = "bicubic") -> np.ndarray:
    """Resize an ``H x W x C`` uint8 array to ``size`` (square int or ``(h, w)``)."""
    if size is None:
        return arr
    h, w = (size, size) if isinstance(size, int) else size
    if arr.shape[:2] == (h, w):
        return arr
    squeeze = arr.shape[2] == 1
    img = Image.fromarray(arr[..., 0] if squeeze else arr).resize((w, h), _PIL[interp])
    out = np.asarray(img)
    return out[..., None] if squeeze else out


def apply(arr: np.ndarray, params: JitterParams, crop: int | None) -> np.ndarray:
    if crop:
        x, y = params.crop_xy
        arr = arr[y:y + crop, x:x + crop]
    if params.flip:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr)
