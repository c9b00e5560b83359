"""Every metric object through MetricTester: dict-of-tensors output, parity with a reference
implementation (scikit-image, SciPy, NumPy), reset, and DDP (2 gloo processes) == one process.

Adding a metric is one ``pytest.param`` line in ``CASES`` (data and reference functions above it).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from metric_tester import MetricCase, MetricTester
from scipy.linalg import sqrtm
from scipy.special import log_softmax
from scipy.stats import ttest_ind
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from test_metrics_image_quality import _ms_ssim_reference

from condsynth.metrics import FID, KID, LMD, MSSSIM, PSNR, SSIM, AgeAccuracy, FaceVerification, InceptionScore
from condsynth.metrics import PaintingErrors, RPrecision, SegmentationScores, VSSimilarity
from condsynth.metrics.text_image import r_precision


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mean_std(values) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std())}


# ---------------------------------------------------------------------------------------------
# image pairs: SSIM, MS-SSIM, PSNR against scikit-image / SciPy

def image_pairs(size: int = 24, n: int = 4, seed: int = 0, identical: bool = False):
    g = _gen(seed)
    target = torch.rand(n, 3, size, size, generator=g, dtype=torch.float64)
    preds = (target + 0.1 * torch.randn(n, 3, size, size, generator=g, dtype=torch.float64)).clamp(0, 1)
    if identical:
        preds[-1] = target[-1]                       # PSNR +inf: counted in n_inf, out of the mean
    return [(preds[i:i + 1], target[i:i + 1]) for i in range(n)]


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


def skimage_ssim(batches):
    s = [structural_similarity(_hwc(p), _hwc(t), channel_axis=2, data_range=1.0, gaussian_weights=True,
                               sigma=1.5, use_sample_covariance=False) for p, t in batches]
    return {**_mean_std(s), "n": len(s), "n_inf": 0}


def scipy_msssim(batches):
    s = [_ms_ssim_reference(_hwc(p), _hwc(t), 1.0) for p, t in batches]
    return {**_mean_std(s), "n": len(s)}


def skimage_psnr(batches):
    s = np.array([np.inf if torch.equal(p, t) else peak_signal_noise_ratio(_hwc(t), _hwc(p), data_range=1.0)
                  for p, t in batches])
    finite = np.isfinite(s)
    return {**_mean_std(s[finite]), "n": int(finite.sum()), "n_inf": int((~finite).sum())}


# ---------------------------------------------------------------------------------------------
# features and logits: FID, KID, IS against SciPy / NumPy

def feature_batches(seed: int = 0):
    """Real side in batches 0-1, fake in 2-3: under DDP each rank gets some of both."""
    g = _gen(seed)
    real = torch.randn(40, 8, generator=g, dtype=torch.float64)
    fake = torch.randn(40, 8, generator=g, dtype=torch.float64) * 1.2 + 0.3
    return [{"features": real[:20], "real": True}, {"features": real[20:], "real": True},
            {"features": fake[:25], "real": False}, {"features": fake[25:], "real": False}]


def _sides(batches):
    cat = lambda real: np.concatenate([b["features"].numpy() for b in batches if b["real"] == real])  # noqa: E731
    return cat(True), cat(False)


def scipy_fid(batches):
    f1, f2 = _sides(batches)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    d = f1.mean(0) - f2.mean(0)
    return {"fid": float(d @ d + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real))}


def numpy_kid_whole_sets(batches):
    """Unbiased MMD^2, cubic kernel, over the whole sets (KID with one subset of every sample)."""
    x, y = _sides(batches)
    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    mmd = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
           - 2 * k(x, y).mean())
    return {"kid_mean": float(mmd), "kid_std": 0.0}


def logit_batches(seed: int = 0):
    z = torch.randn(40, 12, generator=_gen(seed), dtype=torch.float64) * 2
    return [{"logits": z[i:i + 10]} for i in range(0, 40, 10)]


def scipy_is_one_split(batches):
    logp = log_softmax(np.concatenate([b["logits"].numpy() for b in batches]), axis=1)
    log_py = np.log(np.exp(logp).mean(0))
    return {"is_mean": float(np.exp((np.exp(logp) * (logp - log_py)).sum(1).mean())), "is_std": 0.0}


# ---------------------------------------------------------------------------------------------
# faces and text: LMD, verification, VS, R-precision, age accuracy

def landmark_batches(seed: int = 0):
    g = _gen(seed)
    a = torch.rand(6, 68, 2, generator=g, dtype=torch.float64) * 100
    b = a + torch.randn(6, 68, 2, generator=g, dtype=torch.float64)
    return [(a[i:i + 2].numpy(), b[i:i + 2].numpy()) for i in range(0, 6, 2)]


def numpy_lmd_face(batches):
    d = []
    for real, fake in batches:
        for r, f in zip(real, fake):
            r, f = r - r.mean(0), f - f.mean(0)
            d.append(np.mean([np.hypot(*(r[p] - f[p])) for p in range(68)]))
    return {**_mean_std(d), "frames": len(d)}


def descriptor_batches(seed: int = 0):
    g = _gen(seed)
    a = torch.randn(12, 128, generator=g, dtype=torch.float64) * 0.09
    b = a + torch.randn(12, 128, generator=g, dtype=torch.float64) * torch.linspace(0.01, 0.1, 12)[:, None]
    return [(a[i:i + 3].numpy(), b[i:i + 3].numpy()) for i in range(0, 12, 3)]


def numpy_verification(batches):
    a = np.concatenate([x for x, _ in batches])
    b = np.concatenate([y for _, y in batches])
    d = np.sqrt(((a - b) ** 2).sum(1))
    cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    assert 0 < (d < 0.6).mean() < 1     # the data straddles the threshold
    return {"mean_distance": d.mean(), "std_distance": d.std(), "mean_cosine": cos.mean(),
            "verification_rate": (d < 0.6).mean(), "pairs": len(d)}


def embedding_batches(n: int = 40, seed: int = 0):
    g = _gen(seed)
    v = torch.randn(n, 16, generator=g, dtype=torch.float64)
    t = v + torch.randn(n, 16, generator=g, dtype=torch.float64)
    step = n // 4
    return [(v[i:i + step], t[i:i + step]) for i in range(0, n, step)]


def numpy_vs(batches):
    v = np.concatenate([x.numpy() for x, _ in batches])
    t = np.concatenate([y.numpy() for _, y in batches])
    cos = (v * t).sum(1) / np.linalg.norm(v, axis=1) / np.linalg.norm(t, axis=1)
    return {**_mean_std(cos), "n": len(cos)}


def functional_r_precision(batches):
    v = torch.cat([x for x, _ in batches])
    t = torch.cat([y for _, y in batches])
    mean, std = r_precision(v, t, seed=1)
    return {"r_precision_mean": mean, "r_precision_std": std}


def age_batches(seed: int = 0):
    rng = np.random.default_rng(seed)
    return [{"ages": rng.normal(25, 3, 12), "groups": [3], "real": True},
            {"ages": rng.normal(38, 4, 9), "groups": np.r_[[4] * 5, [3] * 4], "real": True},
            {"ages": rng.normal(27, 3, 10), "groups": [3], "real": False},
            {"ages": rng.normal(35, 4, 7), "groups": [4], "real": False}]


def scipy_age(batches):
    ages = {}
    for b in batches:
        groups = np.broadcast_to(np.asarray(b["groups"]), b["ages"].shape)
        for a, g in zip(b["ages"], groups):
            ages.setdefault((int(g), b["real"]), []).append(a)
    out = {}
    for g in (3, 4):
        fake, real = np.array(ages[(g, False)]), np.array(ages[(g, True)])
        out.update({f"mean_fake_g{g}": fake.mean(), f"mean_real_g{g}": real.mean(),
                    f"abs_diff_g{g}": abs(fake.mean() - real.mean()), f"n_fake_g{g}": len(fake),
                    f"n_real_g{g}": len(real), f"welch_p_g{g}": ttest_ind(fake, real, equal_var=False).pvalue})
    out["mean_abs_diff"] = (out["abs_diff_g3"] + out["abs_diff_g4"]) / 2
    return out


# ---------------------------------------------------------------------------------------------
# painting errors against NumPy

def painting_batches(seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(4):
        t = rng.random((16, 16, 3))
        c = np.clip(t + rng.normal(0, 0.1, t.shape), 0, 1)
        m = np.zeros((16, 16))
        m[4:12, 2:10 + i] = 1.0
        if i == 3:
            c = t.copy()                 # an exact canvas: PSNR +inf and fg/bg ratio undefined
        out.append((c, t, m))
    return out


def numpy_painting(batches):
    rows = []
    for c, t, m in batches:
        se = ((c - t) ** 2).mean(-1)
        fg, bg = se[m > 0.5].mean(), se[m <= 0.5].mean()
        rows.append({"l1": np.abs(c - t).mean(), "l2": se.mean(),
                     "psnr": -10 * np.log10(se.mean()) if se.mean() > 0 else np.inf,
                     "fg_l2": fg, "bg_l2": bg, "fg_bg_ratio": fg / bg if bg > 0 else np.nan})
    out = {}
    for k in rows[0]:
        v = np.array([r[k] for r in rows])
        ms = _mean_std(v[np.isfinite(v)])
        out[f"{k}_mean"], out[f"{k}_std"] = ms["mean"], ms["std"]
    return {**out, "n": len(rows)}


# segmentation: confusion-matrix scores against per-class pixel counting in NumPy

def segmentation_batches(n: int = 4, k: int = 5):
    g = _gen(7)
    out = []
    for i in range(n):
        target = torch.randint(0, k - 1, (2, 12, 12), generator=g)     # class k-1 never true: IoU 0 where predicted
        pred = torch.where(torch.rand(2, 12, 12, generator=g) < 0.7, target, torch.randint(0, k, (2, 12, 12),
                                                                                          generator=g))
        target[0, :2] = 255                                             # void, ignored
        out.append((pred, target))
    return out


def numpy_segmentation(batches, k: int = 5):
    p = np.concatenate([b[0].numpy().ravel() for b in batches])
    t = np.concatenate([b[1].numpy().ravel() for b in batches])
    p, t = p[t != 255], t[t != 255]
    iou, acc = [], []
    for c in range(k):
        inter, union = np.sum((p == c) & (t == c)), np.sum((p == c) | (t == c))
        if union:
            iou.append(inter / union)
        if np.sum(t == c):
            acc.append(inter / np.sum(t == c))
    return {"pixel_accuracy": float(np.mean(p == t)), "miou": float(np.mean(iou)),
            "mean_class_accuracy": float(np.mean(acc)), "pixels": len(t)}


CASES = [
    pytest.param(MetricCase(lambda: SSIM(data_range=1.0), image_pairs, skimage_ssim, atol=1e-6), id="ssim"),
    pytest.param(MetricCase(lambda: MSSSIM(data_range=1.0), lambda: image_pairs(176, 2), scipy_msssim, atol=1e-6),
                 id="msssim"),
    pytest.param(MetricCase(lambda: PSNR(data_range=1.0), lambda: image_pairs(identical=True), skimage_psnr,
                            rtol=1e-6), id="psnr"),
    pytest.param(MetricCase(lambda: FID(feature_dim=8), feature_batches, scipy_fid, rtol=1e-7), id="fid"),
    pytest.param(MetricCase(lambda: KID(num_subsets=1, subset_size=1000), feature_batches, numpy_kid_whole_sets,
                            rtol=1e-9, atol=1e-12), id="kid"),
    pytest.param(MetricCase(lambda: InceptionScore(splits=1), logit_batches, scipy_is_one_split, rtol=1e-9),
                 id="is"),
    pytest.param(MetricCase(lambda: LMD("face"), landmark_batches, numpy_lmd_face, rtol=1e-9), id="lmd"),
    pytest.param(MetricCase(FaceVerification, descriptor_batches, numpy_verification, rtol=1e-9), id="verification"),
    pytest.param(MetricCase(VSSimilarity, embedding_batches, numpy_vs, rtol=1e-9), id="vs"),
    pytest.param(MetricCase(lambda: RPrecision(seed=1), lambda: embedding_batches(120), functional_r_precision,
                            ddp=False), id="r_precision"),
    pytest.param(MetricCase(AgeAccuracy, age_batches, scipy_age, rtol=1e-6), id="age_accuracy"),
    pytest.param(MetricCase(lambda: PaintingErrors(masks=True), painting_batches, numpy_painting, rtol=1e-9),
                 id="painting"),
    pytest.param(MetricCase(lambda: SegmentationScores(5), segmentation_batches, numpy_segmentation, rtol=1e-12),
                 id="segmentation"),
]


@pytest.mark.parametrize("case", CASES)
class TestMetrics(MetricTester):
    """All MetricTester checks for every case in CASES."""


def test_every_registered_metric_has_a_case():
    from condsynth.metrics import METRICS
    ids = {p.id for p in CASES}
    assert set(METRICS) - ids == set(), f"add a MetricCase for {sorted(set(METRICS) - ids)}"
