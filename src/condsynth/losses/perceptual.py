"""Perceptual (VGG feature) losses: L = sum_l w_l * dist(phi_l(x), phi_l(y)).

One class, :class:`PerceptualLoss`, with presets for the systems in the specs:

========== ========= ======================================= ============================ ======
preset     backbone  layers                                  weights                      dist
========== ========= ======================================= ============================ ======
pix2pixhd  VGG-19    relu1_1 relu2_1 relu3_1 relu4_1 relu5_1 1/32 1/16 1/8 1/4 1          l1 (*)
edn        VGG-19    same as pix2pixhd (EDN builds on pix2pixHD's VGGLoss)                l1 (*)
sat        VGG-19    relu1_1 relu2_1 relu3_1                 1/32 1/16 1/8                l2sq
stylegan   VGG-16    relu3_3 (Keras block3_conv3)            1                            mse
painting   VGG-16    relu2_2 relu3_3                         1/2 1/2 (averaged)           mse
========== ========= ======================================= ============================ ======

Sources: spec-translation.md §2.8 (pix2pixHD: w = 1/32..1 on VGG-19 relu1_1..relu5_1, L1) and §5
(T4 "sat": relu1_1-3_1, squared L2, 1/32, 1/16, 1/8; T6 "stylegan": VGG-16 block3_conv3, MSE);
spec-avwnet-painting.md §3.6 (L_vgg: mean squared difference at relu2_2 and relu3_3, averaged).

(*) raw [-1, 1] input, see "Input convention" below.

Distances, each averaged over the batch (``reduction="mean"``) or over each sample's elements
(``reduction="per_sample"``, one value per image, as a reward needs):

- ``l1``:   mean over all elements of |a - b|           (pix2pixHD's ``nn.L1Loss``)
- ``mse``:  mean over all elements of (a - b)^2
- ``l2sq``: (1 / (H W)) sum_{h,w} ||a_hw - b_hw||_2^2, the squared L2 norm over channels averaged
  over positions (T4's Eq. 4.4). Equal to ``C * mse``.

Input convention: by default images in [-1, 1] are mapped to the ImageNet normalisation the
torchvision weights were trained with. pix2pixHD's ``VGGLoss`` (and EDN, built on it) feeds its
[-1, 1] images to VGG-19 *without* that normalisation; the ``pix2pixhd`` and ``edn`` presets keep
this (``normalization="none"``) because their loss weight (lambda_VGG = 10) was tuned on those
feature magnitudes. Pass ``normalization="imagenet"`` to override. T6 used Keras' VGG-16 with
Caffe preprocessing; with torchvision's file the matching convention is the ImageNet one (the
default); ``normalization="caffe"`` is for Caffe/Keras weights converted to torchvision's keys.

Layer weights are scalars applied outside the distance (T4's text describes scalar layer weights;
its Eq. 4.4 writes them inside the norm, which would only square them).

The target's features are computed without gradient (``target_requires_grad=False``, as
pix2pixHD's ``.detach()``); pass ``True`` when both inputs should receive gradients. A caller that
compares many images with the same target computes its features once, ``target_features(y)``, and
passes them as ``loss(x, target_features=...)``. ``features=`` shares a :class:`VGGFeatures` that
the caller also reads other layers from (the painting agent's feature masks), instead of building
a second copy of the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from condsynth.nn.vgg import VGGFeatures

PRESETS: dict[str, dict] = {
    # pix2pixHD models/networks.py VGGLoss: raw [-1, 1] input, no ImageNet normalisation.
    "pix2pixhd": dict(backbone="vgg19", layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                      weights=(1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0), distance="l1", normalization="none"),
    "edn": dict(backbone="vgg19", layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                weights=(1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0), distance="l1", normalization="none"),
    "sat": dict(backbone="vgg19", layers=("relu1_1", "relu2_1", "relu3_1"),
                weights=(1 / 32, 1 / 16, 1 / 8), distance="l2sq"),
    "stylegan": dict(backbone="vgg16", layers=("relu3_3",), weights=(1.0,), distance="mse"),
    "painting": dict(backbone="vgg16", layers=("relu2_2", "relu3_3"), weights=(0.5, 0.5), distance="mse"),
}

DISTANCES = ("l1", "mse", "l2sq")
REDUCTIONS = ("mean", "per_sample")


def feature_distance(a: torch.Tensor, b: torch.Tensor, distance: str, reduction: str = "mean") -> torch.Tensor:
    """The distance between two feature maps, a scalar (``"mean"``) or one value per sample."""
    diff = a - b
    if distance == "l1":
        err = diff.abs()
    elif distance == "mse":
        err = diff.pow(2)
    elif distance == "l2sq":
        err = diff.pow(2).sum(dim=1)
    else:
        raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, got '{distance}'")
    return err.flatten(1).mean(1) if reduction == "per_sample" else err.mean()


class PerceptualLoss(nn.Module):
    """Weighted sum of feature distances of a frozen VGG.

    ``forward(x, y)`` returns the loss (a scalar, or a vector of one value per sample with
    ``reduction="per_sample"``); ``per_layer(x, y)`` returns each layer's weighted term too, for
    logging. Either takes ``target_features=`` (from :meth:`target_features`) in place of ``y``.
    Images are in ``input_range`` ([-1, 1] by default); see :mod:`condsynth.nn.vgg` for the
    normalisation applied before the network. With ``features`` (a :class:`VGGFeatures` whose taps
    include ``layers``), that network is used as it is, with its own weights, input range and
    normalisation, and the arguments that would build one are ignored.
    """

    def __init__(self, backbone: str = "vgg19", layers: Sequence[str | int] | None = None,
                 weights: Sequence[float] | None = None, distance: str = "l1", *, pretrained: bool = True,
                 weights_path: str | Path | None = None, weights_sha256: str | None = None,
                 input_range: tuple[float, float] = (-1.0, 1.0),
                 normalization: str = "imagenet", target_requires_grad: bool = False,
                 reduction: str = "mean", features: VGGFeatures | None = None):
        super().__init__()
        if layers is None:
            layers = PRESETS["pix2pixhd"]["layers"]
        layers = list(layers)
        weights = [1.0] * len(layers) if weights is None else [float(w) for w in weights]
        if len(weights) != len(layers):
            raise ValueError(f"{len(layers)} layers but {len(weights)} weights")
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, got '{distance}'")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got '{reduction}'")
        self.layers = [str(layer) for layer in layers]
        self.weights = weights
        self.distance = distance
        self.reduction = reduction
        self.target_requires_grad = target_requires_grad
        if features is None:
            features = VGGFeatures(backbone, layers, pretrained=pretrained, weights_path=weights_path,
                                   weights_sha256=weights_sha256,
                                   input_range=input_range, normalization=normalization)
        elif features.arch != backbone or not set(self.layers) <= set(features.taps):
            raise ValueError(f"the shared feature network is a {features.arch} with taps {features.taps}; "
                             f"this loss needs a {backbone} with {self.layers}")
        self.vgg = features

    @classmethod
    def from_preset(cls, name: str, **kwargs) -> "PerceptualLoss":
        """``PerceptualLoss.from_preset("pix2pixhd", pretrained=False)``; kwargs override the preset."""
        if name not in PRESETS:
            raise ValueError(f"unknown perceptual-loss preset '{name}'; known: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **kwargs})

    def train(self, mode: bool = True) -> "PerceptualLoss":
        # The feature network stays in eval mode whatever the surrounding model does.
        super().train(mode)
        self.vgg.eval()
        return self

    def target_features(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The target's features at the loss's layers, to compare many inputs with one target at
        the cost of one pass through the network."""
        with torch.set_grad_enabled(self.target_requires_grad and torch.is_grad_enabled()):
            feats = self.vgg(y)
        return {layer: feats[layer] for layer in self.layers}

    def per_layer(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
                  target_features: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        if (y is None) == (target_features is None):
            raise ValueError("pass either the target image y or its target_features")
        if y is not None and x.shape != y.shape:
            raise ValueError(f"perceptual loss needs inputs of the same shape, got {tuple(x.shape)} and "
                             f"{tuple(y.shape)}")
        fx = self.vgg(x)
        fy = self.target_features(y) if target_features is None else target_features
        for layer in self.layers:
            if fx[layer].shape != fy[layer].shape:
                raise ValueError(f"target features at {layer} are {tuple(fy[layer].shape)}, the input's "
                                 f"{tuple(fx[layer].shape)}")
        return {layer: w * feature_distance(fx[layer], fy[layer], self.distance, self.reduction)
                for layer, w in zip(self.layers, self.weights)}

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
                target_features: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        return torch.stack(list(self.per_layer(x, y, target_features=target_features).values())).sum(0)

    def extra_repr(self) -> str:
        return f"layers={self.layers}, weights={self.weights}, distance={self.distance}, reduction={self.reduction}"
