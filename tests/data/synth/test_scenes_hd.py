"""The scenes world's pix2pixHD/Cityscapes layouts, the winter style and the unpaired exports."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy import ndimage

from condsynth import testing
from condsynth.data.synth import scenes
from condsynth.data.synth.scenes import render_scene
from condsynth.data.translation import PairedDataConfig, PairedImageDataset
from condsynth.io.images import read_image, read_label_map
from hostile_helpers import run_cli

# sha256 of labels + photo + instances, computed before styles and the new layouts existed (WORLD_VERSION 1)
WORLD_V1 = [
    (0, 64, "87ca77d717823b0dd553a3098156e024"),
    ([3, 5], 48, "d204aee9003680d820417fab0adf4175"),
    (11, (32, 64), "67ca627b6e5204232dd4eca30301a7be"),
]


@pytest.mark.parametrize("seed, size, digest", WORLD_V1)
def test_default_images_are_bit_identical_to_world_version_1(seed, size, digest):
    for style in (None, "none"):
        s = render_scene(seed, size, style=style)
        h = hashlib.sha256()
        for field in ("labels", "photo", "instances"):
            h.update(np.ascontiguousarray(getattr(s, field)).tobytes())
        assert h.hexdigest()[:32] == digest


def test_winter_changes_only_sky_snow_and_trees():
    changed_classes = [scenes.SKY, scenes.SUN, scenes.CLOUD, scenes.GRASS, scenes.TREE, scenes.BUSH]
    for seed in range(6):
        summer, winter = render_scene([9, seed], 48), render_scene([9, seed], 48, style="winter")
        np.testing.assert_array_equal(summer.labels, winter.labels)
        np.testing.assert_array_equal(summer.instances, winter.instances)
        expected = np.isin(summer.labels, changed_classes)
        reach = ndimage.binary_dilation(expected, np.ones((3, 3), bool))     # the camera's 3x3 blur
        diff = np.abs(summer.photo.astype(int) - winter.photo.astype(int)).sum(-1)
        assert (diff[~reach] == 0).all()                                     # buildings, road, trunks: same bytes
        grass = summer.labels == scenes.GRASS
        assert winter.photo[grass].mean() > summer.photo[grass].mean() + 60   # snow is bright
        sky = summer.labels == scenes.SKY
        spread = winter.photo[sky].astype(float)
        assert np.abs(spread - spread.mean(-1, keepdims=True)).mean() < 6     # grey, not blue
    np.testing.assert_array_equal(render_scene(3, 32, "winter").photo, render_scene(3, 32, "winter").photo)


@pytest.mark.parametrize("layout", ["pix2pixhd", "cityscapes"])
def test_hd_layouts_read_back_as_the_world(tmp_path, layout, capsys):
    out = tmp_path / layout
    rc, _, err = run_cli(["data", "synth", "scenes", "--out", out, "--n", "4", "--size", "16x32", "--layout", layout,
                          "--val-fraction", "0", "--test-fraction", "0.25"], capsys)
    assert rc == 0, err
    rc, text, err = run_cli(["data", "check", "scenes", out], capsys)
    assert rc == 0, err
    assert "train: 3 pairs (label maps + photos, with instance maps), 16x32 (h x w)" in text
    assert "id 5 building" in text                                          # names from meta.json
    ds = PairedImageDataset(PairedDataConfig(root=str(out), instances=True, preprocess="none", num_classes=11),
                            "test", train=False)
    assert ds.layout == layout
    item = ds[0]
    scene = render_scene(scenes.scene_seed(0, 3), (16, 32))
    np.testing.assert_array_equal(item["A"].numpy(), scene.labels)
    np.testing.assert_array_equal(item["inst"].numpy(), scenes.instance_ids(scene)[0])
    np.testing.assert_array_equal(((item["B"] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy(), scene.photo)
    if layout == "cityscapes":
        assert item["name"] == "scenesville_000003_000019"
        assert (out / "gtFine/test/scenesville/scenesville_000003_000019_gtFine_color.png").is_file()


def test_unpaired_exports_have_disjoint_train_and_exact_test_counterparts(tmp_path, capsys):
    out = tmp_path / "sw"
    rc, _, err = run_cli(["data", "synth", "scenes", "--unpaired", "summer-winter", "--out", out, "--n", "5",
                          "--size", "16", "--test-fraction", "0.4", "--seed", "2"], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "testA", "testB", "testLabels", "trainA", "trainB"]
    assert len(list((out / "trainA").iterdir())) == 3 and len(list((out / "testB").iterdir())) == 2
    np.testing.assert_array_equal(read_image(out / "testA/00001.png"), render_scene([4, 1], 16).photo)
    np.testing.assert_array_equal(read_image(out / "testB/00001.png"), render_scene([4, 1], 16, "winter").photo)
    np.testing.assert_array_equal(read_label_map(out / "testLabels/00001.png"), render_scene([4, 1], 16).labels)
    np.testing.assert_array_equal(read_image(out / "trainB/00000.png"), render_scene([3, 0], 16, "winter").photo)
    train_a = {read_image(p).tobytes() for p in (out / "trainA").iterdir()}
    assert not train_a & {render_scene([3, i], 16).photo.tobytes() for i in range(3)}
    # the test helper keeps its signature and its files
    lp = testing.unpaired_scenes(tmp_path / "lp", n_train=2, n_test=1, seed=7)
    np.testing.assert_array_equal(read_image(lp / "trainA/00001.png"), render_scene([7, 1], 16).label_rgb)
    np.testing.assert_array_equal(read_image(lp / "testB/00000.png"), render_scene([9, 0], 16).photo)
