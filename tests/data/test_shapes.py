"""The shapes world: layout, determinism, held-out pairs, masks and captions that tell the truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from condsynth.data.synth import WORLDS
from condsynth.data.synth import shapes
from condsynth.data.text import tokenize
from condsynth.errors import UserError


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes") / "w"
    shapes.write_dataset(out, 40, size=32, seed=1, progress=False)
    return out


def test_layout_and_counts(world):
    meta = json.loads((world / "meta.json").read_text())
    assert meta["world"] == "shapes" and sum(meta["counts"].values()) == 40
    keys = [k for s in ("train", "test", "compositional") for k in json.loads((world / s / "filenames.json").read_text())]
    assert len(keys) == 40
    for key in keys[:5]:
        assert (world / "CUB_200_2011" / "images" / f"{key}.jpg").is_file()
        assert len((world / "text" / f"{key}.txt").read_text().splitlines()) == 10
    lines = (world / "CUB_200_2011" / "images.txt").read_text().splitlines()
    assert len(lines) == 40 and lines[0].split()[1].endswith(".jpg")
    assert json.loads((world / "vocab.json").read_text())["words"][:2] == ["<end>", "<unk>"]


def test_held_out_pairs_only_in_compositional(world):
    attrs = json.loads((world / "attributes.json").read_text())
    train = json.loads((world / "train" / "filenames.json").read_text())
    for key in train:
        assert (attrs[key]["shape"], attrs[key]["colour"]) not in shapes.HELD_OUT
    for key in json.loads((world / "compositional" / "filenames.json").read_text()):
        assert (attrs[key]["shape"], attrs[key]["colour"]) in shapes.HELD_OUT


def test_masks_and_captions_match_the_attributes(world):
    attrs = json.loads((world / "attributes.json").read_text())
    colours = {w for ws in shapes._COLOUR_WORDS.values() for w in ws}
    for key, a in list(attrs.items())[:15]:
        mask = np.asarray(Image.open(world / "masks" / f"{key}.png"))
        assert set(np.unique(mask).tolist()) == set(range(a["count"] + 1))
        img = np.asarray(Image.open(world / "CUB_200_2011" / "images" / f"{key}.jpg")).astype(float)
        inside = img[mask > 0].mean(0)
        assert np.abs(inside - np.array(shapes.COLOURS[a["colour"]])).max() < 90   # textures darken a share
        for cap in (world / "text" / f"{key}.txt").read_text().splitlines():
            said = set(tokenize(cap)) & colours - {"grey", "beige", "dark"}
            assert said <= set(shapes._COLOUR_WORDS[a["colour"]]), (cap, a["colour"])
            if a["count"] == 2:
                assert "two" in tokenize(cap)


def test_deterministic_and_cli_registered(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shapes.write_dataset(a, 6, size=16, seed=3, progress=False)
    shapes.write_dataset(b, 6, size=16, seed=3, progress=False)
    assert (a / "attributes.json").read_text() == (b / "attributes.json").read_text()
    key = json.loads((a / "train" / "filenames.json").read_text())[0]
    assert (a / "text" / f"{key}.txt").read_text() == (b / "text" / f"{key}.txt").read_text()
    assert "shapes" in WORLDS
    with pytest.raises(UserError, match="not empty"):
        shapes.write_dataset(a, 6, size=16, seed=3, progress=False)
