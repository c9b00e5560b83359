"""The ResNet generator family: CycleGAN's G, pix2pixHD's global generator G1, and the dilated
heads of the thesis chapters T3 and T4 (spec-translation §2.7, §2.8, §2.2, §2.3, §5 "G1").

Layout, in the CycleGAN/pix2pixHD layer codes::

    c7s1-ngf, d(2 ngf), ..., d(2^n_down ngf), n_blocks x R(2^n_down ngf), u(...), ..., u(ngf), c7s1-out

- ``c7s1-k``: 7x7 conv, stride 1, padded by 3 (reflection by default), norm, ReLU.
- ``dk``: 3x3 conv, stride 2, padding 1 (zeros, as in both reference implementations), norm, ReLU.
- ``Rk``: :class:`ResBlock`, two 3x3 convs (optionally dilated) with a skip connection.
- ``uk``: 3x3 transposed conv, stride 2, padding 1, output padding 1, norm, ReLU; or, with
  ``upsample="resize"``, a nearest x2 resize then a 3x3 conv (the "interpolated" variant of
  T3's Fig. 3.7, which avoids checkerboard artefacts).
- The output layer: 7x7 conv (no norm) and ``out_activation`` (tanh).

Configurations from the specs:

======================= ====== ======== ========= ========== ================
system                  n_down n_blocks norm      dilation   padding
======================= ====== ======== ========= ========== ================
CycleGAN 256 (128)      2      9 (6)    instance  1          reflect
pix2pixHD G1            4      9        instance  1          reflect
T4 G0                   2      9        batch     2          reflect [R]
T3 G0                   3      9        batch     2          reflect [R]
======================= ====== ======== ========= ========== ================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.nn.blocks import ConvNormAct, make_activation, make_norm, norm_uses_bias

_PAD_MODES = {"reflect": "reflect", "zero": "zeros", "zeros": "zeros", "replicate": "replicate"}


def _pad_mode(padding: str) -> str:
    if padding not in _PAD_MODES:
        raise ValueError(f"padding must be reflect, zero or replicate, got '{padding}'")
    return _PAD_MODES[padding]


class ResBlock(nn.Module):
    """x + [conv3x3 -> norm -> ReLU -> (dropout) -> conv3x3 -> norm](x), channels kept.

    With ``dilation`` d both convs are dilated by d and padded by d, so the size is kept and the
    receptive field grows (T3: "every conv is dilated (dilation 2)").
    """

    def __init__(self, dim: int, dilation: int = 1, norm: str = "instance", padding: str = "reflect",
                 dropout: float = 0.0):
        super().__init__()
        mode = _pad_mode(padding)
        self.body = nn.Sequential(
            ConvNormAct(dim, dim, 3, dilation=dilation, norm=norm, act="relu", dropout=dropout, pad_mode=mode),
            ConvNormAct(dim, dim, 3, dilation=dilation, norm=norm, act="none", pad_mode=mode),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _ResizeConv(nn.Module):
    """Nearest-neighbour x2 upsampling followed by a 3x3 conv, norm and ReLU."""

    def __init__(self, in_ch: int, out_ch: int, norm: str, pad_mode: str):
        super().__init__()
        self.conv = ConvNormAct(in_ch, out_ch, 3, norm=norm, act="relu", pad_mode=pad_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def _transposed_up(in_ch: int, out_ch: int, norm: str) -> nn.Sequential:
    # k3 s2 p1 with output_padding 1 exactly doubles the size (CycleGAN / pix2pixHD "uk").
    return nn.Sequential(
        nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1, bias=norm_uses_bias(norm)),
        make_norm(norm, out_ch), make_activation("relu"))


class ResnetGenerator(nn.Module):
    """Encoder (stem + ``n_down`` stride-2 convs), ``n_blocks`` residual blocks, mirrored decoder.

    Arguments beyond the table in the module docstring:
    ``stem``: keep the 7x7 ``c7s1-ngf`` stem (T3 makes it optional); without it the first
    stride-2 conv reads the input directly. ``max_channels`` caps the widths (None: no cap, as in
    pix2pixHD whose bottleneck is 1024 wide). ``dropout``: inside the residual blocks (CycleGAN's
    ``--use_dropout``). ``out_activation``: ``"tanh"`` (images in [-1, 1]), ``"sigmoid"`` or ``"none"``.
    ``return_features``: forward returns ``(output, {"bottleneck": ..., "last": ...})``, where
    "last" is the ``ngf``-wide map before the output layer (what pix2pixHD's local enhancer adds to
    its own features) and "bottleneck" the output of the residual blocks.

    Input sides must be divisible by :attr:`stride`; with reflection padding the bottleneck must
    also be larger than the dilation (e.g. at least 4x4 for dilation 2).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_down: int = 2,
                 n_blocks: int = 9, norm: str = "instance", padding: str = "reflect", dilation: int = 1,
                 dropout: float = 0.0, upsample: str = "transposed", out_activation: str = "tanh",
                 stem: bool = True, max_channels: int | None = None, return_features: bool = False):
        super().__init__()
        if n_down < 0 or n_blocks < 0:
            raise ValueError(f"n_down and n_blocks must be >= 0, got {n_down} and {n_blocks}")
        if upsample not in ("transposed", "resize"):
            raise ValueError(f"upsample must be transposed or resize, got '{upsample}'")
        if not stem and n_down == 0:
            raise ValueError("a generator without stem needs n_down >= 1")
        mode = _pad_mode(padding)
        self.n_down = n_down
        self.return_features = return_features

        def width(level: int) -> int:
            w = ngf * 2 ** level
            return min(w, max_channels) if max_channels else w

        # c7s1-ngf: the 7x7 stem, padded by 3 so the size is kept.
        self.stem = ConvNormAct(in_channels, ngf, 7, padding=3, norm=norm, act="relu", pad_mode=mode) \
            if stem else nn.Identity()
        downs = []
        for level in range(n_down):
            cin = (ngf if stem else in_channels) if level == 0 else width(level)
            downs.append(ConvNormAct(cin, width(level + 1), 3, stride=2, padding=1, norm=norm, act="relu"))
        self.down = nn.Sequential(*downs)
        self.blocks = nn.Sequential(*[ResBlock(width(n_down), dilation, norm, padding, dropout)
                                      for _ in range(n_blocks)])
        ups = []
        for level in range(n_down, 0, -1):
            cin, cout = width(level), width(level - 1)
            ups.append(_transposed_up(cin, cout, norm) if upsample == "transposed"
                       else _ResizeConv(cin, cout, norm, mode))
        self.up = nn.Sequential(*ups)
        # c7s1-out: no norm; the output activation maps to the image range.
        self.out = nn.Sequential(
            nn.Conv2d(width(0), out_channels, 7, padding=3, padding_mode=mode),
            make_activation(out_activation))

    @property
    def stride(self) -> int:
        """Inputs must have sides divisible by this (pipelines pad, then crop back)."""
        return 2 ** self.n_down

    def forward(self, x: torch.Tensor):
        bottleneck = self.blocks(self.down(self.stem(x)))
        last = self.up(bottleneck)
        out = self.out(last)
        if self.return_features:
            return out, {"bottleneck": bottleneck, "last": last}
        return out
