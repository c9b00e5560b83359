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


def test_non_square_crop_is_identical_on_both_sides(tmp_path):
    a = np.zeros((16, 32, 3), np.uint8)
    a[..., 0] = np.arange(32, dtype=np.uint8)[None, :] * 8      # columns distinguishable
    a[..., 1] = np.arange(16, dtype=np.uint8)[:, None] * 16     # rows too
    write(tmp_path / "d/train/A/x.png", a)
    write(tmp_path / "d/train/B/x.png", a)
    cfg = PairedDataConfig(root=str(tmp_path / "d"), load_size=[16, 32], crop_size=[8, 16], interp_a="nearest",
                           interp_b="nearest")
    assert cfg.crop_size == (8, 16)
    ds = PairedImageDataset(cfg, "train", train=True)
    corners, flips = set(), set()
    for seed in range(20):
        item = ds[(0, seed)]
        assert item["A"].shape == item["B"].shape == (3, 8, 16)      # a 2:1 crop
        assert torch.equal(item["A"], item["B"])                     # one jitter for A and B
        corners.add((float(item["A"][0, 0, 0]), float(item["A"][1, 0, 0])))
        flips.add(bool(item["A"][0, 0, 0] > item["A"][0, 0, -1]))
    assert len(corners) > 3 and flips == {True, False}
    val = PairedImageDataset(cfg, "train", train=False)[0]
    assert val["A"].shape == (3, 8, 16)                              # evaluation: whole image at crop size


def test_size_keys_from_yaml_overrides():
    from condsynth.engine.config import load_experiment_config
    from condsynth.errors import ConfigError
    cfg = load_experiment_config(None, ["method=pix2pix", "data.load_size=[36, 72]", "data.crop_size=[32, 64]"])
    assert cfg.data.load_size == (36, 72) and cfg.data.crop_size == (32, 64)
    assert load_experiment_config(None, ["method=pix2pix", "data.crop_size=128"]).data.crop_size == 128
    with pytest.raises(ConfigError, match=r"'data.crop_size' must be an integer or a list of 2 integers"):
        load_experiment_config(None, ["method=pix2pix", "data.crop_size=[1, 2, 3]"])
    with pytest.raises(ConfigError, match=r"crop_size \(32, 512\) is larger than load_size 286"):
        load_experiment_config(None, ["method=pix2pix", "data.crop_size=[32, 512]"])
    with pytest.raises(ConfigError, match="label_a and grayscale_a exclude each other"):
        load_experiment_config(None, ["method=pix2pix", "data.label_a=true", "data.grayscale_a=true"])


def _label_dataset(root, n=2, size=(12, 20), instances=True):
    """A/ palette label maps (id = column // 2), B/ photos whose red channel repeats the id, instance/ ids."""
    from condsynth.io.images import save_label_map
    h, w = size
    ids = np.repeat((np.arange(w) // 2)[None, :], h, 0).astype(np.uint8)
    photo = np.zeros((h, w, 3), np.uint8)
    photo[..., 0] = ids * 10
    inst = np.where(ids % 2 == 1, 26000 + ids.astype(np.int32), 7)     # 16-bit Cityscapes-style ids
    for i in range(n):
        save_label_map(root / f"train/A/{i}.png", ids, palette=np.random.default_rng(i).integers(0, 256, (16, 3)))
        write(root / f"train/B/{i}.png", photo)
        if instances:
            save_label_map(root / f"train/instance/{i}.png", inst)
    return ids, inst


def test_label_and_instance_maps_keep_their_ids_through_the_jitter(tmp_path):
    ids, inst = _label_dataset(tmp_path / "d")
    cfg = PairedDataConfig(root=str(tmp_path / "d"), label_a=True, instances=True, load_size=[12, 20],
                           crop_size=[8, 12], interp_b="nearest")
    ds = PairedImageDataset(cfg, "train", train=True)
    for seed in range(8):
        item = ds[(1, seed)]
        a, b, i = item["A"], item["B"], item["inst"]
        assert a.dtype == torch.int64 and a.shape == (8, 12) and i.dtype == torch.int64 and i.shape == (8, 12)
        red = ((b[0] + 1) * 127.5).round().long()
        assert torch.equal(red, a * 10)                              # same crop and flip as the photo
        assert torch.equal(i, torch.where(a % 2 == 1, 26000 + a, 7))  # instance ids intact, same geometry
        assert set(a.unique().tolist()) <= set(ids.ravel().tolist())
    # A load size that upsamples: nearest neighbour, so no new ids appear
    up = PairedImageDataset(PairedDataConfig(root=str(tmp_path / "d"), label_a=True, load_size=[30, 50],
                                             crop_size=[24, 40]), "train", train=True)[(0, 3)]["A"]
    assert set(up.unique().tolist()) <= set(ids.ravel().tolist())


def test_label_and_instance_errors(tmp_path):
    _label_dataset(tmp_path / "d", instances=False)
    with pytest.warns(UserWarning, match="instance: not found, but data.instances is true; continuing without"):
        ds = PairedImageDataset(PairedDataConfig(root=str(tmp_path / "d"), instances=True), "train", True)
    assert "inst" not in ds[0] and ds.instance_files == []
    from condsynth.io.images import save_label_map
    save_label_map(tmp_path / "d/train/instance/0.png", np.zeros((12, 20), np.int32))
    with pytest.raises(UserError, match="no instance map for '1.png'"):
        PairedImageDataset(PairedDataConfig(root=str(tmp_path / "d"), instances=True), "train", True)
    ds = PairedImageDataset(PairedDataConfig(root=str(tmp_path / "d"), label_b=True), "train", True)
    with pytest.raises(UserError, match="1.png: a colour image"):   # B holds photos, not label maps
        ds[1]
    write(tmp_path / "ab/train/x.png", np.zeros((8, 16, 3), np.uint8))
    with pytest.raises(UserError, match="label_a/label_b need the folders layout"):
        PairedImageDataset(PairedDataConfig(root=str(tmp_path / "ab"), label_a=True), "train", True)
    small = PairedImageDataset(PairedDataConfig(root=str(tmp_path / "d"), preprocess="crop", crop_size=16),
                               "train", True)
    with pytest.raises(UserError, match="0.png: image is 20x12, smaller than data.crop_size 16"):
        small[(0, 0)]


def test_unpaired_per_domain_settings(tmp_path):
    from condsynth.io.images import save_label_map
    for i in range(3):
        save_label_map(tmp_path / f"u/trainA/{i}.png", np.full((12, 16), i + 3, np.uint8))
        write(tmp_path / f"u/trainB/{i}.png", gradient(12, 16, 1))
    cfg = UnpairedDataConfig(root=str(tmp_path / "u"), label_a=True, grayscale_b=True, load_size=[12, 16],
                             crop_size=[8, 8])
    ds = UnpairedImageDataset(cfg, "train", True)
    item = ds[(2, 5)]
    assert item["A"].dtype == torch.int64 and item["A"].shape == (8, 8) and item["A"].unique().tolist() == [5]
    assert item["B"].dtype == torch.float32 and item["B"].shape == (1, 8, 8)
    rgb = UnpairedImageDataset(UnpairedDataConfig(root=str(tmp_path / "u"), load_size=[12, 16], crop_size=[8, 8]),
                               "train", True)[(2, 5)]
    assert rgb["B"].shape == (3, 8, 8) and rgb["A"].shape == (3, 8, 8)   # default: RGB on both sides
