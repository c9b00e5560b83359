"""The face toolkit on real photos: align -> paste back round trip, several faces, tiny faces, grey
photos, the template as data, the landmark cache; and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata

from condsynth.errors import UserError
from condsynth.io.faces import (FaceAnalyzer, FaceTemplate, align_face, align_faces, default_template, find_faces,
                                invert_matrix, parse_face_choice, paste_back, paste_mask, similarity_transform)
from condsynth.io.landmarks import load_landmarks, read_landmark_cache, write_landmark_cache

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def analyzer():
    return FaceAnalyzer()


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


def _outside(aligned, shape):
    import cv2
    m = cv2.warpAffine(paste_mask(aligned), invert_matrix(aligned.matrix), (shape[1], shape[0]))
    return m == 0, m


@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
def test_round_trip_leaves_the_photo_untouched_and_the_face_the_same_person(photo, analyzer, astronaut):
    if photo == "astronaut":
        img = astronaut
    else:
        with cbook.get_sample_data("grace_hopper.jpg") as fh:
            img = np.asarray(Image.open(fh).convert("RGB"))
    a = align_faces(img, analyzer, size=128)[0]
    assert a.image.shape == (128, 128, 3)
    out = paste_back(img, a.image, a)
    assert out.shape == img.shape and out.dtype == np.uint8
    outside, m = _outside(a, img.shape)
    diff = np.abs(out.astype(int) - img.astype(int)).max(-1)
    assert outside.mean() > 0.8 and diff[outside].max() == 0          # bit-exact outside the paste mask
    assert diff[m > 0].mean() < 12                                    # resampled twice inside
    d = np.linalg.norm(analyzer.descriptor(img) - analyzer.descriptor(out))
    assert d < 0.3                                                    # measured 0.16 / 0.09; same person < 0.6
    # an edited crop changes the photo only inside the mask
    edited = paste_back(img, 255 - a.image, a)
    changed = np.abs(edited.astype(int) - img.astype(int)).max(-1) > 0
    assert changed[~outside].mean() > 0.5 and not changed[outside].any()


def test_alignment_maps_the_landmarks_onto_the_template(analyzer, astronaut):
    a = align_faces(astronaut, analyzer, size=96)[0]
    t = default_template()
    err = np.linalg.norm(a.crop_landmarks[list(t.anchors)] - t.pixels(96)[list(t.anchors)], axis=1).mean()
    assert err < 0.06 * 96
    # the similarity fit is exact for a rotated, scaled, shifted copy
    rng = np.random.default_rng(0)
    src = rng.normal(size=(20, 2))
    th, s, sh = 0.3, 2.5, np.array([4.0, -1.0])
    dst = s * src @ np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]).T + sh
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(src @ m[:, :2].T + m[:, 2], dst, atol=1e-9)


def test_template_is_data(tmp_path):
    t = default_template()
    again = FaceTemplate.from_dict(json.loads(json.dumps(t.to_dict())))
    assert again == t and len(t.points) == 68
    shifted = FaceTemplate.from_dict({**t.to_dict(), "points": (np.asarray(t.points) * 0.9).tolist()})
    assert not np.allclose(shifted.pixels(64), t.pixels(64))
    (tmp_path / "bad.json").write_text('{"points": [[0, 0]]}')
    with pytest.raises(UserError, match="bad.json: not a condsynth.face_template/1"):
        FaceTemplate.load(tmp_path / "bad.json")


def test_several_faces_largest_by_default_n_or_all(analyzer, astronaut):
    face = astronaut[40:210, 130:310]                                  # the astronaut's face, 180 x 170
    small = np.asarray(Image.fromarray(face).resize((120, 113)))
    img = np.full((240, 420, 3), 128, np.uint8)
    img[20:190, 10:190] = face
    img[60:173, 260:380] = small
    found = find_faces(img, analyzer)
    assert len(found) == 1 and found[0][0] == 0 and found[0][1].box[0] < 200    # the larger one, on the left
    both = find_faces(img, analyzer, face="all")
    assert [i for i, _, _ in both] == [0, 1] and both[1][1].box[0] > 200
    assert find_faces(img, analyzer, face=1)[0][1].box[0] > 200
    with pytest.raises(UserError, match="--face 5 asked for, but 2 faces were found"):
        find_faces(img, analyzer, face=5)
    with pytest.raises(UserError, match="--face must be a face number"):
        parse_face_choice("second")


def test_no_face_and_a_20_pixel_face_are_clear_errors(analyzer, astronaut):
    with pytest.raises(UserError, match="flat.png: no face found"):
        find_faces(np.full((100, 100, 3), 90, np.uint8), analyzer, source="flat.png")
    tiny = np.asarray(Image.fromarray(astronaut).resize((102, 102), Image.BILINEAR))   # face ~20 px
    with pytest.raises(UserError, match=r"face 0 is \d\dx\d\d pixels, smaller than the minimum 40"):
        find_faces(tiny, analyzer)


def test_grey_photo_is_processed_and_stays_grey(analyzer, astronaut):
    grey = (astronaut.astype(np.float32) @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    a = align_faces(grey, analyzer, size=96)[0]
    assert a.image.shape == (96, 96, 3)
    out = paste_back(grey, a.image, a)
    assert out.shape == grey.shape and out.dtype == np.uint8
    outside, _ = _outside(a, grey.shape)
    assert np.array_equal(out[outside], grey[outside])
    assert np.abs(out.astype(int) - grey.astype(int))[~outside].mean() < 12


def test_bad_landmarks_and_crop(tmp_path, astronaut):
    (tmp_path / "lm.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(UserError, match="lm.npy: not a readable .npy file"):
        load_landmarks(tmp_path / "lm.npy")
    (tmp_path / "lm.json").write_text("{not json")
    with pytest.raises(UserError, match="lm.json: not valid JSON"):
        load_landmarks(tmp_path / "lm.json")
    np.save(tmp_path / "short.npy", np.zeros((5, 2)))
    with pytest.raises(UserError, match="short.npy: expected 68 x 2"):
        load_landmarks(tmp_path / "short.npy")
    with pytest.raises(UserError, match="68 x 2 finite points"):
        align_face(astronaut, np.full((68, 2), np.nan))
    a = align_face(astronaut, default_template().pixels(512))
    with pytest.raises(UserError, match="crop is 64x64, but the face was aligned at 128x128"):
        paste_back(astronaut, np.zeros((64, 64, 3), np.uint8), a)


def test_landmark_cache_round_trip(tmp_path):
    pts = {"a.jpg": np.random.default_rng(0).random((68, 2)) * 100, "b.jpg": np.ones((68, 2))}
    write_landmark_cache(tmp_path / "landmarks.npz", pts, failures=["c.jpg"], meta={"by": "test"})
    back, failures, meta = read_landmark_cache(tmp_path / "landmarks.npz")
    assert set(back) == {"a.jpg", "b.jpg"} and failures == ["c.jpg"] and meta["by"] == "test"
    np.testing.assert_allclose(back["a.jpg"], pts["a.jpg"], atol=1e-4)
    (tmp_path / "bad.npz").write_bytes(b"PK nonsense")
    with pytest.raises(UserError, match="bad.npz: not a readable landmark cache"):
        read_landmark_cache(tmp_path / "bad.npz")


def test_data_prepare_caches_landmarks_and_lists_failures(tmp_path, astronaut, capsys):
    from condsynth.cli.main import main
    from condsynth.data.utkface import UTKFaceDataset
    Image.fromarray(astronaut[:300, 50:350]).save(tmp_path / "30_1_0_20170101000000000.jpg")
    Image.fromarray(np.full((120, 120, 3), 90, np.uint8)).save(tmp_path / "40_0_0_20170101000000001.jpg")
    assert main(["data", "prepare", "utkface", str(tmp_path)]) == 0
    assert "landmarks of 1 images (1 without a face)" in capsys.readouterr().out
    points, failures, _ = read_landmark_cache(tmp_path / "landmarks.npz")
    assert list(points) == ["30_1_0_20170101000000000.jpg"] and failures == ["40_0_0_20170101000000001.jpg"]
    ds = UTKFaceDataset(tmp_path, size=64, landmarks=True)
    assert len(ds) == 1 and ds.dropped == ["40_0_0_20170101000000001.jpg"]
    lm = ds[0]["landmarks"]
    assert lm.shape == (68, 2) and lm.abs().max() <= 1
