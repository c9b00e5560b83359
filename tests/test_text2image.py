"""`condsynth text2image` and TextToImagePipeline with a tiny trained HfGAN: seeds, attention maps, exports that
load without the data, a CUB-layout fixture through DAMSM -> HfGAN -> generation, and bad inputs (empty caption,
only unknown words, 10,000 characters, --n 0, a missing or empty captions file)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from condsynth import testing
from condsynth.cli.main import main
from condsynth.engine.config import build_experiment_config
from condsynth.engine.trainer import train
from condsynth.errors import UserError
from condsynth.pipelines.text_to_image import TextToImagePipeline


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("t2i")
    train(build_experiment_config(testing.tiny_config("hfgan", work, work / "run", steps=2)))
    return work / "run"


@pytest.fixture(scope="module")
def pipe(run):
    return TextToImagePipeline.from_pretrained(run, device="cpu")


def test_same_seed_same_images_whatever_else_is_asked(pipe):
    a = pipe(["a red circle", "two blue squares"], n=3, seed=5)
    b = pipe(["a yellow star", "a red circle"], n=3, seed=5)
    c = pipe("a red circle", n=3, seed=6)
    assert len(a.images) == 2 and len(a.images[0]) == 3 and a.images[0][0].shape == (16, 16, 3)
    for x, y in zip(a.images[0], b.images[1]):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a.images[0], c.images[0]))
    assert any(not np.array_equal(x, y) for x, y in zip(a.images[0], a.images[1]))


def test_long_unknown_and_bad_captions(pipe):
    long = "a red circle " + "and a blue square " * 600            # ~10,000 characters
    assert len(long) > 10_000
    out = pipe([long, "a red zorblax"], n=1)
    assert out.truncated == [True, False] and len(out.words[0]) == pipe.words_num
    assert out.unknown[1] == ["zorblax"]
    with pytest.raises(UserError, match="no words"):
        pipe("   ")
    with pytest.raises(UserError, match="every word is unknown.*qwerty"):
        pipe("qwerty asdf")
    with pytest.raises(UserError, match="1 to 1000"):
        pipe("a red circle", n=0)


def test_cli_writes_samples_grid_attention_and_an_index(run, tmp_path, capsys):
    caps = tmp_path / "caps.txt"
    caps.write_text("a green triangle at the top\n\n two white stars\n")
    out = tmp_path / "out"
    rc = main(["text2image", "a red circle on the left", "--captions", str(caps), "--n", "2", "--seed", "3",
               "--out", str(out), "--attention", "--checkpoint", str(run)])
    assert rc == 0, capsys.readouterr().err
    index = json.loads((out / "captions.json").read_text())
    assert [c["caption"] for c in index] == ["a red circle on the left", "a green triangle at the top",
                                             "two white stars"]
    assert (out / "caption_002" / "sample_01.png").is_file() and (out / "grid.png").is_file()
    from PIL import Image
    strip = np.asarray(Image.open(out / "caption_000" / "attention_00.png"))
    assert strip.shape == (16, 16 * (1 + len(index[0]["words"])), 3)          # the image, then a map a word
    assert np.asarray(Image.open(out / "grid.png")).shape == (3 * 16, 2 * 16, 3)


@pytest.mark.parametrize("argv, message", [
    (["", "--n", "2"], "no words"),
    (["blorp zonk"], "every word is unknown"),
    (["a red circle", "--n", "0"], "--n: must be between 1 and 1000"),
    (["--captions", "MISSING"], "caption file not found"),
    (["--captions", "EMPTY"], "no captions"),
    ([], "no caption given"),
])
def test_cli_bad_inputs_are_one_line_and_write_nothing(run, tmp_path, capsys, argv, message):
    (tmp_path / "empty.txt").write_text("\n  \n")
    argv = [str(tmp_path / "missing.txt") if a == "MISSING" else str(tmp_path / "empty.txt") if a == "EMPTY" else a
            for a in argv]
    out = tmp_path / "out"
    try:
        rc = main(["text2image", *argv, "--out", str(out), "--checkpoint", str(run)])
    except SystemExit as exc:           # argparse's own errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_an_export_generates_without_the_training_data(run, tmp_path):
    import shutil
    pipe = TextToImagePipeline.from_pretrained(run, device="cpu")
    want = pipe("a red circle", n=2, seed=1).images[0]
    export = pipe.save_pretrained(tmp_path / "export")
    doc = json.loads((export / "pipeline.json").read_text())
    root = doc["config"]["data"]["root"]
    # HfGAN's and the frozen DAMSM's configs both carry the vocabulary
    assert doc["config"]["data"]["vocab_words"][:2] == ["<end>", "<unk>"]
    damsm_cfg = json.loads((export / "text_encoder" / "config.json").read_text())["config"]
    assert damsm_cfg["data"]["vocab_words"] == doc["config"]["data"]["vocab_words"]
    # the run trained with L_DAMSM, so it holds the frozen image encoder; generating does not need it
    assert doc["config"]["model"]["lambda_damsm"] > 0 and pipe.method.image_encoder is not None
    assert set(doc["components"]) == {"G", "text_encoder"} and not (export / "image_encoder").exists()
    shutil.move(root, root + "-away")
    try:
        got = TextToImagePipeline.from_pretrained(export, device="cpu")("a red circle", n=2, seed=1).images[0]
    finally:
        shutil.move(root + "-away", root)
    for x, y in zip(want, got):
        np.testing.assert_array_equal(x, y)


def test_an_export_without_its_text_encoder_is_refused(run, tmp_path):
    import shutil

    from condsynth.errors import CheckpointError
    export = TextToImagePipeline.from_pretrained(run, device="cpu").save_pretrained(tmp_path / "export")
    doc = json.loads((export / "pipeline.json").read_text())
    del doc["components"]["text_encoder"]
    (export / "pipeline.json").write_text(json.dumps(doc))
    shutil.rmtree(export / "text_encoder")
    with pytest.raises(CheckpointError, match="no component 'text_encoder'"):
        TextToImagePipeline.from_pretrained(export, device="cpu")


def test_a_cub_layout_fixture_trains_damsm_then_hfgan_then_generates(tmp_path):
    """The birds layout of AttnGAN (CUB_200_2011/images.txt, bounding boxes, text/, filenames.json)."""
    from data.test_captions import make_cub  # the caption tests' CUB fixture

    root = make_cub(tmp_path / "birds")
    damsm = testing.tiny_config("damsm", tmp_path, tmp_path / "damsm", steps=1, checkpoint_every=1)
    damsm["data"].update(root=str(root), captions_per_image=3, words_num=6)
    train(build_experiment_config(damsm))
    raw = testing.tiny_config("hfgan", tmp_path, tmp_path / "hfgan", steps=2)
    raw["model"]["damsm"] = str(tmp_path / "damsm")
    raw["data"].update(root=str(root), captions_per_image=3, words_num=6)
    train(build_experiment_config(raw))
    out = TextToImagePipeline.from_pretrained(tmp_path / "hfgan", device="cpu")("a small red bird", n=2)
    assert out.images[0][0].shape == (16, 16, 3) and out.unknown == [[]]


def test_the_bundled_model_generates_from_the_command_line(tmp_path, capsys):
    rc = main(["text2image", "a purple circle on the left", "--n", "2", "--out", str(tmp_path / "out"),
               "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    from PIL import Image
    assert np.asarray(Image.open(tmp_path / "out" / "caption_000" / "sample_01.png")).shape == (64, 64, 3)


def test_the_bundled_model_follows_colour_words_on_pairs_it_never_saw():
    """The world's held-out (shape, colour) pairs: the object's colour (the 5% of pixels farthest from the image's
    median, matched to the nearest palette colour) is the caption's for most samples; chance is 1/8."""
    from condsynth.data.synth.shapes import COLOURS, HELD_OUT
    pipe = TextToImagePipeline.from_pretrained("hfgan-shapes64", device="cpu")
    names = list(COLOURS)
    palette = np.array([COLOURS[c] for c in names], float)
    found = []
    for shape, colour in HELD_OUT:
        for img in pipe(f"a large {colour} {shape} in the middle", n=4, seed=0).images[0]:
            x = img.reshape(-1, 3).astype(float)
            far = x[np.argsort(-np.abs(x - np.median(x, 0)).sum(1))[: len(x) // 20]]
            found.append(names[int(np.argmin(((palette - far.mean(0)) ** 2).sum(1)))] == colour)
    assert np.mean(found) >= 0.8, found
