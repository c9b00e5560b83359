"""Full-reference image quality: SSIM, MS-SSIM and PSNR (thesis §2.6, Eqs. 2.9-2.11).

torchmetrics provides the ``Metric`` base (update / compute / reset, state all-reduced under
DDP). The SSIM arithmetic is done here because torchmetrics' averages over reflected borders (see
``_ssim_and_cs``); tests compare it with scikit-image and torchmetrics' SSIM map. The protocol:

* SSIM: Gaussian 11x11 window, sigma 1.5, K1 = 0.01, K2 = 0.03 (Wang et al. 2004), local
  statistics without Bessel correction, mean over the valid (un-padded) window positions,
  per channel on RGB and averaged (skimage's ``channel_axis`` behaviour). The data range L is
  always explicit: C1 = (K1 L)^2 and C2 = (K2 L)^2 depend on it, and guessing it from the data
  (as skimage does for floats) silently changes the numbers.
* MS-SSIM: 5 scales, 2x2 average-pool downsampling, exponents
  beta = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) (Wang et al. 2003), no normalisation.
* PSNR: 10 log10(L^2 / MSE) per image with MSE over all pixels *and* channels (the standard
  definition; the thesis' Eq. 2.9 sums channels, which would be 3x larger), then averaged over
  images. Identical pairs (MSE = 0) give +inf; they are counted separately and left out of the mean.

Each metric object keeps sums (not lists) as state (:class:`~condsynth.metrics.base.MeanStdMetric`),
so torchmetrics' all-reduce of those sums gives the same result in a DDP run as in one process;
``compute()`` returns ``{'mean', 'std', 'n', 'n_inf'}`` as tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from condsynth.errors import UserError
from condsynth.metrics.base import MeanStdMetric

SSIM_KERNEL = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
MSSSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check_pair(preds: torch.Tensor, target: torch.Tensor, data_range: float | None):
    if data_range is None or not data_range > 0:
        raise ValueError("data_range must be given explicitly and be > 0 (e.g. 1.0, 2.0 or 255.0)")
    if preds.shape != target.shape:
        raise UserError(f"image pair has different shapes: {tuple(preds.shape)} vs {tuple(target.shape)}")
    if preds.dim() == 3:
        preds, target = preds[None], target[None]
    if preds.dim() != 4:
        raise ValueError(f"expected N x C x H x W images, got shape {tuple(preds.shape)}")
    # float64 so that results do not depend on batch composition and match references to 1e-6.
    return preds.double(), target.double()


def _gaussian_window(device) -> torch.Tensor:
    r = torch.arange(SSIM_KERNEL, dtype=torch.float64, device=device) - (SSIM_KERNEL - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * SSIM_SIGMA ** 2))
    return g / g.sum()


def _ssim_and_cs(x: torch.Tensor, y: torch.Tensor, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean SSIM and mean contrast-structure term ``cs`` over the valid window positions.

    Why not torchmetrics' ``structural_similarity_index_measure``: in torchmetrics 1.9 it pads the
    image by reflection and averages the SSIM map over *all* positions, including the 5-px border
    computed from mirrored pixels; Wang et al. and scikit-image average only the positions where
    the 11x11 window lies inside the image. On a noisy 512x512 photo the two differ by ~0.005.
    """
    c = x.shape[1]
    g = _gaussian_window(x.device)
    kh = g.view(1, 1, SSIM_KERNEL, 1).repeat(c, 1, 1, 1)
    kw = g.view(1, 1, 1, SSIM_KERNEL).repeat(c, 1, 1, 1)

    def blur(t):  # separable Gaussian, 'valid' convolution (no padding)
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    # Weighted moments without Bessel correction (use_sample_covariance=False in skimage terms).
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)                      # c(x,y) s(x,y) with c3 = c2/2
    l_map = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)      # l(x,y), Eq. 2.11
    return (l_map * cs_map).flatten(1).mean(1), cs_map.flatten(1).mean(1)


def ssim(preds: torch.Tensor, target: torch.Tensor, *, data_range: float) -> torch.Tensor:
    """Per-image mean SSIM, shape ``(N,)``. Inputs ``N x C x H x W`` (or ``C x H x W``) on the same scale."""
    preds, target = _check_pair(preds, target, data_range)
    if min(preds.shape[-2:]) < SSIM_KERNEL:
        raise UserError(f"SSIM needs images of at least {SSIM_KERNEL}x{SSIM_KERNEL} px, got "
                        f"{preds.shape[-1]}x{preds.shape[-2]}")
    return _ssim_and_cs(preds, target, float(data_range))[0].float()


