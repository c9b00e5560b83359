"""A synthetic world of painting targets (thesis Sec. 6.4.1 uses CelebA-HQ and CUB, whose masks
cannot be shipped): objects with fine detail on smooth, textured backgrounds, with exact
foreground masks, generated from ``(seed, index)``. The bundled agent trained on it; the ablation
(bench/bench_painting_ablation.py) measures foreground and background errors on it.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from condsynth.data import split_key
from condsynth.data.painting import random_flip, target_item


def _smooth_noise(rng, size, cells):
    g = rng.random((cells, cells, 3)).astype(np.float32)
    return np.asarray(Image.fromarray((g * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC),
                      np.float32) / 255.0


def synthetic_scene(index: int, seed: int = 0, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """One procedural target: a textured background and 1-2 foreground objects with detail.

    Returns ``(image uint8 HxWx3, mask bool HxW)``. The foreground objects are ellipses or
    polygons with a bright rim, an inner pattern (stripes or spots) and small dark "eyes", so
    that they carry the fine detail that an attention-aware painter should spend strokes on,
    while the background is low-frequency colour.
    """
    rng = np.random.default_rng([seed, index, 1234])
    base = rng.random(3) * 0.8 + 0.1
    bg = 0.6 * base + 0.4 * _smooth_noise(rng, size, int(rng.integers(2, 5)))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = bg.copy()
    mask = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(1, 3))):
        cx, cy = rng.uniform(0.25, 0.75, 2)
        ax, ay = rng.uniform(0.12, 0.3, 2)
        th = rng.uniform(0, np.pi)
        u = ((xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)) / ax
        v = (-(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)) / ay
        if rng.random() < 0.5:
            r = u * u + v * v                               # ellipse
        else:
            r = np.maximum(np.abs(u), np.abs(v)) ** 2       # rotated rectangle
        obj = r <= 1.0
        col = rng.random(3)
        col2 = rng.random(3)
        if rng.random() < 0.5:
            pat = (np.sin(u * rng.uniform(6, 14)) > 0)[..., None]           # stripes
        else:
            pat = (np.sin(u * 9) * np.sin(v * 9) > 0.3)[..., None]          # spots
        tex = np.where(pat, col, col2)
        rim = (r > 0.75)[..., None]
        tex = np.where(rim, np.clip(col * 0.4 + 0.6, 0, 1), tex)
        for s in (-0.35, 0.35):                                              # two dark "eyes"
            ex, ey = cx + s * ax * np.cos(th), cy + s * ax * np.sin(th)
            eye = ((xx - ex) ** 2 + (yy - ey) ** 2) < (0.04 * min(ax, ay) / 0.2) ** 2
            tex = np.where(eye[..., None], 0.05, tex)
        img = np.where(obj[..., None], tex, img)
        mask |= obj
    img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1)
    return (img * 255 + 0.5).astype(np.uint8), mask


class SyntheticPaintWorld(torch.utils.data.Dataset):
    """Item ``i`` is :func:`synthetic_scene` ``(i, seed)`` as a painting target with its exact mask;
    ``flip`` mirrors it with probability 1/2, drawn from the sampler's seed."""

    def __init__(self, length: int = 100_000, seed: int = 0, size: int = 128, flip: bool = False):
        self.length, self.seed, self.size, self.flip = length, seed, size, flip

    def __len__(self):
        return self.length

    def __getitem__(self, key):
        i, sample_seed = split_key(key)
        img, m = synthetic_scene(i, self.seed, self.size)
        return target_item(img, m, self.size, random_flip(self.flip, i, sample_seed))
