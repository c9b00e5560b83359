"""`condsynth data labels-from-colors`: colour-coded maps -> class ids, instances from components."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from condsynth.data import colors
from condsynth.data.synth.scenes import PALETTE, render_scene
from condsynth.errors import UserError
from condsynth.io.images import read_instance_map, read_label_map
from hostile_helpers import expect_error, run_cli


def test_scenes_colours_round_trip_to_the_worlds_ids(tmp_path, capsys):
    scenes = [render_scene([4, i], (24, 40)) for i in range(3)]
    for i, s in enumerate(scenes):
        (tmp_path / "in").mkdir(exist_ok=True)
        Image.fromarray(s.label_rgb).save(tmp_path / "in" / f"s{i}.png")
    rc, out, err = run_cli(["data", "labels-from-colors", tmp_path / "in", tmp_path / "out", "--palette", "scenes",
                            "--instances-from-components", "building,tree"], capsys)
    assert rc == 0, err
    assert out.startswith("wrote 3 class-id maps (") and "instances in instance/" in out
    for i, s in enumerate(scenes):
        ids = read_label_map(tmp_path / "out" / f"s{i}.png")
        np.testing.assert_array_equal(ids, s.labels)
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / f"s{i}.png").convert("RGB")),
                                      s.label_rgb)                   # still shows the colours
        inst = read_instance_map(tmp_path / "out" / "instance" / f"s{i}.png")
        np.testing.assert_array_equal(np.where(inst >= 1000, inst // 1000, inst), s.labels)
    # a colour outside the palette: one line naming the file, the colour and its pixels; nothing written
    bad = scenes[0].label_rgb.copy()
    bad[:2, :3] = (1, 2, 3)
    Image.fromarray(bad).save(tmp_path / "in" / "s0.png")
    expect_error(["data", "labels-from-colors", tmp_path / "in", tmp_path / "new", "--palette", "scenes"], capsys,
                 "s0.png: colour (1, 2, 3) at 6 pixels is not in the scenes palette", "--nearest",
                 watch=[tmp_path])
    assert not (tmp_path / "new").exists()
    assert run_cli(["data", "labels-from-colors", tmp_path / "in", tmp_path / "new", "--palette", "scenes",
                    "--nearest"], capsys)[0] == 0
    snapped = read_label_map(tmp_path / "new" / "s0.png")
    want = scenes[0].labels.copy()
    want[:2, :3] = np.argmin(((PALETTE.astype(int) - (1, 2, 3)) ** 2).sum(1))
    np.testing.assert_array_equal(snapped, want)


def test_components_give_cityscapes_instance_ids():
    ids = np.array([
        [26, 26, 0, 26, 7],
        [26, 0, 0, 26, 7],
        [0, 0, 24, 0, 7],
        [26, 0, 24, 24, 7],
    ], np.uint8)
    inst = colors.instances_from_components(ids, [24, 26])
    np.testing.assert_array_equal(inst, [
        [26000, 26000, 0, 26001, 7],
        [26000, 0, 0, 26001, 7],
        [0, 0, 24000, 0, 7],
        [26002, 0, 24000, 24000, 7],     # 4-connectivity: the lone corner car is its own instance
    ])


def test_palette_files_and_cityscapes_shared_colours(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"classes": [{"id": 3, "name": "a", "color": [10, 20, 30]},
                                            {"id": 300, "name": "b", "color": [40, 50, 60]}]}))
    pal = colors.load_palette(str(meta))
    rgb = np.array([[[10, 20, 30], [40, 50, 60]]], np.uint8)
    np.testing.assert_array_equal(colors.colors_to_ids(rgb, pal), [[3, 300]])
    city = colors.load_palette("cityscapes")
    black_and_pole = np.array([[[0, 0, 0], [153, 153, 153], [0, 0, 142]]], np.uint8)
    np.testing.assert_array_equal(colors.colors_to_ids(black_and_pole, city), [[0, 17, 26]])   # lowest id wins
    assert colors.parse_classes("car, person,33", city) == [24, 26, 33]
    with pytest.raises(UserError, match="'carr' is no class of the cityscapes palette"):
        colors.parse_classes("carr", city)
    with pytest.raises(UserError, match="class id 0 cannot be a thing class"):
        colors.parse_classes("unlabeled", city)
    (tmp_path / "bad.json").write_text("[{\"id\": 1}]")
    with pytest.raises(UserError, match="bad.json: entry 0 needs an integer"):
        colors.load_palette(str(tmp_path / "bad.json"))
