"""Caption datasets in the CUB, Oxford-102, COCO and custom layouts: reading, checks and bad captions."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from condsynth.data.captions import CaptionDataConfig, caption_dataset
from condsynth.data.check import check_dataset
from condsynth.errors import UserError

CAPS = ["a small red bird with black wings", "this bird is red", "red crown and short beak"]


def _img(path, w=40, h=30):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(len(str(path))).random((h, w, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)


def _caps(path, lines=CAPS):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def make_cub(root, pickled=False):
    keys = {"train": ["001.Red_Bird/Red_Bird_0001", "001.Red_Bird/Red_Bird_0002"],
            "test": ["002.Blue_Bird/Blue_Bird_0003"]}
    allk = keys["train"] + keys["test"]
    cub = root / "CUB_200_2011"
    for k in allk:
        _img(cub / "images" / f"{k}.jpg")
        _caps(root / "text" / f"{k}.txt")
    cub.joinpath("images.txt").write_text("".join(f"{i + 1} {k}.jpg\n" for i, k in enumerate(allk)))
    cub.joinpath("bounding_boxes.txt").write_text("".join(f"{i + 1} 10.0 5.0 12.0 8.0\n" for i in range(3)))
    for s, ks in keys.items():
        (root / s).mkdir()
        if pickled:
            (root / s / "filenames.pickle").write_bytes(pickle.dumps(ks, protocol=2))
        else:
            (root / s / "filenames.json").write_text(json.dumps(ks))
    return root


def make_oxford(root):
    keys = {"train": ["class_00001/image_00001", "class_00001/image_00002"], "test": ["class_00077/image_00003"]}
    for ks in keys.values():
        for k in ks:
            _img(root / "jpg" / f"{k.split('/')[1]}.jpg")
            _caps(root / "text_c10" / f"{k}.txt")
    (root / "trainvalclasses.txt").write_text("class_00001\n")
    (root / "testclasses.txt").write_text("class_00077\n")
    return root


def make_coco(root):
    for year, ids in (("train2014", [1, 2]), ("val2014", [3])):
        images = [{"id": i, "file_name": f"COCO_{year}_{i:012d}.jpg"} for i in ids]
        for im in images:
            _img(root / year / im["file_name"])
        anns = [{"image_id": i, "id": 10 * i + j, "caption": c} for i in ids for j, c in enumerate(CAPS)]
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"captions_{year}.json").write_text(json.dumps({"images": images, "annotations": anns}))
    return root


def make_custom(root):
    for s in ("a", "b", "c"):
        _img(root / "images" / f"{s}.jpg")
        _caps(root / "captions" / f"{s}.txt")
    (root / "train.txt").write_text("a\nb\n")
    (root / "test.txt").write_text("c\n")
    return root


MAKERS = {"cub": make_cub, "oxford": make_oxford, "coco": make_coco, "captions": make_custom}


@pytest.mark.parametrize("layout", sorted(MAKERS))
def test_every_layout_passes_check_and_reads_samples(layout, tmp_path):
    root = MAKERS[layout](tmp_path / layout)
    report = check_dataset(layout, root)
    assert report.counts["train"]["usable"] == 2 and report.counts["test"]["usable"] == 1
    cfg = CaptionDataConfig(root=str(root), layout=layout, image_size=16, words_num=5,
                            captions_per_image=3)
    ds = caption_dataset(cfg, "train")
    s = ds[(1, 7)]
    assert s["image"].shape == (3, 16, 16) and -1 <= s["image"].min() and s["image"].max() <= 1
    assert s["caption"].shape == (5,) and 1 <= s["length"] <= 5 and (s["caption"][s["length"]:] == 0).all()
    assert s["caption_index"] in (0, 1, 2)
    # training draws by the sampler's seed; evaluation is fixed
    assert {ds[(0, k)]["caption_index"] for k in range(12)} == {0, 1, 2}
    ev = caption_dataset(cfg, "test", ds.vocab)
    assert all(ev[0]["caption_index"] == ev[(0, k)]["caption_index"] for k in range(4))


def test_cub_class_ids_bbox_crop_and_pickled_split(tmp_path):
    root = make_cub(tmp_path / "cub", pickled=True)
    ds = caption_dataset(CaptionDataConfig(root=str(root), layout="cub", image_size=8), "test")
    assert ds[0]["class_id"] == 2 and ds.items[0].bbox == (10.0, 5.0, 12.0, 8.0)
    assert check_dataset("cub", root).counts["train"]["images"] == 2


def test_missing_image_and_caption_file_are_named(tmp_path):
    root = make_cub(tmp_path / "cub")
    os.remove(root / "text" / "001.Red_Bird" / "Red_Bird_0002.txt")
    os.remove(root / "CUB_200_2011" / "images" / "001.Red_Bird" / "Red_Bird_0001.jpg")
    with pytest.raises(UserError, match=r"2 missing files: .*Red_Bird_0001\.jpg; .*Red_Bird_0002\.txt"):
        check_dataset("cub", root)


def test_bad_captions_are_reported_or_refused(tmp_path):
    root = make_custom(tmp_path / "c")
    _caps(root / "captions" / "a.txt", ["   ", "zzzq qqqz", "red bird " * 1200])      # empty, unknown-only, 10k chars
    _caps(root / "captions" / "b.txt", ["a small red bird"])
    report = check_dataset("captions", root)
    assert report.counts["train"]["truncated"] == 1                                   # the 10,000-character one
    assert any("truncated" in ln for ln in report.lines)
    (root / "captions" / "c.txt").write_bytes(b"\xff\xfe\x00b\x00i\x00r\x00d")
    with pytest.raises(UserError, match=r"c\.txt: binary data in a caption file"):
        check_dataset("captions", root)
    (root / "captions" / "c.txt").write_bytes(b"a red \xe9bird")
    with pytest.raises(UserError, match=r"c\.txt: not UTF-8 text"):
        check_dataset("captions", root)


def test_images_without_usable_captions_are_counted(tmp_path):
    root = make_custom(tmp_path / "c")
    _caps(root / "captions" / "a.txt", ["qqqz zzzq"])      # only words the vocabulary (from b) lacks
    _caps(root / "captions" / "b.txt", ["a small red bird"])
    (root / "vocab.json").unlink(missing_ok=True)
    from condsynth.data.text import Vocabulary
    Vocabulary.build(["a small red bird"]).save(root / "vocab.json")
    report = check_dataset("captions", root)
    assert report.counts["train"]["without_captions"] == 1 and report.counts["train"]["only_unknown"] == 1
    assert any("without usable captions" in w for w in report.warnings)


@pytest.mark.parametrize("layout", sorted(MAKERS))
def test_every_layout_trains_damsm_and_evaluates(layout, tmp_path):
    """Each layout's fixture trains DAMSM for two engine steps with a held-out evaluation (R-precision over
    the test split) in between."""
    import json

    from condsynth import testing
    from condsynth.engine.config import build_experiment_config
    from condsynth.engine.trainer import train

    root = MAKERS[layout](tmp_path / layout)
    raw = testing.tiny_config("damsm", tmp_path, tmp_path / "run", steps=2, eval_every=1, checkpoint_every=2)
    raw["data"].update(root=str(root), layout=layout, captions_per_image=3, words_num=5)
    train(build_experiment_config(raw))
    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    r = [rec[k] for rec in logs for k in rec if k.startswith("eval/") and "r_precision" in k]
    # one test pair per fixture: R-precision is undefined there (NaN), and the evaluation ran without failing
    assert len(r) >= 2 and all(v != v or 0.0 <= v <= 1.0 for v in r)
