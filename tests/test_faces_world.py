"""The faces world (exact landmarks, every identity at every age, mouth/blink controls, UTKFace layout),
the UTKFace/CACD readers' landmarks, flips, identities and target groups, and the face evaluators."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from condsynth import testing
from condsynth.cli.main import main
from condsynth.data.check import check_dataset
from condsynth.data.synth import faces as W
from condsynth.data.utkface import (CACDDataset, FaceDataConfig, IdentityPairs, UTKFaceDataset, face_dataset,
                                    parse_cacd_name)
from condsynth.errors import UserError
from condsynth.io.landmarks import load_landmarks, mirror_landmarks


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return testing.faces_dataset(tmp_path_factory.mktemp("faces"))


def test_geometry_is_the_landmarks_and_every_age_renders():
    ident = W.sample_identity(np.random.default_rng([0, 3]), 3)
    shapes = []
    for age in (2, 8, 15, 25, 35, 45, 55, 65, 75, 90):
        img, pts = W.render_face(ident, age, 64)
        assert img.shape == (64, 64, 3) and pts.shape == (68, 2)
        assert (pts > 0).all() and (pts < 64).all()
        shapes.append(pts)
        # the pupils are drawn at the eye polygons' centres: dark there, skin-coloured between the eyes
        for eye in (slice(36, 42), slice(42, 48)):
            x, y = np.round(pts[eye].mean(0)).astype(int)
            assert img[y, x].mean() < img[int(pts[28, 1]), int(pts[28, 0])].mean() - 30
    child, old = shapes[0], shapes[-1]
    iod = lambda p: np.linalg.norm(p[36] - p[45])                                   # noqa: E731
    # a child's eyes are larger relative to the face, an old nose longer
    assert np.linalg.norm(child[36] - child[39]) / iod(child) > np.linalg.norm(old[36] - old[39]) / iod(old)
    assert (old[33, 1] - old[27, 1]) / iod(old) > (child[33, 1] - child[27, 1]) / iod(child)
    # the frontal neutral shape is mirror-symmetric: its landmarks are their own mirror image
    _, sym = W.render_face(ident, 30, 64)
    np.testing.assert_allclose(mirror_landmarks(sym, 64), sym, atol=1e-9)
    img, _ = W.render_face(ident, 30, 64, nuisance=W.Nuisance(noise=0.0, light=(0.0, -1.0)))
    assert np.abs(img.astype(int) - img[:, ::-1].astype(int)).mean() < 2       # and so is the picture


def test_mouth_and_blink_controls_move_only_their_points():
    ident = W.sample_identity(np.random.default_rng([0, 1]), 1)
    _, rest = W.render_face(ident, 30, 64)
    _, opened = W.render_face(ident, 30, 64, expr=W.Expression(jaw_open=1.0))
    assert opened[57, 1] - rest[57, 1] > 3 and opened[66, 1] - opened[62, 1] > 3     # lower lip down, lips apart
    assert np.allclose(opened[17:48], rest[17:48])                                   # brows, nose, eyes stay
    _, closed = W.render_face(ident, 30, 64, expr=W.Expression(jaw_open=1.0, closure=1.0))
    assert abs(closed[66, 1] - closed[62, 1]) < 0.5
    _, shut = W.render_face(ident, 30, 64, expr=W.Expression(blink=1.0))
    assert np.abs(shut[37] - shut[41]).max() < 0.2 and np.allclose(shut[48:], rest[48:])
    _, wide = W.render_face(ident, 30, 64, expr=W.Expression(lip_width=1.0))
    _, round_ = W.render_face(ident, 30, 64, expr=W.Expression(lip_round=1.0))
    assert wide[54, 0] - wide[48, 0] > rest[54, 0] - rest[48, 0] > round_[54, 0] - round_[48, 0]


def test_world_layout_identities_and_check(world):
    meta = json.loads((world / "meta.json").read_text())
    ids = json.loads((world / "identities.json").read_text())
    train = {W.identity_of(p.name) for p in (world / "train").glob("*.jpg")}
    test = {W.identity_of(p.name) for p in (world / "test").glob("*.jpg")}
    assert train and test and not train & test                                      # disjoint identities
    assert meta["counts"]["test"] == 10 * len(test) == len(list((world / "test").glob("*.jpg"))) == 20
    one = [v for v in ids.values() if v["split"] == "test"][0]
    assert sorted(W.age_factors(a)["child"] > 0 for a in one["ages"]).count(True) == 3   # 0-5, 6-10, 11-20
    name = one["files"][4]
    lm = load_landmarks(world / "test" / (name[:-4] + ".npy"))
    ident = W.Identity.from_dict(one["params"])
    rng = np.random.default_rng([1, ident.index, 4])
    _, again = W.render_face(ident, one["ages"][4], 32, nuisance=W.sample_nuisance(rng), rng=rng)
    np.testing.assert_allclose(lm, again)                                            # regenerated exactly
    report = check_dataset("utkface", world / "test")
    assert report.counts["images"] == 20 and report.counts["landmarks"] == 20


def test_render_world_face_is_the_same_photo_at_another_age(world):
    """The counterfactual target of the LDcGAN paired check: render k of an identity re-drawn at another
    group's age keeps that render's pose, light and background, and at the stored age is the stored file."""
    meta = json.loads((world / "meta.json").read_text())
    one = [v for v in json.loads((world / "identities.json").read_text()).values() if v["split"] == "test"][0]
    ident = W.Identity.from_dict(one["params"])
    assert W.render_of(one["files"][4]) == 4 and W.identity_of(one["files"][4]) == ident.index
    kw = dict(seed=meta["seed"], render=4, size=meta["size"], pose=meta["pose"])
    img, pts, _ = W.render_world_face(ident, one["ages"][4], **kw)
    img = img.astype(np.float32)
    stored = np.asarray(Image.open(world / "test" / one["files"][4]), np.float32)
    np.testing.assert_allclose(pts, load_landmarks(world / "test" / (one["files"][4][:-4] + ".npy")))
    old, old_pts, _ = W.render_world_face(ident, one["ages"][9], **kw)
    other = np.asarray(Image.open(world / "test" / one["files"][9]), np.float32)   # render 9: its own photo
    assert np.abs(img - stored).mean() < 10 < np.abs(other - stored).mean()          # JPEG's error only
    assert np.abs(old - img).mean() < 0.6 * np.abs(other - img).mean()              # the same photo, aged
    # at 64 px the corner is background only: its colour stays (the noise is redrawn, so compare means)
    ident = W.sample_identity(np.random.default_rng([0, 7]), 7)
    young, *_ = W.render_world_face(ident, 8, seed=0, render=2, size=64)
    aged, *_ = W.render_world_face(ident, 85, seed=0, render=2, size=64)
    other, *_ = W.render_world_face(ident, 85, seed=0, render=9, size=64)

    def corner(a):
        return a[:6, :6].reshape(-1, 3).astype(np.float32).mean(0)
    assert np.abs(corner(aged) - corner(young)).max() < 2 < np.abs(corner(other) - corner(young)).max()
    assert np.abs(old_pts - pts).mean() > 0.1                                        # the face did age


def test_reader_flips_mirror_landmarks_and_samples_target_groups(world):
    ds = UTKFaceDataset(world / "test", size=32, landmarks=True, flip=True, target_group=True, identities=True)
    items = [ds[(3, s)] for s in range(8)]
    plain = UTKFaceDataset(world / "test", size=32, landmarks=True)[3]
    flipped = [it for it in items if not torch.equal(it["image"], plain["image"])]
    assert flipped and len(flipped) < 8
    f = flipped[0]
    assert torch.equal(f["image"], plain["image"].flip(-1))
    pix = (plain["landmarks"].numpy() + 1) / 2 * 31                    # [-1, 1] -> pixels of the 32 px render
    np.testing.assert_allclose((f["landmarks"].numpy() + 1) / 2 * 31, mirror_landmarks(pix, 32), atol=1e-4)
    assert f["landmarks"][36, 0] < 0 and plain["landmarks"][36, 0] < 0     # 36 stays on the image's left
    for it in items:
        assert it["target"] != it["group"] and it["reference"].shape == (3, 32, 32)
        assert ds.records[3].group == it["group"] and it["identity"] == 0


def test_identity_pairs_and_cacd(world, tmp_path):
    pairs = IdentityPairs(UTKFaceDataset(world / "train", size=32, identities=True))
    it = pairs[(0, 1)]
    assert it["image"].shape == it["image2"].shape == (3, 32, 32) and not torch.equal(it["image"], it["image2"])
    assert parse_cacd_name("53_Robin_Williams_0001.jpg").name == "Robin_Williams"
    with pytest.raises(UserError, match="not a CACD2000 file name"):
        parse_cacd_name("Robin_Williams.jpg")
    img = np.zeros((16, 16, 3), np.uint8)
    for n in ("30_Ann_Lee_0001.jpg", "40_Ann_Lee_0002.jpg", "25_Bo_Kim_0001.jpg"):
        Image.fromarray(img).save(tmp_path / n)
    ds = CACDDataset(tmp_path, size=16, identities=True)
    assert [ds[i]["identity"] for i in range(3)] == [1, 0, 0]          # Bo_Kim, Ann_Lee, Ann_Lee (by file name)
    rep = check_dataset("cacd", tmp_path)
    assert rep.counts["identities"] == 2 and any("single image" in w for w in rep.warnings)
    with pytest.raises(UserError, match="no landmark cache"):
        face_dataset(FaceDataConfig(root=str(tmp_path), train_split="", layout="cacd", landmarks=True), "train")


def test_synth_cli_writes_the_world(tmp_path, capsys):
    assert main(["data", "synth", "faces", "--out", str(tmp_path / "w"), "--n", "12", "--size", "32",
                 "--test-fraction", "0", "--ages-per-identity", "3", "--no-progress"]) == 0
    assert len(list((tmp_path / "w" / "train").glob("*.jpg"))) == 12
    assert main(["data", "check", "utkface", str(tmp_path / "w" / "train")]) == 0
    assert "landmark cache: 12 of 12" in capsys.readouterr().out


@pytest.mark.parametrize("task", ["age", "identity"])
def test_evaluator_tasks_take_a_step(task, world, tmp_path):
    raw = testing.tiny_config("face_probe", tmp_path)
    raw["model"]["task"] = task
    method = testing.build_method(raw)
    batch = testing.first_batch(method, n=2)
    logs = method.training_step(batch, testing.fake_context(method))
    assert all(np.isfinite(float(v)) for v in logs.values())
    metrics = method.eval_metrics()
    method.eval_update(testing.first_batch(method, "eval", n=10), metrics)
    out = {k: float(v) for m in metrics.values() for k, v in m.compute().items()}
    assert np.isfinite(out["tar"] if task == "identity" else out["mean"])
