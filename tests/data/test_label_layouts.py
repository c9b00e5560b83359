"""pix2pixHD's folders and Cityscapes' layout: readers, `data check`, and the one-line errors of bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from condsynth.data import cityscapes
from condsynth.data.translation import PairedDataConfig, PairedImageDataset
from condsynth.io.images import save_label_map
from hostile_helpers import assert_one_error, run_cli
from layout_fixtures import H, W, _maps, write_cityscapes, write_pix2pixhd

def test_cityscapes_table():
    assert [lab.id for lab in cityscapes.LABELS] == list(range(34))
    assert cityscapes.NAMES[7] == "road" and cityscapes.NAMES[26] == "car" and cityscapes.NAMES[33] == "bicycle"
    lut = cityscapes.train_id_lut()
    assert sorted(set(lut[:34].tolist()) - {255}) == list(range(19))     # the 19 training classes
    assert lut[0] == lut[29] == lut[250] == 255 and lut[7] == 0 and lut[33] == 18
    assert cityscapes.THING_IDS == (24, 25, 26, 27, 28, 29, 30, 31, 32, 33)


@pytest.mark.parametrize("layout", ["pix2pixhd", "cityscapes"])
def test_samples_keep_ids_and_geometry(tmp_path, layout):
    root = write_pix2pixhd(tmp_path / "d") if layout == "pix2pixhd" else write_cityscapes(tmp_path / "d")
    cfg = PairedDataConfig(root=str(root), instances=True, load_size=[H, W], crop_size=[8, 12], interp_b="nearest",
                           num_classes=35)
    ds = PairedImageDataset(cfg, "train", train=True)
    assert ds.layout == layout and len(ds) == (3 if layout == "pix2pixhd" else 2)
    assert ds.names[0] == ("f0" if layout == "pix2pixhd" else "aachen_000000_000019")
    for seed in range(4):
        item = ds[(1, seed)]
        assert set(item) == {"A", "B", "inst", "name"}
        a, b, inst = item["A"], item["B"], item["inst"]
        assert a.dtype == inst.dtype == torch.int64 and a.shape == inst.shape == (8, 12) and b.shape == (3, 8, 12)
        assert b.min() >= -1 and b.max() <= 1
        assert torch.equal(((b[0] + 1) * 127.5).round().long(), a * 7)        # same crop and flip
        assert torch.equal(torch.where(inst >= 1000, inst // 1000, inst), a)
    whole = PairedImageDataset(PairedDataConfig(root=str(root), preprocess="none"), "train", train=False)[0]
    np.testing.assert_array_equal(whole["A"].numpy(), _maps(0)[0])
    assert "inst" not in whole                                                 # instances not asked for


def test_pix2pixhd_rgb_mode_and_jpg_photos(tmp_path):
    write_pix2pixhd(tmp_path / "j", inst=False, ext="jpg")
    assert PairedImageDataset(PairedDataConfig(root=str(tmp_path / "j"), preprocess="none"), "test", False)[0][
        "A"].dtype == torch.int64
    for split in ("train_A", "train_B"):
        for i in range(2):
            (tmp_path / "rgb" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(tmp_path / "rgb" / split / f"{i}.png")
    item = PairedImageDataset(PairedDataConfig(root=str(tmp_path / "rgb"), preprocess="none"), "train", False)[1]
    assert item["A"].shape == (3, H, W) and item["A"].dtype == torch.float32


def test_data_check_pix2pixhd_through_the_cli(tmp_path, capsys):
    root = write_pix2pixhd(tmp_path / "hd")
    rc, out, err = run_cli(["data", "check", "pix2pixhd", root], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == f"pix2pixhd dataset at {root}: usable"
    assert "  train: 3 pairs (label maps + photos, with instance maps), 12x20 (h x w)" in lines
    assert "  test: 1 pair (label maps + photos, with instance maps), 12x20 (h x w)" in lines
    assert any(ln.strip().startswith("label range 0..33") for ln in lines)
    assert "    3 instance maps: 6 thing instances (id = class * 1000 + k), ids 0..26001" in lines


def test_data_check_cityscapes_names_classes(tmp_path, capsys):
    root = write_cityscapes(tmp_path / "cs")
    rc, out, err = run_cli(["data", "check", "cityscapes", root], capsys)
    assert rc == 0, err
    assert "  train: 2 pairs (label maps + photos, with instance maps), 12x20 (h x w)" in out
    assert "  val: 1 pair" in out
    total = H * W * 2
    car = sum(int((_maps(i)[0] == 26).sum()) for i in range(2))
    assert f"      id 26 car: {100 * car / total:.1f}% of pixels, in 2 of 2 maps" in out.splitlines()


def _expect(capsys, argv, *fragments):
    rc, _, err = run_cli(argv, capsys)
    return assert_one_error(rc, err, *fragments)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    root = write_cityscapes(tmp_path / "cs")
    labels = root / "gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png"
    # an id beyond data.num_classes, through the training entry point's reader
    bad = _maps(1)[0].copy()
    bad[:3, 5:9] = 37
    save_label_map(labels, bad)
    with pytest.raises(Exception, match=r"label 37 >= data.num_classes 35 at 12 pixels"):
        PairedImageDataset(PairedDataConfig(root=str(root), num_classes=35), "train", False)[1]
    # a colour-coded label map where ids are expected
    Image.fromarray(np.stack([bad * 3, bad, bad], -1)).save(labels)
    _expect(capsys, ["data", "check", "cityscapes", root], str(labels), "looks like a colour-coded label map",
            "condsynth data labels-from-colors")
    # an instance map of another size
    save_label_map(labels, _maps(1)[0])
    inst = root / "gtFine/train/aachen/aachen_000001_000019_gtFine_instanceIds.png"
    save_label_map(inst, np.zeros((H, W + 2), np.int32), bits=16)
    _expect(capsys, ["data", "check", "cityscapes", root], f"{inst}: size 22x12 differs from its label map {labels}",
            "(20x12)")
    inst.unlink()
    _expect(capsys, ["data", "check", "cityscapes", root], f"{inst}: instance map not found (1 of 2 missing)")
    # pix2pixhd: a label without its photo, a photo smaller than the crop, an unknown layout
    hd = write_pix2pixhd(tmp_path / "hd")
    (hd / "train_img/f2.png").unlink()
    _expect(capsys, ["data", "check", "pix2pixhd", hd], "train_img: no image for 'f2.png' (1 of 3 missing)")
    small = PairedImageDataset(PairedDataConfig(root=str(hd), preprocess="crop", crop_size=16), "test", True)
    with pytest.raises(Exception, match=r"f0.png: image is 20x12, smaller than data.crop_size 16"):
        small[(0, 0)]
    _expect(capsys, ["data", "check", "pix2pixhd", root], "not a pix2pixhd dataset")


def test_instances_true_without_maps_warns_once_and_goes_on(tmp_path):
    root = write_pix2pixhd(tmp_path / "hd", inst=False)
    cfg = PairedDataConfig(root=str(root), instances=True, preprocess="none")
    with pytest.warns(UserWarning, match=r"train_inst: not found, but data.instances is true") as record:
        ds = PairedImageDataset(cfg, "train", True)
        PairedImageDataset(cfg, "train", True)
    assert len([w for w in record if "data.instances" in str(w.message)]) == 1
    assert set(ds[0]) == {"A", "B", "name"}


def test_unpaired_check_names_the_empty_domain(tmp_path, capsys):
    for i in range(2):
        (tmp_path / "u/trainA").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / f"u/trainA/{i}.png")
    (tmp_path / "u/trainB").mkdir()
    _expect(capsys, ["data", "check", "unpaired", tmp_path / "u"], "trainB: no image files",
            "the folder is empty", "needs images in both trainA/ and trainB/")
