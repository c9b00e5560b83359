"""File-level paired runs: ``condsynth eval ssim / psnr / msssim`` over two folders or two videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from condsynth.errors import UserError
from condsynth.io.video import is_video, read_frames
from condsynth.metrics.image_quality import MSSSIM, PSNR, SSIM
from condsynth.metrics.inputs import paired_files, read_pair
from condsynth.metrics.record import MetricRecord

PAIRED = {"ssim": SSIM, "psnr": PSNR, "msssim": MSSSIM}


def _frame_pairs(a: Path, b: Path):
    """Yield (name, x, y) uint8 pairs from two folders or two videos."""
    if is_video(a) or is_video(b):
        fa, fb = read_frames(a), read_frames(b)
        if len(fa) != len(fb):
            raise UserError(f"{b}: has {len(fb)} frames but {a} has {len(fa)}; compare videos of equal length")
        for i, (x, y) in enumerate(zip(fa, fb)):
            if x.shape != y.shape:
                raise UserError(f"{b}: frame {i} is {y.shape[1]}x{y.shape[0]} but {a} is {x.shape[1]}x{x.shape[0]}")
            yield f"frame{i:05d}", x, y
        return
    for pa, pb in paired_files(a, b):
        x, y = read_pair(pa, pb)
        yield pa.name, x, y


def _luma(img: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma as uint8 (PIL's 'L', the same weights as OpenCV's BGR2GRAY): ``H x W x 1``."""
    from PIL import Image
    return np.asarray(Image.fromarray(img).convert("L"))[..., None]


def run_paired(metric: str, dir_a, dir_b, *, data_range: float = 255.0, split: str | None = None,
               gray: bool = False, psnr_channels: str = "mean") -> MetricRecord:
    """SSIM / PSNR / MS-SSIM between same-named images of two folders (or frames of two videos).

    ``dir_a`` is the reference (ground truth), ``dir_b`` the generated set. Images are compared as
    uint8 RGB values with ``data_range`` 255, or as their luma with ``gray`` (ATVGnet's evaluation
    computes PSNR on grayscale frames). ``psnr_channels='sum'`` is thesis Eq. 2.9 read literally.
    """
    kwargs = {"channels": psnr_channels} if metric == "psnr" else {}
    m = PAIRED[metric](data_range=data_range, **kwargs)
    scores, names, res = [], [], set()
    for name, x, y in _frame_pairs(Path(dir_a), Path(dir_b)):
        if gray:
            x, y = _luma(x), _luma(y)
        tx = torch.from_numpy(x).permute(2, 0, 1)[None].double()
        ty = torch.from_numpy(y).permute(2, 0, 1)[None].double()
        score = m.scores(ty, tx)
        m.update(scores=score)
        scores.append(float(score[0]))
        names.append(name)
        res.add((x.shape[1], x.shape[0]))
    out = m.compute()
    values = {"mean": float(out["mean"]), "std": float(out["std"])}
    if metric == "psnr":
        values["num_identical"] = int(out["n_inf"])
    proto = {"ssim": "Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, valid windows, per-channel mean",
             "msssim": "5 scales, betas (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average pooling, "
                       "Gaussian 11x11 sigma 1.5",
             "psnr": "10 log10(L^2/MSE), MSE over pixels and "
                     + ("channels" if psnr_channels == "mean" else "summed channels (thesis Eq. 2.9 literally)")
                     + ", mean over images; identical pairs (inf) excluded from the mean"}[metric]
    return MetricRecord(metric=metric, values=values, num_samples=len(scores),
                        backend="condsynth.metrics.image_quality",
                        resolution=sorted(res) if len(res) > 1 else list(next(iter(res))), resize=None, split=split,
                        inputs={"reference": str(dir_a), "generated": str(dir_b)},
                        extra={"data_range": data_range, "protocol": proto,
                               "colour": "luma (ITU-R 601, uint8)" if gray else "RGB",
                               "per_item": dict(zip(names, [v if np.isfinite(v) else "inf" for v in scores]))})
