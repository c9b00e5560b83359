"""pix2pix / CycleGAN dataset layouts and paired transforms."""

import numpy as np
import pytest
import torch
from PIL import Image

from condsynth.data.translation import (PairedDataConfig, PairedImageDataset, UnpairedDataConfig,
                                        UnpairedImageDataset)
from condsynth.errors import UserError


def write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def gradient(h, w, channel):
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., channel] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    return arr


def test_ab_and_folder_layouts_give_the_same_pairs(tmp_path):
    a, b = gradient(20, 20, 0), gradient(20, 20, 1)
    write(tmp_path / "ab/train/x.png", np.concatenate([a, b], 1))
    write(tmp_path / "fo/train/A/x.png", a)
    write(tmp_path / "fo/train/B/x.png", b)
    kw = dict(load_size=20, crop_size=16, flip=True)
    ab = PairedImageDataset(PairedDataConfig(root=str(tmp_path / "ab"), **kw), "train", train=True)
    fo = PairedImageDataset(PairedDataConfig(root=str(tmp_path / "fo"), **kw), "train", train=True)
    assert ab.layout == "ab" and fo.layout == "folders"
    for seed in range(6):
        x, y = ab[(0, seed)], fo[(0, seed)]
        assert torch.equal(x["A"], y["A"]) and torch.equal(x["B"], y["B"])
        assert x["A"].shape == (3, 16, 16)


def test_crop_and_flip_are_identical_on_both_sides(tmp_path):
    a = gradient(24, 24, 0)
    write(tmp_path / "d/train/A/x.png", a)
    write(tmp_path / "d/train/B/x.png", a)  # B == A, so any mismatch shows
    ds = PairedImageDataset(PairedDataConfig(root=str(tmp_path / "d"), load_size=24, crop_size=16),
                            "train", train=True)
    flips = set()
    for seed in range(12):
        item = ds[(0, seed)]
        assert torch.equal(item["A"], item["B"])
        flips.add(bool(item["A"][0, 0, 0] > item["A"][0, 0, -1]))  # red ramp reversed?
    assert flips == {True, False}  # both orientations occur
    assert torch.equal(ds[(0, 5)]["A"], ds[(0, 5)]["A"])  # a seed fixes the augmentation


def test_direction_and_errors(tmp_path):
    a, b = gradient(8, 8, 0), gradient(8, 8, 2)
    write(tmp_path / "ab/train/x.png", np.concatenate([a, b], 1))
    cfg = PairedDataConfig(root=str(tmp_path / "ab"), preprocess="none", direction="BtoA")
    item = PairedImageDataset(cfg, "train", train=False)[0]
    assert item["A"][2].max() > 0.9 and item["A"][0].max() < -0.9  # A now holds the blue (B) ramp
    with pytest.raises(UserError, match="val: split folder not found"):
        PairedImageDataset(cfg, "val", train=False)
    write(tmp_path / "fo/train/A/x.png", a)
    write(tmp_path / "fo/train/B/y.png", b)
    with pytest.raises(UserError, match="no image matching 'x.png'"):
        PairedImageDataset(PairedDataConfig(root=str(tmp_path / "fo")), "train", train=True)
    write(tmp_path / "odd/train/x.png", np.zeros((8, 9, 3), np.uint8))
    ds = PairedImageDataset(PairedDataConfig(root=str(tmp_path / "odd"), preprocess="none"), "train", train=False)
    with pytest.raises(UserError, match="x.png: width 9 is odd"):
        ds[0]


def test_unpaired_layout(tmp_path):
    for i in range(3):
        write(tmp_path / f"u/trainA/{i}.png", gradient(12, 12, 0))
    for i in range(5):
        write(tmp_path / f"u/trainB/{i}.png", gradient(12, 12, 1))
    ds = UnpairedImageDataset(UnpairedDataConfig(root=str(tmp_path / "u"), load_size=12, crop_size=8), "train", True)
    assert len(ds) == 5
    item = ds[(4, 1)]
    assert item["A"].shape == item["B"].shape == (3, 8, 8)
    with pytest.raises(UserError, match="trainA: folder not found"):
        UnpairedImageDataset(UnpairedDataConfig(root=str(tmp_path)), "train", True)
