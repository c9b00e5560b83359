"""Metrics for stroke-based painting (thesis Sec. 6.4 plus the spec's quantitative additions).

* :func:`image_errors`: L1, L2 (MSE) and PSNR between canvas and target, images in [0, 1].
* :func:`fg_bg_l2`: L2 inside and outside a foreground mask, and their ratio.
* :func:`errors_at_counts`: the errors at given stroke counts from a list of progress frames.
* :func:`thickness_profile`: per-stroke thickness = mean of parameters 7 and 9 (1-based, thesis
  order), averaged over windows of 10 strokes; also as a pixel radius at 128x128.
* :func:`block_mosaic`: the "same budget of flat primitives" baseline: the target's block means.
* :class:`PaintingErrors`: the mean and std over images of L1, L2, PSNR (and, with masks, the
  fg/bg L2 and their ratio), a :class:`~condsynth.metrics.base.MeanStdMetric`; ``condsynth eval
  painting`` (:mod:`condsynth.metrics.runs.painting`) uses it.

The functions take numpy arrays or tensors, ``H x W x 3`` (or ``3 x H x W`` tensors), and return floats.
"""

from __future__ import annotations

import math

import numpy as np

from condsynth.metrics.base import MeanStdMetric

STROKE_COUNTS = (50, 100, 200, 400)


def _hwc(x) -> np.ndarray:
    try:
        import torch
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().float()
            if x.dim() == 4:
                x = x[0]
            if x.dim() == 3 and x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
                x = x.permute(1, 2, 0)
            x = x.numpy()
    except ImportError:  # pragma: no cover
        pass
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype(np.float64) / 255.0
    if x.ndim == 2:
        x = x[..., None]
    return x.astype(np.float64)


def image_errors(canvas, target) -> dict:
    c, t = _hwc(canvas), _hwc(target)
    if c.shape != t.shape:
        raise ValueError(f"canvas {c.shape} and target {t.shape} differ in shape")
    d = c - t
    l2 = float(np.mean(d * d))
    return {"l1": float(np.mean(np.abs(d))), "l2": l2,
            "psnr": float(10 * math.log10(1.0 / l2)) if l2 > 0 else float("inf")}


def fg_bg_l2(canvas, target, mask) -> dict:
    """Mean squared error per pixel and channel inside (fg) and outside (bg) a binary mask."""
    c, t = _hwc(canvas), _hwc(target)
    m = _hwc(mask)[..., :1] > 0.5
    se = ((c - t) ** 2).mean(-1, keepdims=True)
    n_fg, n_bg = int(m.sum()), int((~m).sum())
    fg = float(se[m].mean()) if n_fg else float("nan")
    bg = float(se[~m].mean()) if n_bg else float("nan")
    return {"fg_l2": fg, "bg_l2": bg, "fg_bg_ratio": fg / bg if n_fg and n_bg and bg > 0 else float("nan"),
            "fg_fraction": n_fg / m.size}


def painting_scores(canvas, target, mask=None) -> dict:
    """:func:`image_errors`, plus :func:`fg_bg_l2` when a mask is given, of one image."""
    row = image_errors(canvas, target)
    if mask is not None:
        row.update(fg_bg_l2(canvas, target, mask))
    return row


def errors_at_counts(frames, target, counts=STROKE_COUNTS, mask=None) -> dict:
    """``frames``: list of ``(strokes so far, canvas)``. For each count the first frame with at
    least that many strokes is scored; counts beyond the last frame are left out."""
    out = {}
    for n in counts:
        hit = next((f for k, f in frames if k >= n), None)
        if hit is None:
            continue
        out[int(n)] = painting_scores(hit, target, mask)
    return out


def thickness(strokes) -> np.ndarray:
    """Per-stroke thickness: mean of the 7th and 9th parameters (z0, z1; 1-based, thesis order)."""
    s = np.asarray(strokes, np.float64).reshape(-1, 13)
    return 0.5 * (s[:, 6] + s[:, 8])


def thickness_profile(strokes, window: int = 10, canvas_size: int = 128) -> dict:
    z = thickness(strokes)
    n = len(z) // window
    win = z[:n * window].reshape(n, window).mean(1) if n else np.zeros(0)
    radius_px = (1.0 + (2 * canvas_size) / 4 * win) / 2.0   # drawn at 2x, radius 1 + 64 z for 128
    half = len(z) // 2
    return {"window": window, "mean_z": win.tolist(), "radius_px": radius_px.tolist(),
            "first_half_mean_z": float(z[:half].mean()) if half else float("nan"),
            "second_half_mean_z": float(z[half:].mean()) if len(z) > half else float("nan")}


def block_mosaic(target, tiles: int = 20) -> np.ndarray:
    """The target replaced by ``tiles x tiles`` flat blocks of its block means (pixel i of an
    H-pixel side belongs to block floor(i * tiles / H))."""
    t = _hwc(target)
    h, w, c = t.shape
    ri = (np.arange(h) * tiles) // h
    ci = (np.arange(w) * tiles) // w
    out = np.empty_like(t)
    for a in range(tiles):
        rs = ri == a
        for b in range(tiles):
            cs = ci == b
            blk = t[np.ix_(rs, cs)]
            if blk.size:
                out[np.ix_(rs, cs)] = blk.reshape(-1, c).mean(0)
    return out


class PaintingErrors(MeanStdMetric):
    """Mean and std over images of :func:`image_errors` (and :func:`fg_bg_l2` with ``masks=True``).

    ``update(canvas, target, mask=None)`` takes one image pair (``H x W x C`` arrays or
    ``C x H x W`` tensors in [0, 1], uint8 arrays are divided by 255) or a batch (``N x ...``);
    ``update(scores=painting_scores(...))`` adds one image's scores computed before.
    ``compute()`` -> ``{'l1_mean', 'l1_std', 'l2_mean', ..., 'psnr_mean', 'psnr_std'}`` (with
    masks also ``fg_l2_*``, ``bg_l2_*``, ``fg_bg_ratio_*``) and ``n``, the number of images. An
    exact canvas (PSNR +inf) is left out of the PSNR mean; an undefined ratio (an empty mask) out
    of the ratio's.

    >>> import numpy as np
    >>> m = PaintingErrors()
    >>> m.update(np.full((4, 4, 3), 0.5), np.full((4, 4, 3), 0.6))
    >>> out = m.compute()
    >>> round(float(out["l1_mean"]), 4), round(float(out["psnr_mean"]), 4), int(out["n"])
    (0.1, 20.0, 1)
    """

    higher_is_better = False
    score_names = ("l1", "l2", "psnr", "fg_l2", "bg_l2", "fg_bg_ratio")

    def __init__(self, masks: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.masks = masks
        self.reported = self.score_names if masks else self.score_names[:3]

    def scores(self, canvas, target, mask=None) -> dict[str, list[float]]:
        """Per-image :func:`painting_scores` of one pair or a batch (``update`` takes the same)."""
        if (mask is not None) != self.masks:
            raise ValueError("PaintingErrors(masks=True) needs a mask in every update, masks=False none")
        if np.ndim(canvas) == 4:
            rows = [painting_scores(canvas[i], target[i], None if mask is None else mask[i])
                    for i in range(len(canvas))]
        else:
            rows = [painting_scores(canvas, target, mask)]
        return {k: [r[k] for r in rows] for k in self.reported}

    def compute(self) -> dict:
        out = {}
        for name in self.reported:
            s = self.summary(name)
            out[f"{name}_mean"], out[f"{name}_std"] = s["mean"], s["std"]
        out["n"] = self.summary("l1")["n"]
        return out
