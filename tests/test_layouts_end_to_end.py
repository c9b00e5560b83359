"""The real datasets' layouts, end to end: a Cityscapes-layout fixture (gtFine labelIds + instanceIds,
leftImg8bit) through `data check`, a few pix2pixHD training steps and `translate` straight from the gtFine
folder; a horse2zebra-layout fixture (trainA/trainB/testA/testB of JPEGs of several sizes) through `data check`,
a few CycleGAN steps and `translate` both ways."""

from __future__ import annotations

import numpy as np
from PIL import Image

from condsynth.engine.config import build_experiment_config
from condsynth.engine.trainer import train
from condsynth.io.images import read_image
from hostile_helpers import run_cli
from layout_fixtures import write_cityscapes

TRAIN_FAST = {"steps": 2, "batch_size": 1, "log_every": 1, "checkpoint_every": 2, "image_every": 0,
              "progress": False, "threads": 1}


def test_cityscapes_fixture_checks_trains_and_translates(tmp_path, capsys):
    root = write_cityscapes(tmp_path / "cityscapes", n=(2, 1))
    code, out, err = run_cli(["data", "check", "cityscapes", str(root)], capsys)
    assert code == 0, err
    assert "train" in out and "val" in out
    raw = {"method": "pix2pixhd",
           "model": {"label_nc": 34, "ngf": 4, "n_down_global": 2, "n_blocks_global": 1, "nef": 2,
                     "n_down_encoder": 2, "ndf": 4, "num_d": 2, "d_layers": 1, "lambda_vgg": 0.0, "n_clusters": 2},
           "data": {"root": str(root), "layout": "cityscapes", "instances": True, "num_classes": 34,
                    "preprocess": "none", "load_size": [12, 20], "crop_size": [12, 20]},
           "train": {**TRAIN_FAST, "out_dir": str(tmp_path / "run")}}
    train(build_experiment_config(raw))
    city = root / "gtFine" / "val" / "aachen"
    labels = sorted(city.glob("*_gtFine_labelIds.png"))
    code, out, err = run_cli(["translate", "--checkpoint", str(tmp_path / "run"), *map(str, labels),
                              "--instances", str(city), "--style-from", str(root / "leftImg8bit" / "val" / "aachen"),
                              "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    produced = read_image(tmp_path / "out" / (labels[0].stem + ".png"))
    assert produced.shape == (12, 20, 3)


def _jpg(path, h, w, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, quality=90)


def test_horse2zebra_fixture_checks_trains_and_translates_both_ways(tmp_path, capsys):
    root = tmp_path / "horse2zebra"
    for i, (h, w) in enumerate([(20, 24), (24, 20), (22, 22)]):
        _jpg(root / "trainA" / f"n02381460_{i}.jpg", h, w, i)
        _jpg(root / "trainB" / f"n02391049_{i}.jpg", w, h, 10 + i)
    _jpg(root / "testA" / "n02381460_9.jpg", 20, 20, 20)
    _jpg(root / "testB" / "n02391049_9.jpg", 20, 20, 21)
    code, out, err = run_cli(["data", "check", "unpaired", str(root)], capsys)
    assert code == 0, err
    assert "trainA: 3 images" in out and "testB: 1 image" in out
    raw = {"method": "cyclegan", "model": {"ngf": 4, "ndf": 4, "n_blocks": 1, "d_layers": 1, "pool_size": 2},
           "data": {"root": str(root), "load_size": 18, "crop_size": 16},
           "train": {**TRAIN_FAST, "out_dir": str(tmp_path / "run")}}
    train(build_experiment_config(raw))
    for direction, folder in (("AtoB", "testA"), ("BtoA", "testB")):
        code, out, err = run_cli(["translate", "--checkpoint", str(tmp_path / "run"), str(root / folder),
                                  "--direction", direction, "--out", str(tmp_path / direction)], capsys)
        assert code == 0, err
        assert read_image(next((tmp_path / direction).glob("*.png"))).shape == (20, 20, 3)
