"""Small building blocks every generator and discriminator here is made of.

The layer codes of pix2pix/CycleGAN (``Ck``, ``CDk``, ``c7s1-k``, ``dk``, ``uk``) are all a
:class:`ConvNormAct` with different settings, so each network file can be written as the paper's
table of layers. Further down: the landmark encoder and mask blending of the face methods, and the
small pieces of the painting agent's networks (:class:`BNResBlock`, :class:`TReLU`,
:func:`coord_planes`), bilinear :func:`resize` and the target-network :func:`soft_update`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

NormName = Literal["batch", "instance", "none"]
ActName = Literal["relu", "lrelu", "elu", "tanh", "sigmoid", "none"]


def make_norm(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        # pix2pix/CycleGAN use InstanceNorm without learned affine or running stats.
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{name}' (batch, instance, none)")


def make_activation(name: str) -> nn.Module:
    return {
        "relu": lambda: nn.ReLU(inplace=True),
        "lrelu": lambda: nn.LeakyReLU(0.2, inplace=True),
        "elu": lambda: nn.ELU(inplace=True),
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "none": nn.Identity,
    }[name]()


def norm_uses_bias(norm: str) -> bool:
    """A conv followed by BatchNorm needs no bias (BN's shift replaces it); InstanceNorm without
    affine does need it, as in the reference code."""
    return norm != "batch"


class ConvNormAct(nn.Sequential):
    """conv (or transposed conv) -> norm -> dropout -> activation."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, padding: int | None = None,
                 dilation: int = 1, norm: str = "batch", act: str = "relu", dropout: float = 0.0,
                 transposed: bool = False, pad_mode: Literal["zeros", "reflect", "replicate"] = "zeros",
                 bias: bool | None = None):
        if padding is None:
            padding = dilation * (kernel - 1) // 2
        bias = norm_uses_bias(norm) if bias is None else bias
        if transposed:
            conv = nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, bias=bias, dilation=dilation)
        else:
            conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation=dilation, bias=bias,
                             padding_mode=pad_mode)
        layers = [conv, make_norm(norm, out_ch)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(make_activation(act))
        super().__init__(*layers)


def init_weights(module: nn.Module, kind: Literal["normal", "xavier", "kaiming", "orthogonal"] = "normal",
                 gain: float = 0.02) -> nn.Module:
    """The pix2pix/CycleGAN initialisation: conv weights N(0, gain), norm weights N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


# ==================================================================================================================
# Landmark encoder and mask blending (the thesis's LDcGAN and AVWnet generators)
# ==================================================================================================================


class LandmarkEncoder(nn.Module):
    """Facial landmarks -> a feature map: "a linear layer with ReLU activation and a Conv layer" (thesis §4.4.1 for
    LDcGAN's H_l^1, N_i x 16 x 16; §5.4.1 for AVWnet's E_l, N_l x 8 x 8).

    ``flatten(L)`` (``n_points * 2`` values, x and y interleaved per point) -> Linear(n_points * 2, in_channels *
    size^2) -> ReLU -> reshape ``in_channels x size x size`` -> conv ``kernel`` (in_channels -> channels) -> norm ->
    activation. ``in_channels`` defaults to ``channels``. The two readings:

    - LDcGAN (spec §4.3): ``LandmarkEncoder(68, 16, 16)``: Linear(136, 4096), reshape 16x16x16, conv 3x3 16 -> 16;
    - AVWnet (spec §2.4, ATVGnet's landmark encoder): ``LandmarkEncoder(68, 256, 8, in_channels=1, norm="batch",
      act="relu")``: Linear(136, 64), reshape 1x8x8, conv 3x3 1 -> 256, BN, ReLU.

    Input ``... x n_points x 2`` or ``... x (n_points * 2)``; any leading dims (a batch of T-frame streams shares the
    weights, as AVWnet's 16 frame encoders do); output ``... x channels x size x size``."""

    def __init__(self, n_points: int = 68, channels: int = 16, size: int = 16, in_channels: int | None = None,
                 kernel: int = 3, norm: str = "none", act: str = "none"):
        super().__init__()
        self.n_points, self.size = n_points, size
        self.in_channels = channels if in_channels is None else in_channels
        self.fc = nn.Linear(n_points * 2, self.in_channels * size * size)
        self.conv = nn.Conv2d(self.in_channels, channels, kernel, 1, (kernel - 1) // 2, bias=norm_uses_bias(norm))
        self.post = nn.Sequential(make_norm(norm, channels), make_activation(act))

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        n = self.n_points * 2
        if landmarks.shape[-2:] == (self.n_points, 2):
            lead = landmarks.shape[:-2]
        elif landmarks.shape[-1] == n:
            lead = landmarks.shape[:-1]
        else:
            raise ValueError(f"landmarks of shape {tuple(landmarks.shape)}: expected ... x {self.n_points} x 2 or "
                             f"... x {n}")
        h = F.relu(self.fc(landmarks.reshape(-1, n)))
        h = self.post(self.conv(h.view(-1, self.in_channels, self.size, self.size)))
        return h.view(*lead, *h.shape[1:])


def mask_blend(mask: torch.Tensor, content: torch.Tensor, base: torch.Tensor, *,
               mask_selects: Literal["content", "base"]) -> torch.Tensor:
    """Blend ``content`` and ``base`` with a mask in [0, 1] (broadcast, e.g. ``B x 1 x H x W`` over channels). The
    thesis uses both conventions, so the caller says which one:

    - ``mask_selects="content"``: ``mask * content + (1 - mask) * base``. AVWnet Eq. 5.5,
      ``I~ = f_gray * f_colour + (1 - f_gray) * I*``: f_gray = 1 takes the generated colour, 0 keeps the example
      image I*; also its feature gates, Eq. 5.4, ``f_0 = f_attn0 * v_0 + (1 - f_attn0) * i^32``.
    - ``mask_selects="base"``: ``(1 - mask) * content + mask * base``. LDcGAN Eq. 4.4,
      ``I* = (1 - f_A) * f_C + f_A * I``: f_A = 1 keeps the input pixel I (the GANimation convention; the thesis's
      prose says the reverse, the formula wins, spec §4.4).

    At mask 0 and 1 the result is exactly one input (no ``base + mask * (content - base)`` rounding)."""
    if mask_selects == "content":
        return mask * content + (1 - mask) * base
    if mask_selects == "base":
        return (1 - mask) * content + mask * base
    raise ValueError(f"unknown mask_selects '{mask_selects}' (content, base)")


# ==================================================================================================================
# Residual block, TReLU, CoordConv planes, resizing, target-network updates (the painting agent; LearningToPaint)
# ==================================================================================================================


class BNResBlock(nn.Module):
    """relu(x + BN(conv(relu(BN(conv(x)))))): the classic post-activation residual block with
    biased 3x3 convs (the painting attention module's feature branch). Unlike
    :class:`~condsynth.nn.resnet_generator.ResBlock` it ends in a ReLU and has no padding options."""

    def __init__(self, channels: int):
        super().__init__()
        c = channels
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class TReLU(nn.Module):
    """ReLU(x - a) + a with a learnable threshold a, initialised to 0 (LearningToPaint's critic)."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x - self.alpha) + self.alpha


def coord_planes(size: int, device=None) -> torch.Tensor:
    """CoordConv planes (i/(S-1), j/(S-1)), ``1 x 2 x S x S`` (row index first)."""
    r = torch.linspace(0, 1, size, device=device)
    return torch.stack(torch.meshgrid(r, r, indexing="ij"))[None]


def resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of an ``N x C x H x W`` batch to ``size`` (square int or ``(h, w)``).

    Anti-aliased when shrinking (a plain bilinear kernel would skip pixels and alias fine detail),
    plain bilinear when enlarging; ``x`` itself when it already has the size."""
    h, w = (size, size) if isinstance(size, int) else size
    if x.shape[-2:] == (h, w):
        return x
    shrink = h < x.shape[-2] or w < x.shape[-1]
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging of a target network, theta' <- (1 - tau) theta' + tau theta (DDPG); buffers
    (BatchNorm statistics) are copied."""
    for pt, ps in zip(target.parameters(), source.parameters()):
        pt.mul_(1 - tau).add_(ps, alpha=tau)
    for bt, bs in zip(target.buffers(), source.buffers()):
        bt.copy_(bs)
