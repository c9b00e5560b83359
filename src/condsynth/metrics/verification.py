"""Face verification with dlib's 128-D face descriptor (the offline stand-in for Face++ compare).

Two faces are the same person when the Euclidean distance of their descriptors is below the
threshold, 0.6 by dlib's convention (its ResNet reaches 99.38% on LFW at that threshold). The
thesis' Face++ confidences (0-100, threshold 73.5 at FAR 1e-5) are a different scale: numbers from
here are not comparable with its Table 4.3 (spec §2.5, §5). Reported: mean distance, mean cosine
similarity and the verification rate = share of pairs with distance < threshold.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics import Metric

DEFAULT_THRESHOLD = 0.6


def descriptor_distance(a, b) -> np.ndarray:
    """Euclidean distance between descriptors, row-wise for ``N x 128`` inputs."""
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    return np.linalg.norm(a - b, axis=1)


def descriptor_cosine(a, b) -> np.ndarray:
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


class FaceVerification(Metric):
    """Accumulates descriptor pairs; ``compute`` -> mean distance, mean cosine, verification rate."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)
        self.add_state("dist_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("cos_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("verified", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("pairs", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, desc_a, desc_b) -> None:
        d = descriptor_distance(desc_a, desc_b)
        self.dist_sum += float(d.sum())
        self.cos_sum += float(descriptor_cosine(desc_a, desc_b).sum())
        self.verified += int((d < self.threshold).sum())
        self.pairs += len(d)

    def compute(self) -> dict[str, float]:
        n = int(self.pairs)
        if n == 0:
            return {"mean_distance": math.nan, "mean_cosine": math.nan, "verification_rate": math.nan, "pairs": 0}
        return {"mean_distance": float(self.dist_sum) / n, "mean_cosine": float(self.cos_sum) / n,
                "verification_rate": int(self.verified) / n, "pairs": n}
