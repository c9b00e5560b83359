"""Paired-image transforms: the same random resize / crop / flip applied to both sides.

pix2pix's jitter (§6.2): resize to 286x286, random crop back to 256x256, random horizontal flip.
Parameters are drawn once per sample from a NumPy generator and applied to A and B alike;
label maps use nearest-neighbour resampling so class colours and ids are never blended.

Sizes are an int (a square side) or ``(h, w)``: pix2pixHD and EDN train on 2:1 crops, e.g.
``crop=(256, 512)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from PIL import Image

Interp = Literal["bicubic", "bilinear", "nearest"]
_PIL = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}

Size = int | Sequence[int]          # a square side, or (h, w)


@dataclass
class JitterParams:
    crop_xy: tuple[int, int]
    flip: bool


def as_hw(size: Size | None) -> tuple[int, int] | None:
    """``size`` as ``(h, w)``: an int is a square side; None stays None."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def sample_params(rng: np.random.Generator, size_hw: tuple[int, int], crop: Size | None,
                  flip: bool) -> JitterParams:
    """Draw a crop position inside an image of ``size_hw`` and a flip (x first, then y, then flip)."""
    h, w = size_hw
    ch, cw = as_hw(crop) or (0, 0)
    if ch > h or cw > w:
        raise ValueError(f"crop {cw}x{ch} larger than image {w}x{h} (width x height)")
    x = int(rng.integers(0, w - cw + 1)) if crop else 0
    y = int(rng.integers(0, h - ch + 1)) if crop else 0
    return JitterParams((x, y), bool(flip and rng.random() < 0.5))


def resize(arr: np.ndarray, size: Size | None, interp: Interp = "bicubic") -> np.ndarray:
    """Resize an ``H x W x C`` array (uint8, or int32 ids with ``interp='nearest'``) to ``size``."""
    if size is None:
        return arr
    h, w = as_hw(size)
    if arr.shape[:2] == (h, w):
        return arr
    squeeze = arr.shape[2] == 1
    img = Image.fromarray(arr[..., 0] if squeeze else arr).resize((w, h), _PIL[interp])
    out = np.asarray(img)
    return out[..., None] if squeeze else out


def apply(arr: np.ndarray, params: JitterParams, crop: Size | None) -> np.ndarray:
    if crop:
        ch, cw = as_hw(crop)
        x, y = params.crop_xy
        arr = arr[y:y + ch, x:x + cw]
    if params.flip:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr)
