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

from condsynth.io.landmarks import FACE, MOUTH
from condsynth.metrics.base import MeanStdMetric

REGIONS = {"mouth": MOUTH, "face": FACE}


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


class LMD(MeanStdMetric):
    """Mean (and std) of per-frame LMD over all frames seen; ``compute()`` -> ``{'mean', 'std', 'frames'}``.

    >>> import numpy as np
    >>> real = np.zeros((2, 68, 2)); real[:, 48:, 0] = np.arange(20)   # a mouth along x
    >>> fake = real.copy(); fake[1, 48:, 0] *= 1.1                    # frame 1: mouth 10% wider
    >>> m = LMD("mouth")
    >>> m.update(real, fake)
    >>> out = m.compute()
    >>> round(float(out["mean"]), 4), int(out["frames"])
    (0.25, 2)
    """

    higher_is_better = False
    score_names = ("lmd",)

    def __init__(self, region: str = "mouth", **kwargs):
        super().__init__(**kwargs)
        if region not in REGIONS:
            raise ValueError(f"region must be one of {sorted(REGIONS)}, got {region!r}")
        self.region = region

    def scores(self, real_landmarks, fake_landmarks, scale=(1.0, 1.0)) -> np.ndarray:
        """Per-frame LMD of ``T x 68 x 2`` real and generated landmarks (``update`` takes the same)."""
        return frame_lmd(np.asarray(real_landmarks), np.asarray(fake_landmarks), self.region, scale)

    def compute(self) -> dict[str, torch.Tensor]:
        s = self.summary("lmd")
        return {"mean": s["mean"], "std": s["std"], "frames": s["n"]}
