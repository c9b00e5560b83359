"""Pixel and feature reconstruction losses: masked L1/L2, total variation, feature matching.

Mask convention: a mask *selects* the pixels a loss is computed on (1 = counted, 0 = ignored,
fractions weight). The specs' hole mask M (1 = missing) is passed as is for a hole-only loss, and
as ``1 - M`` for the known region.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

REDUCTIONS = ("mean", "per_sample", "sum", "none")


class MaskedRecon(nn.Module):
    """L1 or squared-L2 reconstruction, optionally restricted to a region.

    Used by pix2pix (L1, lambda 100), CycleGAN's cycle and identity terms (L1), T2's hole content
    term (squared L2 on the hole), T5 and X2Face.

    ``distance``: ``"l1"`` (|x - y|) or ``"l2"`` (the squared error (x - y)^2; ``"mse"`` is an alias).
    ``reduction``: ``"mean"`` averages over the counted elements: with a mask, the sum of the
    masked error divided by the mask's total weight (broadcast over channels), so the loss does not
    shrink when the hole does; without one, the plain mean. ``"per_sample"`` is the same average
    taken per sample (over all dimensions but the first), one value per sample, for losses that
    score images one by one (the painting agent's rewards). ``"sum"`` sums the (masked) error, as
    T3 and T6 report. ``"none"`` returns the (masked) per-element error.
    ``truncate``: each element's error is clamped at this value before masking, min(err, lambda),
    so that a few very wrong pixels cannot dominate (the painting agent's truncated L1, Eq. 6.4
    and 6.6). None: no truncation.
    ``normalize`` (for ``"mean"`` and ``"per_sample"`` with a mask): ``"mask"`` divides by the
    mask's weight as described above; ``"elements"`` by the number of elements, so the mask
    weights the error rather than selecting a region (the painting agent's feature mask f_mask,
    whose mean(min(|C - I|, lambda) * f_mask) is Eq. 6.4's first term).
    ``mask``: N x 1 x H x W or N x C x H x W (or anything broadcastable to the inputs).
    """

    def __init__(self, distance: str = "l1", reduction: str = "mean", truncate: float | None = None,
                 normalize: str = "mask"):
        super().__init__()
        distance = {"mse": "l2"}.get(distance, distance)
        if distance not in ("l1", "l2"):
            raise ValueError(f"distance must be l1 or l2, got '{distance}'")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got '{reduction}'")
        if normalize not in ("mask", "elements"):
            raise ValueError(f"normalize must be mask or elements, got '{normalize}'")
        self.distance = distance
        self.reduction = reduction
        self.truncate = truncate
        self.normalize = normalize

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"reconstruction needs inputs of the same shape, got {tuple(x.shape)} and "
                             f"{tuple(y.shape)}")
        diff = x - y
        err = diff.abs() if self.distance == "l1" else diff.pow(2)
        if self.truncate is not None:
            err = err.clamp(max=self.truncate)
        if mask is not None:
            mask = mask.to(err.dtype)
            weighted = err * mask
        else:
            weighted = err
        if self.reduction == "none":
            return weighted
        if self.reduction == "sum":
            return weighted.sum()
        per_sample = self.reduction == "per_sample"
        if mask is None or self.normalize == "elements":
            return weighted.flatten(1).mean(1) if per_sample else weighted.mean()
        # Mask weight per element of err: a 1-channel mask counts once per channel.
        count = torch.broadcast_to(mask, err.shape)
        if per_sample:
            return weighted.flatten(1).sum(1) / count.flatten(1).sum(1).clamp_min(1e-8)
        return weighted.sum() / count.sum().clamp_min(1e-8)


def masked_l1(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None,
              reduction: str = "mean") -> torch.Tensor:
    return MaskedRecon("l1", reduction)(x, y, mask)


def masked_l2(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None,
              reduction: str = "mean") -> torch.Tensor:
    return MaskedRecon("l2", reduction)(x, y, mask)


class TVLoss(nn.Module):
    """Total variation, T2's Upsilon(x) = sum_ij (x_{i,j+1} - x_{i,j})^2 + (x_{i+1,j} - x_{i,j})^2 (Eq. 2.5).

    ``power=2`` is that squared form; ``power=1`` the anisotropic L1 form. ``reduction="sum"``
    matches the equation (per batch); ``"mean"`` divides by the number of pixel differences, which
    keeps the weight independent of the resolution.
    """

    def __init__(self, power: int = 2, reduction: str = "sum"):
        super().__init__()
        if power not in (1, 2):
            raise ValueError(f"power must be 1 or 2, got {power}")
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be sum or mean, got '{reduction}'")
        self.power = power
        self.reduction = reduction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dx = x[..., :, 1:] - x[..., :, :-1]
        dy = x[..., 1:, :] - x[..., :-1, :]
        if self.power == 1:
            dx, dy = dx.abs(), dy.abs()
        else:
            dx, dy = dx.pow(2), dy.pow(2)
        if self.reduction == "sum":
            return dx.sum() + dy.sum()
        return (dx.sum() + dy.sum()) / max(dx.numel() + dy.numel(), 1)


class FeatureMatchingLoss(nn.Module):
    """pix2pixHD's discriminator feature matching (Wang et al. 2018, Eq. 4; spec-translation §2.8).

    L_FM = sum_k sum_i (4 / (n_layers + 1)) * (1 / num_D) * mean |D_k^(i)(s, y) - D_k^(i)(s, G(s))|,
    over the intermediate features i of each discriminator k; the last entry of each list (the
    output logits) is excluded, as in pix2pixHD. Real features are detached: this term trains G only.

    Inputs are lists (one per discriminator) of lists of feature tensors, e.g. what a
    multi-scale PatchGAN returns with ``return_features=True``. A single discriminator's flat
    list of tensors is accepted too. ``n_layers`` defaults to the number of intermediate features
    minus one, which is pix2pixHD's ``n_layers_D`` for its NLayer discriminator (n_layers convs
    + 1 final conv give n_layers + 2 outputs, of which n_layers + 1 are intermediate).
    """

    def __init__(self, n_layers: int | None = None, include_last: bool = False):
        super().__init__()
        self.n_layers = n_layers
        self.include_last = include_last

    def forward(self, fake_feats: Sequence, real_feats: Sequence) -> torch.Tensor:
        if fake_feats and isinstance(fake_feats[0], torch.Tensor):
            fake_feats, real_feats = [fake_feats], [real_feats]
        if len(fake_feats) != len(real_feats):
            raise ValueError(f"{len(fake_feats)} discriminators for fake but {len(real_feats)} for real")
        num_d = len(fake_feats)
        total = None
        for fake_k, real_k in zip(fake_feats, real_feats):
            if len(fake_k) != len(real_k):
                raise ValueError("fake and real feature lists differ in length")
            used = len(fake_k) if self.include_last else len(fake_k) - 1
            n_layers = self.n_layers if self.n_layers is not None else max(used - 1, 0)
            layer_weight = 4.0 / (n_layers + 1)
            for f, r in zip(fake_k[:used], real_k[:used]):
                term = layer_weight / num_d * (f - r.detach()).abs().mean()
                total = term if total is None else total + term
        if total is None:
            raise ValueError("no features to match")
        return total
