"""Layer-streamed tiled inference (nn/tiled.py) against whole-image inference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from condsynth.nn.blocks import ConvNormAct
from condsynth.nn.resnet_generator import ResBlock, ResnetGenerator
from condsynth.nn.tiled import local_enhancer_handler, register_handler, tiled_forward

TOL = 1e-5


def _randomise(net: nn.Module, seed: int = 0) -> nn.Module:
    """Weights large enough that every layer matters (the N(0, 0.02) init makes outputs ~0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (1.0 / max(1, p[0].numel()) ** 0.5))
    return net.eval()


def _max_diff(net, x, tile, **kw):
    with torch.no_grad():
        whole = net(x)
    tiled = tiled_forward(net, x, tile=tile, **kw)
    assert tiled.shape == whole.shape and tiled.dtype == whole.dtype
    return (tiled - whole).abs().max().item(), whole


@pytest.mark.parametrize("n_down, tile, size, padding, dilation", [
    (2, 7, (20, 28), "reflect", 1),         # odd tile, non-square, several tiles on every level
    (2, 5, (24, 16), "zero", 2),            # zero padding, dilated blocks
    (4, 13, (96, 64), "reflect", 1),        # pix2pixHD's G1 depth, a 6 x 4 bottleneck
    (4, 9, (64, 96), "replicate", 2),
])
def test_tiled_equals_whole_image(n_down, tile, size, padding, dilation):
    net = _randomise(ResnetGenerator(3, 3, ngf=4, n_down=n_down, n_blocks=2, padding=padding, dilation=dilation,
                                     max_channels=16), seed=n_down + tile)
    x = torch.rand(2, 3, *size) * 2 - 1
    diff, whole = _max_diff(net, x, tile)
    assert diff < TOL
    assert whole.std() > 0.1                # the comparison is not between two near-constant maps
    # In float64 the two agree to rounding of the float64 sums: the tiling itself is exact. (In
    # float32 the whole-image result is itself ~1e-5 from the float64 one: the instance norms of
    # a few-pixel bottleneck amplify rounding, which is why TOL is not tighter.)
    assert _max_diff(net.double(), x.double(), tile)[0] < 1e-10


def test_naive_tiles_differ_so_the_test_can_fail():
    """Running the generator on two halves (each with its own instance statistics) is far off."""
    net = _randomise(ResnetGenerator(3, 3, ngf=4, n_down=2, n_blocks=1))
    x = torch.rand(1, 3, 16, 32) * 2 - 1
    x[..., 16:] = x[..., 16:] * 0.2 + 0.5   # the two halves have different statistics
    with torch.no_grad():
        whole, naive = net(x), torch.cat([net(x[..., :16]), net(x[..., 16:])], dim=-1)
    assert (whole - naive).abs().max() > 0.05
    assert (tiled_forward(net, x, tile=5) - whole).abs().max() < TOL


def test_affine_instance_norm_pools_resize_upsampling_and_features():
    net = _randomise(ResnetGenerator(3, 2, ngf=4, n_down=2, n_blocks=1, upsample="resize", return_features=True))
    x = torch.rand(1, 3, 20, 12)
    with torch.no_grad():
        out, feats = net(x)
    t_out, t_feats = tiled_forward(net, x, tile=3)
    assert (t_out - out).abs().max() < TOL
    for k in ("bottleneck", "last"):
        assert (t_feats[k] - feats[k]).abs().max() < TOL

    seq = _randomise(nn.Sequential(
        nn.Conv2d(3, 4, 5, stride=2, padding=2, padding_mode="reflect"), nn.InstanceNorm2d(4, affine=True),
        nn.LeakyReLU(0.2), nn.MaxPool2d(3, 2, 1), nn.Conv2d(4, 4, 3, padding="same", dilation=2), nn.ELU(),
        nn.AvgPool2d(3, 2, 1, count_include_pad=False), nn.AvgPool2d(2, ceil_mode=True),
        nn.ConvTranspose2d(4, 3, 4, stride=3, padding=1, output_padding=2), nn.BatchNorm2d(3), nn.Tanh()))
    with torch.no_grad():
        seq[9].running_mean.uniform_(-1, 1), seq[9].running_var.uniform_(0.5, 2)
    for tile in (1, 2, 7):
        assert _max_diff(seq, torch.rand(2, 3, 37, 29), tile)[0] < TOL


def test_input_is_not_modified_and_storage_device():
    net = _randomise(ResnetGenerator(3, 3, ngf=4, n_down=1, n_blocks=1, stem=False))   # first layer reads x
    x = torch.rand(1, 3, 10, 14) * 2 - 1
    before = x.clone()
    diff, _ = _max_diff(net, x, 4, storage="cpu")
    assert diff < TOL and torch.equal(x, before)


class _LocalEnhancer(nn.Module):
    """Stand-in with pix2pixHD's G2 layout (the real class lives in the pix2pixHD model files)."""

    def __init__(self, in_ch=3, out_ch=3, ngf=4):
        super().__init__()
        self.global_net = ResnetGenerator(in_ch, out_ch, ngf=2 * ngf, n_down=2, n_blocks=1, return_features=True)
        self.downsample = nn.AvgPool2d(3, 2, 1, count_include_pad=False)
        self.front = nn.Sequential(ConvNormAct(in_ch, ngf, 7, norm="instance", pad_mode="reflect"),
                                   ConvNormAct(ngf, 2 * ngf, 3, stride=2, norm="instance"))
        self.back = nn.Sequential(*[ResBlock(2 * ngf) for _ in range(3)],
                                  nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, output_padding=1),
                                  nn.InstanceNorm2d(ngf), nn.ReLU(True),
                                  nn.Conv2d(ngf, out_ch, 7, padding=3, padding_mode="reflect"), nn.Tanh())

    def forward(self, x):
        _, feats = self.global_net(self.downsample(x))
        return self.back(self.front(x) + feats["last"])


def test_local_enhancer_structure():
    register_handler(_LocalEnhancer, local_enhancer_handler)
    net = _randomise(_LocalEnhancer())
    x = torch.rand(1, 3, 24, 40) * 2 - 1
    diff, whole = _max_diff(net, x, 11)
    assert diff < TOL and whole.std() > 0.1


def test_unsupported_modules_raise_naming_the_type():
    class Mystery(nn.Module):
        def forward(self, x):
            return x.flip(-1)

    with pytest.raises(NotImplementedError, match="Mystery"):
        tiled_forward(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), Mystery()), torch.rand(1, 3, 8, 8), tile=4)

    class MySeq(nn.Sequential):             # a subclass is not walked as a plain Sequential
        def forward(self, x):
            return super().forward(x) * 2

    with pytest.raises(NotImplementedError, match="MySeq"):
        tiled_forward(MySeq(nn.ReLU()), torch.rand(1, 3, 8, 8))
    drop = ResnetGenerator(3, 3, ngf=4, n_down=1, n_blocks=1, dropout=0.5).train()
    with pytest.raises(NotImplementedError, match="Dropout in training mode"):
        tiled_forward(drop, torch.rand(1, 3, 8, 8))
    with pytest.raises(NotImplementedError, match="BatchNorm2d"):
        tiled_forward(nn.Sequential(nn.BatchNorm2d(3)).train(), torch.rand(1, 3, 8, 8))
