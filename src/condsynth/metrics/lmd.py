"""Landmark distance (LMD; Chen et al. ECCV 2018, thesis ch. 5 Table 5.1), mouth-only and full-face.

Normalisation (shared/specs/spec-avwnet-painting.md §2.11; the thesis only names the metric):

1. per frame, 68 dlib landmarks on the real and on the generated frame; keep the 20 mouth points
   (48-67) for ``region='mouth'`` or all 68 for ``region='face'``;
2. optionally rescale the coordinates to a reference frame size (the thesis reports pixels of the
   128x128 frame: ``size=128``);
3. subtract each set's own centroid, so a translated but otherwise identical face scores 0;
4. ``LMD = (1/T)(1/P) sum_t sum_p ||real_tp - fake_tp||_2`` -- the *mean* over points, which is
   the paper's definition (ATVGnet's script sums over points; divide by P to compare with it).
"""

from __future__ import annotations


import numpy as np
import torch
from torchmetrics import Metric

from condsynth.metrics.stats import mean_std_from_sums

REGIONS = {"mouth": slice(48, 68), "face": slice(0, 68)}


def frame_lmd(real: np.ndarray, fake: np.ndarray, region: str = "mouth",
              scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Per-frame LMD for ``T x 68 x 2`` (or ``68 x 2``) landmark arrays -> ``(T,)``."""
    if region not in REGIONS:
        raise ValueError(f"region must be one of {sorted(REGIONS)}, got {region!r}")
    r = np.asarray(real, np.float64).reshape(-1, 68, 2)[:, REGIONS[region]] * np.asarray(scale)
    f = np.asarray(fake, np.float64).reshape(-1, 68, 2)[:, REGIONS[region]] * np.asarray(scale)
    if r.shape != f.shape:
        raise ValueError(f"landmark arrays differ in frames: {r.shape[0]} vs {f.shape[0]}")
    r = r - r.mean(1, keepdims=True)   # step 3: each set relative to its own centroid
    f = f - f.mean(1, keepdims=True)
    return np.linalg.norm(r - f, axis=2).mean(1)


class LMD(Metric):
    """Mean (and std) of per-frame LMD over all frames seen; sums are all-reduced under DDP."""

    higher_is_better = False
    full_state_update = False

    def __init__(self, region: str = "mouth", **kwargs):
        super().__init__(**kwargs)
        if region not in REGIONS:
            raise ValueError(f"region must be one of {sorted(REGIONS)}, got {region!r}")
        self.region = region
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total_sq", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("frames", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, real_landmarks, fake_landmarks, scale=(1.0, 1.0)) -> None:
        d = frame_lmd(np.asarray(real_landmarks), np.asarray(fake_landmarks), self.region, scale)
        self.total += float(d.sum())
        self.total_sq += float((d ** 2).sum())
        self.frames += len(d)

    def compute(self) -> dict[str, float]:
        mean, std = mean_std_from_sums(self.total, self.total_sq, self.frames)
        return {"mean": mean, "std": std, "frames": int(self.frames)}
