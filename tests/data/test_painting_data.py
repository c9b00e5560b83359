"""Painting targets: dataset layouts, the mixture of sources, and flips from the sampler's seed
(data/painting.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from condsynth.data.painting import (
    CelebAMaskHQ,
    CUBTargets,
    ImageFolderTargets,
    PaintingDataConfig,
    build_painting_dataset,
)
from condsynth.errors import UserError


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_celebamask_hq_and_cub_layout_readers(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "celeba"
    for i in range(3):
        _write(root / "CelebA-HQ-img" / f"{i}.jpg", rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
        skin = np.zeros((40, 40), np.uint8)
        skin[10:20, 10:20] = 255
        hair = np.zeros((40, 40), np.uint8)
        hair[0:5] = 255
        _write(root / "CelebAMask-HQ-mask-anno" / "0" / f"{i:05d}_skin.png", skin)
        _write(root / "CelebAMask-HQ-mask-anno" / "0" / f"{i:05d}_hair.png", hair)
    ds = CelebAMaskHQ(root, "train", size=40, n_train=2)
    assert len(ds) == 2 and len(CelebAMaskHQ(root, "test", size=40, n_train=2)) == 1
    m = ds[0]["mask"][0]
    assert m[15, 15] == 1 and m[2, 20] == 1 and m[30, 30] == 0       # union of the parts

    cub = tmp_path / "cub"
    base = cub / "CUB_200_2011"
    names = ["001.Bird/a.jpg", "001.Bird/b.jpg", "002.Other/c.jpg"]
    (base).mkdir(parents=True)
    (base / "images.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    (base / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n")
    for n in names:
        _write(base / "images" / n, rng.integers(0, 255, (30, 30, 3), dtype=np.uint8))
        seg = np.zeros((30, 30), np.uint8)
        seg[5:15, 5:15] = 200
        seg[20:, 20:] = 100                                           # below 0.5: background
        _write((cub / "segmentations" / n).with_suffix(".png"), seg)
    tr = CUBTargets(cub, "train", size=30)
    assert len(tr) == 2 and len(CUBTargets(cub, "test", size=30)) == 1
    m = tr[0]["mask"][0]
    assert m[10, 10] == 1 and m[25, 25] == 0


def test_missing_dataset_layout_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="CelebA-HQ-img"):
        CelebAMaskHQ(tmp_path)
    with pytest.raises(UserError, match="unknown source"):
        build_painting_dataset(PaintingDataConfig(sources=["imagenet"]))


def test_flips_follow_the_sampler_seed(tmp_path):
    """The mirror is drawn from the seed the sampler hands out with the key: it differs between
    seeds (epochs) for the same image, and is the same for the same key."""
    _write(tmp_path / "a.png", np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3)
    ds = ImageFolderTargets(tmp_path, size=6, flip=True)
    plain = ImageFolderTargets(tmp_path, size=6)[0]["image"]
    flipped = [bool(torch.equal(ds[(0, s)]["image"], plain.flip(-1))) for s in range(16)]
    assert any(flipped) and not all(flipped)
    assert all(torch.equal(ds[(0, s)]["image"], ds[(0, s)]["image"]) for s in range(4))
    assert all(torch.equal(ds[0]["image"], ds[0]["image"]) for _ in range(3))   # a plain index: one flip


def test_mixture_hands_the_seed_to_its_sources(tmp_path):
    _write(tmp_path / "a.png", np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3)
    cfg = PaintingDataConfig(sources=["synthetic", "folder"], root=str(tmp_path), size=6, length=4)
    mix = build_painting_dataset(cfg, "train")
    folder = ImageFolderTargets(tmp_path, size=6, flip=True)
    for s in range(8):                                             # item 1 is the folder's image 0
        assert torch.equal(mix[(1, s)]["image"], folder[(0, s)]["image"])
