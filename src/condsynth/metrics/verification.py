"""Face verification with dlib's 128-D face descriptor (the offline stand-in for Face++ compare).

Two faces are the same person when the Euclidean distance of their descriptors is below the
threshold, 0.6 by dlib's convention (its ResNet reaches 99.38% on LFW at that threshold). The
thesis' Face++ confidences (0-100, threshold 73.5 at FAR 1e-5) are a different scale: numbers from
here are not comparable with its Table 4.3 (spec §2.5, §5). Reported: mean distance, mean cosine
similarity and the verification rate = share of pairs with distance < threshold.
"""

from __future__ import annotations

import numpy as np
import torch

from condsynth.metrics.base import MeanStdMetric

DEFAULT_THRESHOLD = 0.6


def descriptor_distance(a, b) -> np.ndarray:
    """Euclidean distance between descriptors, row-wise for ``N x 128`` inputs."""
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    return np.linalg.norm(a - b, axis=1)


def descriptor_cosine(a, b) -> np.ndarray:
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


class FaceVerification(MeanStdMetric):
    """Accumulates descriptor pairs; ``compute()`` -> ``{'mean_distance', 'std_distance', 'mean_cosine',
    'verification_rate', 'pairs'}``.

    >>> import numpy as np
    >>> a = np.eye(3, 128)                      # three unit descriptors
    >>> m = FaceVerification(threshold=0.6)
    >>> m.update(a, a * 0.9)                     # distance 0.1 each: same person
    >>> m.update(a[:1], a[1:2])                  # distance sqrt(2): different people
    >>> out = m.compute()
    >>> round(float(out["verification_rate"]), 4), int(out["pairs"])
    (0.75, 4)
    """

    higher_is_better = True
    score_names = ("distance", "cosine", "verified")

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)

    def scores(self, desc_a, desc_b) -> dict[str, np.ndarray]:
        """Per-pair distance, cosine and verified (0/1) of ``N x 128`` descriptors (``update`` takes the same)."""
        d = descriptor_distance(desc_a, desc_b)
        return {"distance": d, "cosine": descriptor_cosine(desc_a, desc_b), "verified": d < self.threshold}

    def compute(self) -> dict[str, torch.Tensor]:
        dist = self.summary("distance")
        return {"mean_distance": dist["mean"], "std_distance": dist["std"],
                "mean_cosine": self.summary("cosine")["mean"],
                "verification_rate": self.summary("verified")["mean"], "pairs": dist["n"]}
