"""FaceAgingPipeline and `condsynth age` on real photos with a tiny trained LDcGAN: detect -> align ->
generate -> paste back with the background bit-exact, the ten-group strip, the debug files, and bad inputs
(no face, several faces, a tiny face, a grey photo, an unknown age group) handled as docs/ldcgan.md says."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from condsynth import testing
from condsynth.cli.main import main
from condsynth.data.utkface import AGE_GROUP_NAMES
from condsynth.engine.config import build_experiment_config
from condsynth.engine.trainer import train
from condsynth.errors import UserError
from condsynth.pipelines.face_aging import FaceAgingPipeline, parse_group, parse_groups

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("aging")
    raw = testing.tiny_config("ldcgan", work, work / "run", steps=1)
    train(build_experiment_config(raw))
    return work / "run"


@pytest.fixture(scope="module")
def pipe(run):
    return FaceAgingPipeline.from_pretrained(run, device="cpu")


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


def test_unknown_group_lists_the_ten_names():
    assert parse_group("80+") == 9 and parse_group("0-5") == 0 and parse_groups("all") == list(range(10))
    with pytest.raises(UserError) as e:
        parse_group("60-70")
    assert all(name in str(e.value) for name in AGE_GROUP_NAMES)


def test_photo_round_trip_keeps_the_background_bit_exact(pipe, astronaut):
    out = pipe(astronaut, to=["0-5", "80+"], crop_size=128)
    assert list(out.images) == ["0-5", "80+"]
    for name, img in out.images.items():
        assert img.shape == astronaut.shape and img.dtype == np.uint8
        outside = out.paste_masks[0] == 0
        assert outside.mean() > 0.5
        assert np.array_equal(img[outside], astronaut[outside]), name
        assert out.masks[name][0].shape == (128, 128) and out.landmarks[name][0].shape == (68, 2)
    strip = out.strip(height=100)
    assert strip.shape[0] == 100 and strip.shape[1] == 3 * 100


def test_aligned_crop_with_its_landmarks(pipe):
    from condsynth.io.faces import default_template
    crop = np.full((32, 32, 3), 128, np.uint8)
    out = pipe(crop, to="61-70", aligned=True, landmarks=default_template().pixels(32))
    assert out.image.shape == (32, 32, 3)
    with pytest.raises(UserError, match="landmarks"):
        pipe(crop, to="61-70", aligned=True)


def test_no_face_is_an_error(pipe):
    with pytest.raises(UserError, match="no face found"):
        pipe(np.full((200, 200, 3), 90, np.uint8), to="21-30", source="blank.png")


def test_tiny_face_names_its_size(pipe, astronaut):
    small = cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)
    with pytest.raises(UserError, match="smaller than the minimum 40 pixels"):
        pipe(small, to="21-30")


def test_several_faces_take_the_largest_or_all(pipe, astronaut):
    small = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)
    pad = np.zeros((512, 384, 3), np.uint8)
    pad[:384] = small
    two = np.concatenate([astronaut, pad], 1)
    one = pipe(two, to="80+", crop_size=64)
    assert len(one.source_landmarks) == 1 and one.source_landmarks[0][:, 0].max() < 512   # the larger, on the left
    both = pipe(two, to="80+", face="all", crop_size=64)
    assert len(both.source_landmarks) == 2
    outside = (both.paste_masks[0] == 0) & (both.paste_masks[1] == 0)
    assert np.array_equal(both.image[outside], two[outside])


def test_grey_photo_gives_a_grey_result(pipe, astronaut):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    out = pipe(grey, to="51-60", crop_size=64)
    assert out.image.shape == grey.shape and out.image.dtype == np.uint8


def test_age_command_all_groups_and_debug_dir(run, astronaut, tmp_path, capsys):
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    out, debug = tmp_path / "strip.png", tmp_path / "debug"
    rc = main(["age", str(photo), "--all-groups", "--out", str(out), "--checkpoint", str(run),
               "--debug-dir", str(debug), "--crop-size", "64"])
    assert rc == 0, capsys.readouterr().err
    strip = np.asarray(Image.open(out))
    assert strip.shape[0] == 256 and strip.shape[1] == 11 * 256
    for name in ("0-5", "80+"):
        assert (debug / f"{name}_face0_mask_fA.png").is_file() and (debug / f"{name}_face0_landmarks.npy").is_file()
    rc = main(["age", str(photo), "--to", "61-70", "--out", str(tmp_path / "one.png"), "--checkpoint", str(run)])
    assert rc == 0 and np.asarray(Image.open(tmp_path / "one.png")).shape == astronaut.shape


@pytest.mark.parametrize("args,message", [
    (["--to", "60-70"], "unknown age group '60-70': use one of 0-5, 6-10"),
    (["--to", "21-30", "--face", "x"], "--face must be a face number"),
])
def test_age_command_bad_arguments_are_one_line(args, message, run, astronaut, tmp_path, capsys):
    photo = tmp_path / "a.png"
    Image.fromarray(astronaut).save(photo)
    rc = main(["age", str(photo), *args, "--out", str(tmp_path / "o.png"), "--checkpoint", str(run)])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_age_command_no_face_and_missing_file(run, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 160, 3), 200, np.uint8)).save(blank)
    rc = main(["age", str(blank), "--to", "21-30", "--out", str(tmp_path / "o.png"), "--checkpoint", str(run)])
    err = capsys.readouterr().err
    assert rc == 2 and "blank.png: no face found" in err and not (tmp_path / "o.png").exists()
    rc = main(["age", str(tmp_path / "nope.png"), "--to", "21-30", "--out", str(tmp_path / "o.png"),
               "--checkpoint", str(run)])
    assert rc == 2 and "file not found" in capsys.readouterr().err
