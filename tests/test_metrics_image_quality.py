"""SSIM / MS-SSIM / PSNR against scikit-image, torchmetrics and an independent SciPy MS-SSIM, on real photos."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from condsynth.errors import UserError
from condsynth.metrics import MSSSIM, PSNR, SSIM, ms_ssim, psnr, ssim


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.fixture(scope="module")
def photo_pairs():
    """(reference, distorted) uint8 pairs from the photos bundled with scikit-image."""
    rng = np.random.default_rng(0)
    astro = skdata.astronaut()[::2, ::2]                         # 256x256
    coffee = skdata.coffee()[:256, 100:356]                      # 256x256
    chelsea = skdata.chelsea()[:256, :256]
    noisy = np.clip(astro + rng.normal(0, 12, astro.shape), 0, 255).astype(np.uint8)
    blurred = ndimage.gaussian_filter(coffee, sigma=(1.5, 1.5, 0)).astype(np.uint8)
    return [(astro, noisy), (coffee, blurred), (chelsea, _jpeg(chelsea, 15))]


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(img, dtype=np.float64)).permute(2, 0, 1)[None]


def test_ssim_matches_skimage_on_photos(photo_pairs):
    for ref, dist in photo_pairs:
        expected = structural_similarity(ref, dist, channel_axis=2, data_range=255, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False)
        got = float(ssim(_t(dist), _t(ref), data_range=255.0)[0])
        assert abs(got - expected) < 1e-4, (got, expected)
        assert got < 0.99  # the distortions are real, not a trivial 1.0 == 1.0


def test_ssim_float_range_and_torchmetrics_map(photo_pairs):
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim
    ref, dist = photo_pairs[0]
    x, y = _t(dist) / 255.0, _t(ref) / 255.0
    assert abs(float(ssim(x, y, data_range=1.0)[0]) - float(ssim(_t(dist), _t(ref), data_range=255.0)[0])) < 1e-6
    # torchmetrics' SSIM map, restricted to valid window positions (5-px border off), is our mean.
    _, full = tm_ssim(x, y, data_range=1.0, gaussian_kernel=True, sigma=1.5, kernel_size=11,
                      return_full_image=True)
    assert abs(float(full[..., 5:-5, 5:-5].mean()) - float(ssim(x, y, data_range=1.0)[0])) < 1e-4


def test_psnr_matches_skimage_and_handles_identical(photo_pairs):
    for ref, dist in photo_pairs:
        expected = peak_signal_noise_ratio(ref, dist, data_range=255)
        assert abs(float(psnr(_t(dist), _t(ref), data_range=255.0)[0]) - expected) < 1e-4
    ref = photo_pairs[0][0]
    assert math.isinf(float(psnr(_t(ref), _t(ref), data_range=255.0)[0]))
    m = PSNR(data_range=255.0)
    m.update(_t(photo_pairs[0][1]), _t(ref))
    m.update(_t(ref), _t(ref))  # identical pair: counted, excluded from the mean
    out = m.compute()
    assert out["n"] == 1 and out["n_inf"] == 1
    assert abs(out["mean"] - peak_signal_noise_ratio(ref, photo_pairs[0][1], data_range=255)) < 1e-4


def _ms_ssim_reference(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Independent MS-SSIM (Wang et al. 2003) with SciPy: valid 11x11 Gaussian windows, 2x2 mean downsampling."""
    betas = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    r = np.arange(11) - 5.0
    g = np.exp(-r ** 2 / (2 * 1.5 ** 2))
    g /= g.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def filt(a):  # 'valid' separable correlation per channel
        out = ndimage.correlate1d(ndimage.correlate1d(a, g, axis=0, mode="constant"), g, axis=1, mode="constant")
        return out[5:-5, 5:-5]

    x, y = x.astype(np.float64), y.astype(np.float64)
    vals = []
    for j in range(5):
        sims, css = [], []
        for c in range(x.shape[2]):
            a, b = x[..., c], y[..., c]
            mx, my = filt(a), filt(b)
            vx, vy, cxy = filt(a * a) - mx ** 2, filt(b * b) - my ** 2, filt(a * b) - mx * my
            cs = (2 * cxy + c2) / (vx + vy + c2)
            lum = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
            sims.append((lum * cs).mean())
            css.append(cs.mean())
        vals.append(np.mean(sims) if j == 4 else np.mean(css))
        h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
        x = x[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean((1, 3))
        y = y[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean((1, 3))
    return float(np.prod(np.maximum(vals, 0) ** np.array(betas)))


def test_ms_ssim_matches_independent_reference_and_torchmetrics(photo_pairs):
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm_msssim
    for ref, dist in photo_pairs:
        got = float(ms_ssim(_t(dist), _t(ref), data_range=255.0)[0])
        assert abs(got - _ms_ssim_reference(dist, ref, 255.0)) < 1e-4
        # torchmetrics averages its last-scale SSIM over reflected borders too, so it differs slightly.
        tm = float(tm_msssim(_t(dist), _t(ref), data_range=255.0, normalize=None))
        assert abs(got - tm) < 2e-3, (got, tm)


def test_metric_objects_accumulate_and_reset(photo_pairs):
    refs = torch.cat([_t(r) for r, _ in photo_pairs])
    dists = torch.cat([_t(d) for _, d in photo_pairs])
    per_image = ssim(dists, refs, data_range=255.0).double()
    m = SSIM(data_range=255.0)
    for i in range(len(refs)):
        m.update(dists[i:i + 1], refs[i:i + 1])
    out = m.compute()
    assert out["n"] == 3
    assert abs(out["mean"] - float(per_image.mean())) < 1e-6
    assert abs(out["std"] - float(per_image.std(unbiased=False))) < 1e-6
    m.reset()
    assert m.compute()["n"] == 0
    mm = MSSSIM(data_range=255.0)
    mm.update(dists, refs)
    assert abs(mm.compute()["mean"] - float(ms_ssim(dists, refs, data_range=255.0).mean())) < 1e-6


def test_bad_arguments():
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="data_range"):
        ssim(x, x, data_range=None)
    with pytest.raises(UserError, match="different shapes"):
        psnr(x, torch.rand(1, 3, 32, 30), data_range=1.0)
    with pytest.raises(UserError, match="MS-SSIM"):
        ms_ssim(x, x, data_range=1.0)  # 32 px is too small for 5 scales


def test_make_metric_by_name():
    from condsynth.errors import ConfigError
    from condsynth.metrics import FID, LMD, make_metric
    assert isinstance(make_metric("psnr", data_range=2.0), PSNR)
    assert isinstance(make_metric("fid", feature_dim=8), FID)
    assert isinstance(make_metric("lmd", region="face"), LMD)
    with pytest.raises(ConfigError, match="unknown metric 'nope'"):
        make_metric("nope")


def test_psnr_thesis_literal_channel_sum_and_gray(photo_pairs, tmp_path):
    import json

    from condsynth.cli.main import main
    ref, dist = photo_pairs[0]
    std = float(psnr(_t(dist), _t(ref), data_range=255.0)[0])
    literal = float(psnr(_t(dist), _t(ref), data_range=255.0, channels="sum")[0])
    assert literal == pytest.approx(std - 10 * math.log10(3), abs=1e-6)  # Eq. 2.9 sums the 3 channels
    for d, img in (("gt", ref), ("gen", dist)):
        (tmp_path / d).mkdir()
        Image.fromarray(img).save(tmp_path / d / "x.png")
    out = tmp_path / "p.json"
    assert main(["eval", "psnr", str(tmp_path / "gt"), str(tmp_path / "gen"), "--gray", "--out", str(out)]) == 0
    gray = lambda a: np.asarray(Image.fromarray(a).convert("L"))  # noqa: E731
    rec = json.loads(out.read_text())
    assert rec["values"]["mean"] == pytest.approx(peak_signal_noise_ratio(gray(ref), gray(dist), data_range=255),
                                                  abs=1e-4)
    assert rec["extra"]["colour"].startswith("luma")
    assert main(["eval", "psnr", str(tmp_path / "gt"), str(tmp_path / "gen"), "--channels", "sum",
                 "--out", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["values"]["mean"] == pytest.approx(literal, abs=1e-4)