def ms_ssim(preds: torch.Tensor, target: torch.Tensor, *, data_range: float) -> torch.Tensor:
    """Per-image 5-scale MS-SSIM (Wang et al. 2003), shape ``(N,)``; images must exceed 160 px per side.

    ``MS-SSIM = ssim_M^beta_M * prod_{j<M} cs_j^beta_j`` with 2x2 average-pool downsampling between
    scales. A negative ``cs_j`` (anti-correlated images) is clamped to 0 before the fractional power,
    as pytorch-msssim does, instead of giving NaN.
    """
    preds, target = _check_pair(preds, target, data_range)
    m = len(MSSSIM_BETAS)
    need = (SSIM_KERNEL - 1) * 2 ** (m - 1)
    if min(preds.shape[-2:]) <= need:
        raise UserError(f"MS-SSIM with {m} scales needs images larger than {need}x{need} px, "
                        f"got {preds.shape[-1]}x{preds.shape[-2]}")
    betas = torch.tensor(MSSSIM_BETAS, dtype=torch.float64, device=preds.device)
    terms = []
    for j in range(m):
        sim, cs = _ssim_and_cs(preds, target, float(data_range))
        terms.append(sim if j == m - 1 else cs)
        if j < m - 1:
            preds, target = F.avg_pool2d(preds, 2), F.avg_pool2d(target, 2)
    stacked = torch.stack(terms, 1).clamp_min(0.0)
    return torch.prod(stacked ** betas, dim=1).float()


def psnr(preds: torch.Tensor, target: torch.Tensor, *, data_range: float, channels: str = "mean") -> torch.Tensor:
    """Per-image PSNR in dB, shape ``(N,)``; +inf where the images are identical.

    ``channels='mean'`` (default): MSE over pixels and channels, the standard definition.
    ``channels='sum'``: thesis Eq. 2.9 as printed, ``(1/mn) sum_ij ||f(i,j) - g(i,j)||^2`` with the
    squared norm summing the channels of a pixel: 10 log10(C) dB lower for C channels. The two agree
    on grayscale images.
    """
    preds, target = _check_pair(preds, target, data_range)
    if channels not in ("mean", "sum"):
        raise ValueError(f"channels must be 'mean' or 'sum', got {channels!r}")
    mse = (preds - target).pow(2).flatten(1).mean(1)
    if channels == "sum":
        mse = mse * preds.shape[1]
    return (10.0 * torch.log10(float(data_range) ** 2 / mse)).float()  # log10(x/0) = +inf


class _ImageQuality(MeanStdMetric):
    """Mean and (population) std of a per-image score; ``compute()`` -> ``{'mean', 'std', 'n', 'n_inf'}``.

    ``update(preds, target)`` with ``N x C x H x W`` batches on one scale; ``scores(preds, target)``
    gives the per-image values without updating.
    """

    higher_is_better = True

    def __init__(self, data_range: float, **kwargs):
        super().__init__(**kwargs)
        if data_range is None or not data_range > 0:
            raise ValueError("data_range must be given explicitly and be > 0")
        self.data_range = float(data_range)


class SSIM(_ImageQuality):
    """Mean SSIM over images (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, explicit ``data_range``).

    >>> import torch
    >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> m = SSIM(data_range=1.0)
    >>> m.update(x, x)
    >>> from condsynth.metrics import to_python
    >>> to_python(m.compute())                      # 0-dim tensors -> floats and ints
    {'mean': 1.0, 'std': 0.0, 'n': 2, 'n_inf': 0}
    """

    def scores(self, preds, target):
        return ssim(preds, target, data_range=self.data_range)


class MSSSIM(_ImageQuality):
    """Mean 5-scale MS-SSIM over images."""

    def scores(self, preds, target):
        return ms_ssim(preds, target, data_range=self.data_range)


class PSNR(_ImageQuality):
    """Mean PSNR over images; identical pairs (+inf) are counted in ``n_inf`` and left out of the mean.

    ``channels``: as :func:`psnr` (``'sum'`` is thesis Eq. 2.9 read literally).

    >>> import torch
    >>> m = PSNR(data_range=1.0)
    >>> m.update(torch.full((1, 1, 4, 4), 0.5), torch.full((1, 1, 4, 4), 0.6))  # MSE 0.01: 20 dB
    >>> m.update(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))              # identical: +inf
    >>> out = m.compute()
    >>> round(float(out["mean"]), 4), int(out["n"]), int(out["n_inf"])
    (20.0, 1, 1)
    """

    def __init__(self, data_range: float, channels: str = "mean", **kwargs):
        super().__init__(data_range, **kwargs)
        if channels not in ("mean", "sum"):
            raise ValueError(f"channels must be 'mean' or 'sum', got {channels!r}")
        self.channels = channels

    def scores(self, preds, target):
        return psnr(preds, target, data_range=self.data_range, channels=self.channels)
