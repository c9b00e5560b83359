"""io.landmarks: the 68-point table and mirror permutation (checked with dlib on a real face), file formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from condsynth.errors import UserError
from condsynth.io import landmarks as L


def test_regions_cover_the_68_points_once():
    parts = [L.JAW, L.RIGHT_BROW, L.LEFT_BROW, L.NOSE, L.RIGHT_EYE, L.LEFT_EYE, L.OUTER_LIPS, L.INNER_LIPS]
    idx = np.concatenate([np.arange(68)[p] for p in parts])
    assert sorted(idx.tolist()) == list(range(68))
    assert np.arange(68)[L.MOUTH].tolist() == list(range(48, 68)) and L.region("mouth") == L.MOUTH
    with pytest.raises(ValueError, match="must be one of"):
        L.region("ears")


def test_mirror_is_an_involution_that_swaps_sides():
    perm = L.MIRROR
    assert sorted(perm.tolist()) == list(range(68)) and np.array_equal(perm[perm], np.arange(68))
    fixed = set(np.flatnonzero(perm == np.arange(68)).tolist())
    assert fixed == {8, 27, 28, 29, 30, 33, 51, 57, 62, 66}        # chin, nose ridge and tip, lip centres
    assert (perm[L.RIGHT_EYE] == np.arange(68)[L.LEFT_EYE][[3, 2, 1, 0, 5, 4]]).all()
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, (3, 68, 2))
    assert np.allclose(L.mirror_landmarks(L.mirror_landmarks(pts, 100), 100), pts)


def test_mirror_matches_dlib_on_a_flipped_photo():
    pytest.importorskip("dlib")
    from skimage import data as skdata

    from condsynth.io.faces import FaceAnalyzer
    fa = FaceAnalyzer()
    img = skdata.astronaut()
    flipped = np.ascontiguousarray(img[:, ::-1])
    a, b = fa.landmarks(img), fa.landmarks(flipped)
    err = np.linalg.norm(L.mirror_landmarks(b, img.shape[1]) - a, axis=1)
    unpermuted = b.copy()
    unpermuted[:, 0] = img.shape[1] - 1 - unpermuted[:, 0]          # flipped back but not relabelled
    wrong = np.linalg.norm(unpermuted - a, axis=1)
    assert err.mean() < 2.0 and err.max() < 6.0, err                # measured 0.6 px mean, 2 px max (512 px)
    assert wrong.mean() > 10 * err.mean()                           # measured 38 px


def test_npy_and_json_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    one, seq = rng.uniform(0, 128, (68, 2)), rng.uniform(0, 128, (5, 68, 2))
    assert np.array_equal(L.load_landmarks(L.save_landmarks(tmp_path / "a.npy", one)), one)
    back = L.load_landmarks(L.save_landmarks(tmp_path / "s.json", seq))
    assert back.shape == (5, 68, 2) and np.abs(back - seq).max() < 1e-4
    assert json.loads((tmp_path / "s.json").read_text())["format"] == "condsynth.landmarks68/1"
    (tmp_path / "plain.json").write_text(json.dumps(one.tolist()))
    assert np.allclose(L.load_landmarks(tmp_path / "plain.json"), one)
    assert not list(tmp_path.glob(".*tmp*"))
    (tmp_path / "short.json").write_text(json.dumps({"points": one[:5].tolist()}))
    for path, msg in ((tmp_path / "short.json", "68 x 2"), (tmp_path / "nope.npy", "not found"),
                      (tmp_path / "a.txt", "read from .npy or .json")):
        if path.suffix == ".txt":
            path.write_text("1 2")
        with pytest.raises(UserError, match=msg):
            L.load_landmarks(path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="bad.json: not valid JSON"):
        L.load_landmarks(tmp_path / "bad.json")
    with pytest.raises(UserError, match="saved as .npy or .json"):
        L.save_landmarks(tmp_path / "x.csv", one)


def test_openpose_json(tmp_path):
    rng = np.random.default_rng(2)
    pose = np.concatenate([rng.uniform(0, 256, (25, 2)), rng.uniform(0, 1, (25, 1))], 1)   # BODY_25
    face = rng.uniform(0, 256, (68, 2))
    path = L.write_openpose(tmp_path / "frame_000000_keypoints.json", pose=pose, face=face)
    doc = json.loads(path.read_text())
    person = doc["people"][0]
    assert len(person["pose_keypoints_2d"]) == 75 and len(person["face_keypoints_2d"]) == 204
    assert person["hand_left_keypoints_2d"] == []
    got = L.read_openpose(path)
    assert np.abs(got["pose"] - pose).max() < 1e-4 and got["hand_right"] is None
    assert np.allclose(got["face"][:, 2], 1.0)                       # 2-D input: confidence 1 added
    assert np.abs(L.load_landmarks(path) - face).max() < 1e-4        # load_landmarks reads the face
    # what OpenPose writes: 70 face points (68 + pupils), several people, or nobody
    doc = {"version": 1.3, "people": [{"face_keypoints_2d": rng.uniform(0, 9, 210).tolist()},
                                      {"pose_keypoints_2d": [1.0, 2.0, 0.5]}]}
    (tmp_path / "two.json").write_text(json.dumps(doc))
    assert L.read_openpose(tmp_path / "two.json")["face"].shape == (70, 3)
    assert L.load_landmarks(tmp_path / "two.json").shape == (68, 2)
    assert L.read_openpose(tmp_path / "two.json", person=1)["pose"].tolist() == [[1.0, 2.0, 0.5]]
    (tmp_path / "nobody.json").write_text(json.dumps({"version": 1.3, "people": []}))
    with pytest.raises(UserError, match="nobody.json: no person 0 \\(the file has 0\\)"):
        L.read_openpose(tmp_path / "nobody.json")
    (tmp_path / "odd.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0, 2.0]}]}))
    with pytest.raises(UserError, match="not a multiple of 3"):
        L.read_openpose(tmp_path / "odd.json")
