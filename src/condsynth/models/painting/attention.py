"""The attention module (thesis Sec. 6.3.3.1): a mask branch times a feature branch gives the
foreground-focused canvas F_t = Att(C_t), trained with Eq. 6.3.

The agent uses F_t twice: as an input of the actor (the focused canvas, upsampled) and in the
focus reward (Eq. 6.6, 6.7), which compares focused canvases before and after a stroke bundle.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.nn.blocks import BNResBlock, ConvNormAct, resize


class AttentionModule(nn.Module):
    """Dual-branch attention: C_focus = H_c(f_attn * alpha * f_f)   (Sec. 6.3.3.1).

    * mask branch: a U-Net (encoder-decoder with skips) -> f_attn, 1 x 64 x 64, sigmoid;
    * feature branch: conv + BN + ReLU and residual blocks that keep the canvas's spatial detail;
    * H_c: two convolutions -> the foreground-focused canvas, 3 x 64 x 64 in [0, 1].

    The thesis initialises the U-Net with ResNet-34 layers; without ImageNet weights here the
    U-Net encoder is a plain conv encoder of width ``unet_width`` (docs/painting.md).
    """

    def __init__(self, width: int = 64, unet_width: int = 32, n_res: int = 4, size: int = 64):
        super().__init__()
        self.size = size
        u = unet_width

        def cbr(i, o, s=1):
            return ConvNormAct(i, o, 3, s, norm="batch", act="relu", bias=True)

        self.e1, self.e2, self.e3 = cbr(3, u), cbr(u, 2 * u, 2), cbr(2 * u, 4 * u, 2)
        self.mid = cbr(4 * u, 4 * u)
        self.d2 = cbr(4 * u + 2 * u, 2 * u)
        self.d1 = cbr(2 * u + u, u)
        self.attn_out = nn.Conv2d(u, 1, 1)
        self.feat = nn.Sequential(cbr(3, width), *[BNResBlock(width) for _ in range(n_res)])
        self.alpha = nn.Parameter(torch.ones(()))
        self.h_c = nn.Sequential(nn.Conv2d(width, 32, 3, 1, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(32, 3, 3, 1, 1))

    def forward(self, canvas: torch.Tensor, return_mask: bool = False):
        x = resize(canvas, self.size)
        e1 = self.e1(x)
        e2 = self.e2(e1)
        m = self.mid(self.e3(e2))
        d2 = self.d2(torch.cat([F.interpolate(m, scale_factor=2, mode="nearest"), e2], 1))
        d1 = self.d1(torch.cat([F.interpolate(d2, scale_factor=2, mode="nearest"), e1], 1))
        f_attn = torch.sigmoid(self.attn_out(d1))
        f_f = self.feat(x)
        focus = torch.sigmoid(self.h_c(f_attn * self.alpha * f_f))
        return (focus, f_attn) if return_mask else focus


def attention_loss(att: AttentionModule, canvas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 6.3: L_rec = MSE( C_focus(t), C(t) * M ) at 64x64, M the ground-truth foreground mask."""
    s = att.size
    return F.mse_loss(att(canvas), resize(canvas, s) * resize(mask, s))
