"""PatchGAN discriminators (pix2pix §3.2.2; pix2pixHD's multi-scale stack).

``PatchDiscriminator(n_layers=3)`` is the 70x70 PatchGAN: C64-C128-C256-C512(stride 1)-conv->1,
4x4 kernels, LeakyReLU 0.2, no norm on the first layer. ``n_layers=0`` is the 1x1 PixelGAN,
``n_layers=1`` the 16x16 PatchGAN, ``n_layers=5`` the 286x286 one (spec-translation §2.6). The
output is a map of logits, one per overlapping patch; losses average over it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from condsynth.nn.blocks import make_norm, norm_uses_bias


def receptive_field(n_layers: int) -> int:
    """Receptive field (pixels) of a PatchDiscriminator: 1, 16, 34, 70, 142, 286 for 0..5 layers."""
    if n_layers == 0:
        return 1
    rf = 1
    # layers from the output back to the input: final conv k4 s1, the stride-1 C block k4 s1,
    # then (n_layers) k4 s2 blocks.
    for k, s in [(4, 1), (4, 1)] + [(4, 2)] * n_layers:
        rf = rf * s + (k - s)
    return rf


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 spectral_norm: bool = False, return_features: bool = False):
        super().__init__()
        self.return_features = return_features
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        bias = norm_uses_bias(norm)
        blocks: list[nn.Module] = []
        if n_layers == 0:  # PixelGAN: 1x1 convs (pix2pix's "pixel" D)
            blocks = [
                nn.Sequential(sn(nn.Conv2d(in_channels, ndf, 1)), nn.LeakyReLU(0.2, True)),
                nn.Sequential(sn(nn.Conv2d(ndf, ndf * 2, 1, bias=bias)), make_norm(norm, ndf * 2),
                              nn.LeakyReLU(0.2, True)),
                nn.Sequential(sn(nn.Conv2d(ndf * 2, 1, 1))),
            ]
        else:
            blocks.append(nn.Sequential(sn(nn.Conv2d(in_channels, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, True)))
            mult = 1
            for n in range(1, n_layers + 1):
                prev, mult = mult, min(2 ** n, 8)
                stride = 2 if n < n_layers else 1  # the last C block keeps the resolution
                blocks.append(nn.Sequential(
                    sn(nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias)),
                    make_norm(norm, ndf * mult), nn.LeakyReLU(0.2, True)))
            blocks.append(nn.Sequential(sn(nn.Conv2d(ndf * mult, 1, 4, 1, 1))))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor):
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats if self.return_features else x


class MultiScaleDiscriminator(nn.Module):
    """``num_d`` PatchDiscriminators on the input downsampled by 1, 2, 4, ... (pix2pixHD).

    Returns a list (one entry per scale) of logit maps, or of feature lists if
    ``return_features`` (for the feature-matching loss).
    """

    def __init__(self, num_d: int = 3, **patch_kwargs):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(**patch_kwargs) for _ in range(num_d))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list:
        outs = []
        for i, d in enumerate(self.scales):
            if i > 0:
                x = self.downsample(x)
            outs.append(d(x))
        return outs
