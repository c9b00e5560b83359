"""Label and instance maps keep their ids; one input normaliser for every pipeline."""

import numpy as np
import pytest
import torch
from PIL import Image

from condsynth.errors import UserError
from condsynth.io.images import (default_palette, luma, read_image, read_instance_map, read_label_map,
                                 save_label_map, to_rgb_uint8)


def test_palette_label_map_round_trips_indices_not_colours(tmp_path):
    ids = np.random.default_rng(0).integers(0, 19, (12, 20)).astype(np.uint8)
    palette = np.random.default_rng(1).integers(0, 256, (19, 3)).astype(np.uint8)
    path = save_label_map(tmp_path / "lab.png", ids, palette=palette)
    with Image.open(path) as img:
        assert img.mode == "P"                                  # an 8-bit palette PNG
    back = read_label_map(path)
    assert back.dtype == np.uint8 and back.shape == (12, 20)
    np.testing.assert_array_equal(back, ids)                    # the indices, not the RGB colours
    np.testing.assert_array_equal(read_image(path), palette[ids])   # viewers (and read_image) see colours
    assert [p.name for p in tmp_path.iterdir()] == ["lab.png"]      # written atomically


def test_instance_map_16bit_round_trips_ids(tmp_path):
    # Cityscapes instanceIds: class * 1000 + k for things (26 = car), the class id for stuff.
    inst = np.full((10, 16), 7, np.int64)
    inst[2:5, 3:9] = 26000
    inst[6:9, 1:4] = 26001
    inst[0, :] = 33012
    path = save_label_map(tmp_path / "x_instanceIds.png", inst)
    with Image.open(path) as img:
        assert img.mode.startswith("I;16")                      # 16-bit grey
    back = read_instance_map(path)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, inst)
    np.testing.assert_array_equal(read_label_map(path), inst)   # no 8-bit scaling either
    assert read_image(path).max() < 255                         # what read_image would have made of it


def test_external_files_keep_their_values(tmp_path):
    """Maps written by other tools: a PIL palette PNG, 8- and 16-bit grey, a 32-bit TIFF."""
    idx = (np.arange(48).reshape(6, 8) % 5).astype(np.uint8)
    p = Image.fromarray(idx)
    p.putpalette([200, 10, 10, 10, 200, 10, 10, 10, 200, 255, 255, 0, 0, 0, 0])
    p.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_label_map(tmp_path / "p.png"), idx)
    Image.fromarray(idx * 50).save(tmp_path / "l.png")
    np.testing.assert_array_equal(read_label_map(tmp_path / "l.png"), idx * 50)
    wide = (np.arange(48).reshape(6, 8) * 1300).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")
    np.testing.assert_array_equal(read_label_map(tmp_path / "w.png"), wide)
    big = np.arange(48, dtype=np.int64).reshape(6, 8) * 100_000
    save_label_map(tmp_path / "big.tif", big)
    np.testing.assert_array_equal(read_instance_map(tmp_path / "big.tif"), big)
    with pytest.raises(UserError, match="big.png: ids of 65536 and more need 32 bits; save as .tif"):
        save_label_map(tmp_path / "big.png", big)


def test_colour_images_and_bad_files_are_refused_with_the_path(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(UserError, match=r"rgb.png: a colour image \(RGB\), not a label map"):
        read_label_map(tmp_path / "rgb.png")
    with pytest.raises(UserError, match=r"rgb.png: a colour image \(RGB\), not an instance map"):
        read_instance_map(tmp_path / "rgb.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UserError, match="empty.png: file is empty"):
        read_label_map(tmp_path / "empty.png")
    with pytest.raises(UserError, match="nope.png: file not found"):
        read_instance_map(tmp_path / "nope.png")
    data = save_label_map(tmp_path / "ok.png", np.random.default_rng(0).integers(0, 9, (64, 64))).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cut.png: corrupt or truncated"):   # read_image's messages
        read_label_map(tmp_path / "cut.png")
    with pytest.raises(UserError, match="lossless"):
        save_label_map(tmp_path / "x.jpg", np.zeros((2, 2), np.uint8))
    with pytest.raises(UserError, match=">= 0"):
        save_label_map(tmp_path / "neg.png", -np.ones((2, 2), np.int32))


def test_default_palette_is_distinct():
    pal = default_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert len({tuple(c) for c in pal}) == 256 and tuple(pal[0]) == (0, 0, 0) and tuple(pal[1]) == (128, 0, 0)


def test_to_rgb_uint8_on_every_input_kind(tmp_path):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    f = rgb.astype(np.float32) / 255.0
    grey = rgb[..., 0]
    cases = {
        "path": (tmp_path / "x.png", rgb),
        "str path": (str(tmp_path / "x.png"), rgb),
        "PIL": (Image.fromarray(rgb), rgb),
        "HxWx3 uint8": (rgb, rgb),
        "HxWx4 uint8": (np.concatenate([rgb, np.zeros((5, 7, 1), np.uint8)], 2), rgb),   # alpha dropped
        "HxW uint8": (grey, np.repeat(grey[..., None], 3, 2)),
        "HxWx1 uint8": (grey[..., None], np.repeat(grey[..., None], 3, 2)),
        "HxWx3 float": (f, rgb),
        "HxWx3 float64": (f.astype(np.float64), rgb),
        "CxHxW tensor": (torch.from_numpy(f).permute(2, 0, 1), rgb),
        "1xCxHxW tensor": (torch.from_numpy(f).permute(2, 0, 1)[None], rgb),
        "1xHxW tensor": (torch.from_numpy(f[..., :1]).permute(2, 0, 1), np.repeat(rgb[..., :1], 3, 2)),
        "uint8 tensor": (torch.from_numpy(rgb).permute(2, 0, 1), rgb),
    }
    for name, (value, expected) in cases.items():
        out = to_rgb_uint8(value)
        assert out.dtype == np.uint8 and out.shape == (5, 7, 3), name
        np.testing.assert_array_equal(out, expected, err_msg=name)
    assert to_rgb_uint8(np.full((2, 2), 2.0)).max() == 255         # floats clip to [0, 1]
    assert to_rgb_uint8(np.ones((2, 2), bool)).min() == 255
    for bad in (np.zeros((5, 7, 2), np.uint8), torch.zeros(2, 3, 4, 4), torch.zeros(1, 1, 3, 4, 4),
                np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(UserError):
            to_rgb_uint8(bad)


def test_luma_is_bt601():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    y = luma(rgb)
    assert y.shape == (1, 4, 1) and y.dtype == np.uint8
    assert y.ravel().tolist() == [76, 150, 29, 255]
    np.testing.assert_allclose(luma(rgb.astype(np.float32) / 255).ravel(), [0.299, 0.587, 0.114, 1.0], atol=1e-6)


def test_bits_can_be_asked_for(tmp_path):
    small = np.array([[0, 3], [7, 1]])
    path = save_label_map(tmp_path / "inst.png", small, bits=16)       # instance maps: always 16-bit
    with Image.open(path) as img:
        assert img.mode.startswith("I;16")
    np.testing.assert_array_equal(read_instance_map(path), small)
    with pytest.raises(UserError, match="do not fit 8 bits"):
        save_label_map(tmp_path / "x.png", small * 100, bits=8)
