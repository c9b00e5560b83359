"""PatchDiscriminator's ``padding`` option: 1 (pix2pix, unchanged default) or 2 (pix2pixHD's padw = ceil(3 / 2))."""

from __future__ import annotations

import math

import pytest
import torch

from condsynth.nn.discriminators import MultiScaleDiscriminator, PatchDiscriminator


def patch_map_size(size: int, n_layers: int, padding: int) -> int:
    """NVIDIA/pix2pixHD NLayerDiscriminator: conv k4 s2 (first), n_layers - 1 more k4 s2, a k4 s1, the k4 s1 logit
    conv, each padded by ``padding``: out = floor((in + 2p - 4) / s) + 1."""
    for stride in [2] * n_layers + [1, 1]:
        size = (size + 2 * padding - 4) // stride + 1
    return size


def test_pix2pixhd_padding_formula():
    assert math.ceil((4 - 1.0) / 2) == 2                          # padw of pix2pixHD's 4x4 convs
    assert patch_map_size(256, 3, 1) == 30 and patch_map_size(256, 3, 2) == 35


@pytest.mark.parametrize("size, n_layers", [(256, 3), (64, 3), (48, 2)])
def test_output_size_for_both_paddings(size, n_layers):
    x = torch.randn(1, 6, size, size)
    for padding in (1, 2):
        d = PatchDiscriminator(6, ndf=2, n_layers=n_layers, padding=padding)
        side = patch_map_size(size, n_layers, padding)
        assert d(x).shape == (1, 1, side, side)


def test_default_is_unchanged():
    default, explicit = PatchDiscriminator(6, ndf=2), PatchDiscriminator(6, ndf=2, padding=1)
    assert all(c.padding == (1, 1) for c in default.modules() if isinstance(c, torch.nn.Conv2d))
    assert {k: v.shape for k, v in default.state_dict().items()} == {k: v.shape
                                                                      for k, v in explicit.state_dict().items()}
    assert default(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)


def test_multiscale_passes_padding_to_every_scale():
    d = MultiScaleDiscriminator(num_d=3, in_channels=3, ndf=2, n_layers=3, padding=2)
    assert all(c.padding == (2, 2) for c in d.modules() if isinstance(c, torch.nn.Conv2d))
    outs = d(torch.randn(1, 3, 128, 128))
    assert [o.shape[-1] for o in outs] == [patch_map_size(s, 3, 2) for s in (128, 64, 32)]
