"""``condsynth eval segmentation``: a tiny segmenter trained one step scores label maps and photos written here."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from condsynth import testing
from condsynth.cli.main import main
from condsynth.data.synth.scenes import PALETTE
from condsynth.engine.config import build_experiment_config
from condsynth.engine.trainer import train
from condsynth.io.checkpoint import sha256_file
from condsynth.io.images import read_label_map


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(tiny segmenter run, images dir, id labels dir, colour labels dir)."""
    work = tmp_path_factory.mktemp("seg")
    raw = testing.tiny_config("segmenter", work, work / "run", steps=1, checkpoint_every=1, eval_every=1,
                              eval_batches=1)
    train(build_experiment_config(raw))
    data = testing.scenes_ids_dataset(work)
    images, labels, colours = work / "images", work / "labels", work / "colours"
    shutil.copytree(data / "test" / "B", images)
    shutil.copytree(data / "test" / "A", labels)
    colours.mkdir()
    for f in sorted(labels.iterdir()):
        Image.fromarray(PALETTE[read_label_map(f)]).save(colours / f.name)
    return work / "run", images, labels, colours


def _eval(run, images, labels, out, *extra):
    return main(["eval", "segmentation", "--segmenter", str(run), "--images", str(images), "--labels", str(labels),
                 "--out", str(out), *extra])


def test_record_names_the_segmenter_and_the_protocol(world, tmp_path, capsys):
    run, images, labels, colours = world
    assert _eval(run, images, labels, tmp_path / "seg.json") == 0
    assert "segmentation: miou = " in capsys.readouterr().out
    rec = json.loads((tmp_path / "seg.json").read_text())
    assert rec["metric"] == "segmentation" and rec["num_samples"] == len(list(images.iterdir()))
    assert set(rec["values"]) == {"miou", "mean_class_accuracy", "pixel_accuracy"}
    assert 0.0 <= rec["values"]["pixel_accuracy"] <= 1.0
    seg = rec["extra"]["segmenter"]
    assert seg["method"] == "segmenter" and seg["sha256"] == sha256_file(seg["weights_file"])
    assert seg["held_out"]["step"] == 1 and "miou" in seg["held_out"]          # from the run's own eval
    assert rec["resolution"] == [[16, 16]] and rec["resize"] is None
    assert sum(map(sum, rec["extra"]["confusion_matrix"])) == rec["extra"]["pixels"] == 16 * 16 * rec["num_samples"]
    # colour-coded labels decoded with the palette give the same numbers
    assert _eval(run, images, colours, tmp_path / "c.json", "--label-format", "colors", "--palette", "scenes") == 0
    assert json.loads((tmp_path / "c.json").read_text())["values"] == rec["values"]


def test_bad_inputs_are_one_line_errors(world, tmp_path, capsys):
    run, images, labels, colours = world

    def error(*args) -> str:
        assert _eval(run, *args) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0, err
        return err

    assert "--label-format colors" in error(images, colours, tmp_path / "a.json")        # colours given as ids
    few = tmp_path / "few"
    shutil.copytree(labels, few)
    first = sorted(few.iterdir())[0]
    first.unlink()
    assert f"{first.stem}.png: no label map named {first.stem}.*" in error(images, few, tmp_path / "b.json")
    (tmp_path / "empty").mkdir()
    assert "empty: no image files" in error(tmp_path / "empty", labels, tmp_path / "c.json")
    big = tmp_path / "big"
    shutil.copytree(images, big)
    name = sorted(big.iterdir())[0]
    Image.open(name).resize((32, 32)).save(name)
    assert f"{name}: image is 32x32 but its label map" in error(big, labels, tmp_path / "d.json")
    assert _eval(run, big, labels, tmp_path / "e.json", "--resize") == 0
    rec = json.loads((tmp_path / "e.json").read_text())
    assert rec["resize"] == "image to label size, bilinear" and "1 image(s) resized" in " ".join(rec["notes"])
    wrong = tmp_path / "wrong"
    shutil.copytree(labels, wrong)
    bad = sorted(wrong.iterdir())[0]
    Image.fromarray(np.full((16, 16), 40, np.uint8)).save(bad)
    assert "holds class id 40" in error(images, wrong, tmp_path / "f.json")


def test_the_bundled_scenes_segmenter_is_the_default_and_brings_its_ceiling(world, tmp_path):
    _, images, labels, _ = world
    out = tmp_path / "default.json"
    assert main(["eval", "segmentation", "--images", str(images), "--labels", str(labels), "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    seg = rec["extra"]["segmenter"]
    assert seg["name"] == "segmenter-scenes" and seg["sha256"] == sha256_file(seg["weights_file"])
    assert seg["held_out"]["miou"] > 0.8                            # its card: real renders of unseen seeds
    # trained on real renders, it labels these (16x16, far smaller than it was trained on) better than chance
    assert rec["values"]["pixel_accuracy"] > 0.5
