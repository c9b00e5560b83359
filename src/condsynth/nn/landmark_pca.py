"""The landmark PCA of the audio-to-landmark network (AT-net, spec §2.7 [I:ATVGnet]).

AT-net predicts landmark *coefficients* rather than 136 coordinates: landmarks (68 x 2, flattened
as x0, y0, x1, y1, ...) are scaled by ``scale`` (5 in ATVGnet), the mean is subtracted, and the
top ``k`` (6) principal directions ``U[:, :k]`` are kept. Projection: ``c = (5 L - mean) U_k``;
back-projection: ``L = (c U_k^T + mean) / 5``. ATVGnet fits it on about 80k training landmarks.

:meth:`LandmarkPCA.fit` fits it from an ``N x 68 x 2`` array (any units: the toolkit uses
``p / (S/2) - 1`` on aligned crops of side S, spec §2.2's normalisation, see
:func:`normalise_landmarks`); it is an ``nn.Module`` whose buffers (``mean``, ``components``,
``variance``) travel in a method's safetensors checkpoint like any weights.
"""

from __future__ import annotations

import torch
from torch import nn


def normalise_landmarks(points: torch.Tensor, size: int) -> torch.Tensor:
    """Crop pixels -> about [-1, 1]: ``p / (size / 2) - 1`` (spec §2.2: (p / 64) - 1 at 128)."""
    return points / (size / 2) - 1


class LandmarkPCA(nn.Module):
    def __init__(self, k: int = 6, n_points: int = 68, scale: float = 5.0):
        super().__init__()
        self.k, self.scale = k, float(scale)
        self.register_buffer("mean", torch.zeros(2 * n_points))
        self.register_buffer("components", torch.zeros(2 * n_points, k))   # U[:, :k], orthonormal columns
        self.register_buffer("variance", torch.zeros(k))                   # explained variance per component
        self.register_buffer("total_variance", torch.zeros(()))

    @classmethod
    def fit(cls, points, k: int = 6, scale: float = 5.0) -> LandmarkPCA:
        """Fit on ``N x 68 x 2`` landmarks (N >= k + 1)."""
        x = torch.as_tensor(points, dtype=torch.float64).reshape(len(points), -1) * scale
        if len(x) <= k:
            raise ValueError(f"the landmark PCA needs more than k={k} landmark sets, got {len(x)}")
        pca = cls(k, x.shape[1] // 2, scale)
        mean = x.mean(0)
        u, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
        var = s ** 2 / (len(x) - 1)
        comps = vt[:k].T
        # a sign convention, so that a refit on the same data gives the same coefficients
        comps = comps * torch.sign(comps[comps.abs().argmax(0), torch.arange(k)])
        pca.mean.copy_(mean.float())
        pca.components.copy_(comps.float())
        pca.variance.copy_(var[:k].float())
        pca.total_variance.copy_(var.sum().float())
        return pca

    def explained(self) -> torch.Tensor:
        """The share of the total variance that each kept component explains."""
        return self.variance / self.total_variance.clamp_min(1e-12)

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """``... x 68 x 2`` landmarks -> ``... x k`` coefficients."""
        flat = points.reshape(*points.shape[:-2], -1) * self.scale
        return (flat - self.mean) @ self.components

    def reconstruct(self, coeffs: torch.Tensor, amplify=None) -> torch.Tensor:
        """``... x k`` coefficients -> ``... x 68 x 2`` landmarks. ``amplify`` (k factors) multiplies the
        coefficients first: ATVGnet's demo uses 2 * [1.1, 1.2, 1.3, 1.4, 1.5] on 1-5 (spec §2.7, default off)."""
        if amplify is not None:
            coeffs = coeffs * torch.as_tensor(amplify, dtype=coeffs.dtype, device=coeffs.device)
        flat = (coeffs @ self.components.T + self.mean) / self.scale
        return flat.reshape(*coeffs.shape[:-1], -1, 2)
