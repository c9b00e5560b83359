"""Small building blocks every generator and discriminator here is made of.

The layer codes of pix2pix/CycleGAN (``Ck``, ``CDk``, ``c7s1-k``, ``dk``, ``uk``) are all a
:class:`ConvNormAct` with different settings, so each network file can be written as the paper's
table of layers.
"""

from __future__ import annotations

from typing import Literal

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
