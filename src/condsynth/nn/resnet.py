"""ResNet-18 trunks (He et al. 2016) as LearningToPaint builds them for its actor and critic.

LTP's variant (LearningToPaint's ``actor.py`` and ``critic.py``) starts with one 3x3 stride-2 conv
instead of the 7x7 conv and max-pool, gives every stage a stride of 2, and ends in average pooling
(global here, LTP's 4x4 pool at its 128x128 input) and one linear layer. Two flavours:

* ``norm=True``: BatchNorm and ReLU, bias-free convs (the actor);
* ``norm=False``: weight-normalised convs with biases, no BatchNorm, :class:`~condsynth.nn.blocks.TReLU`
  activations (the critic).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.nn.blocks import TReLU


def _weight_norm(norm: bool):
    return (lambda m: m) if norm else nn.utils.parametrizations.weight_norm


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (1x1 projection when the shape changes)."""

    def __init__(self, i: int, o: int, stride: int, norm: bool):
        super().__init__()
        wn = _weight_norm(norm)
        self.c1 = wn(nn.Conv2d(i, o, 3, stride, 1, bias=not norm))
        self.c2 = wn(nn.Conv2d(o, o, 3, 1, 1, bias=not norm))
        self.b1 = nn.BatchNorm2d(o) if norm else nn.Identity()
        self.b2 = nn.BatchNorm2d(o) if norm else nn.Identity()
        self.a1 = nn.ReLU() if norm else TReLU()
        self.a2 = nn.ReLU() if norm else TReLU()
        self.short = nn.Identity()
        if stride != 1 or i != o:
            self.short = nn.Sequential(wn(nn.Conv2d(i, o, 1, stride, bias=not norm)),
                                       nn.BatchNorm2d(o) if norm else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a1(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return self.a2(y + self.short(x))


class ResNet18(nn.Module):
    """LTP's ResNet-18: conv3x3 s2 -> 4 stages of 2 BasicBlocks, each stage stride 2 -> global
    average pool -> FC. ``width`` is the first stage's channels (64 in the paper)."""

    def __init__(self, in_ch: int, out: int, width: int = 64, norm: bool = True):
        super().__init__()
        wn = _weight_norm(norm)
        w = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(wn(nn.Conv2d(in_ch, w[0], 3, 2, 1, bias=not norm)),
                                  nn.BatchNorm2d(w[0]) if norm else nn.Identity(),
                                  nn.ReLU() if norm else TReLU())
        blocks, c = [], w[0]
        for o in w:
            blocks += [BasicBlock(c, o, 2, norm), BasicBlock(o, o, 1, norm)]
            c = o
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
