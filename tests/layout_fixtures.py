"""Small datasets in the real layouts of pix2pixHD and Cityscapes, written by tests (12 x 20 pixels)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from condsynth.io.images import save_label_map

H, W = 12, 20


def _maps(i: int):
    """Class ids (0..33, Cityscapes' range), instance ids (cars as 26000 + k), a photo whose red channel is the id."""
    rng = np.random.default_rng(i)
    ids = rng.integers(0, 34, (H, W)).astype(np.uint8)
    ids[:, :4] = 26                                       # a car at the left ...
    ids[:, -4:] = 26                                      # ... and another at the right
    inst = ids.astype(np.int32)
    inst[:, :4], inst[:, -4:] = 26000, 26001
    photo = np.zeros((H, W, 3), np.uint8)
    photo[..., 0] = ids * 7
    return ids, inst, photo


def write_pix2pixhd(root, n=(3, 1), inst=True, ext="png"):
    for split, count in zip(("train", "test"), n):
        for i in range(count):
            ids, ins, photo = _maps(i)
            save_label_map(root / f"{split}_label/f{i}.png", ids)
            if inst:
                save_label_map(root / f"{split}_inst/f{i}.png", ins, bits=16)
            (root / f"{split}_img").mkdir(parents=True, exist_ok=True)
            Image.fromarray(photo).save(root / f"{split}_img/f{i}.{ext}", **({"quality": 100} if ext == "jpg" else {}))
    return root


def write_cityscapes(root, n=(2, 1), inst=True):
    for split, count in zip(("train", "val"), n):
        for i in range(count):
            ids, ins, photo = _maps(i)
            stem = f"aachen_{i:06d}_000019"
            (root / f"leftImg8bit/{split}/aachen").mkdir(parents=True, exist_ok=True)
            Image.fromarray(photo).save(root / f"leftImg8bit/{split}/aachen/{stem}_leftImg8bit.png")
            save_label_map(root / f"gtFine/{split}/aachen/{stem}_gtFine_labelIds.png", ids)
            if inst:
                save_label_map(root / f"gtFine/{split}/aachen/{stem}_gtFine_instanceIds.png", ins, bits=16)
    return root
