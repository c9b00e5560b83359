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
from torchmetrics import Metric

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


def tar_at_far(embeddings, labels, far: float = 1e-2) -> dict[str, float]:
    """Verification over every pair of ``N x D`` embeddings (cosine similarity; same label =
    genuine pair): the threshold at which the false-accept rate over impostor pairs is ``far``,
    the true-accept rate there, and the equal error rate. Pairs of the same image are left out."""
    e = torch.as_tensor(np.asarray(embeddings, np.float64))
    e = e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)
    y = torch.as_tensor(np.asarray(labels)).reshape(-1)
    sim = e @ e.T
    iu = torch.triu_indices(len(e), len(e), offset=1)
    s, same = sim[iu[0], iu[1]], (y[iu[0]] == y[iu[1]])
    gen, imp = s[same], s[~same]
    if len(gen) == 0 or len(imp) == 0:
        return {"tar": float("nan"), "threshold": float("nan"), "eer": float("nan"), "genuine_pairs": len(gen),
                "impostor_pairs": len(imp)}
    imp_sorted = imp.sort(descending=True).values
    k = int(np.floor(far * len(imp)))                 # at most k impostor pairs above the threshold
    thr = float(imp_sorted[k]) if k < len(imp) else float(imp_sorted[-1]) - 1e-9
    tar = float((gen > thr).double().mean())
    grid = torch.cat([gen, imp]).sort().values
    frr = torch.searchsorted(gen.sort().values.contiguous(), grid.contiguous(), right=True).double() / len(gen)
    far_ = 1 - torch.searchsorted(imp.sort().values.contiguous(), grid.contiguous(), right=True).double() / len(imp)
    i = int((frr - far_).abs().argmin())
    return {"tar": tar, "threshold": thr, "eer": float((frr[i] + far_[i]) / 2), "genuine_pairs": int(len(gen)),
            "impostor_pairs": int(len(imp))}


class EmbeddingVerification(Metric):
    """Collects embeddings and identity labels (gathered under DDP); ``compute()`` ->
    :func:`tar_at_far` at ``far`` as ``{'tar', 'threshold', 'eer', 'genuine_pairs', 'impostor_pairs'}``.

    >>> m = EmbeddingVerification(far=0.0)
    >>> m.update(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), torch.tensor([0, 0, 1, 1]))
    >>> float(m.compute()["tar"])
    1.0
    """

    higher_is_better = True
    full_state_update = False

    def __init__(self, far: float = 1e-2, **kwargs):
        super().__init__(**kwargs)
        self.far = float(far)
        self.add_state("emb", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, embeddings: torch.Tensor, labels) -> None:
        self.emb.append(embeddings.detach().double())
        self.labels.append(torch.as_tensor(labels).reshape(-1).long().to(embeddings.device))

    def compute(self) -> dict[str, torch.Tensor]:
        from condsynth.metrics.base import count, scalar
        emb, labels = (torch.cat(v) if isinstance(v, list) else v for v in (self.emb, self.labels))
        r = tar_at_far(emb.cpu().numpy(), labels.cpu().numpy(), self.far)
        return {k: (count(v) if k.endswith("_pairs") else scalar(v)) for k, v in r.items()}
