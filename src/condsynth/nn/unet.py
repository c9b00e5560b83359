"""The pix2pix U-Net generator (Isola et al. 2017, appendix 6.1.1; spec-translation §2.6).

Encoder  C64-C128-C256-C512-C512-C512-C512-C512 (4x4, stride 2, LeakyReLU 0.2, no norm on the
first layer nor on the innermost one). Decoder CD512-CD512-CD512-C512-C256-C128-C64 (ReLU), each
block's output concatenated with the mirrored encoder activation (the skip), then a 4x4
transposed conv to the output channels and tanh. As in the reference code the activations come
before each conv ("pre-activation"), so a skip carries the encoder's raw conv output.

Dropout 0.5 is the generator's only noise source and stays on at test time (pix2pix §3.1);
``dropout_blocks`` counts decoder blocks from the innermost one: the paper's table puts it in the
first three (0, 1, 2); the authors' code uses (1, 2, 3).

``tanh=False`` leaves the last layer linear: the scenes segmenter (models/segmenter.py) uses the
same U-Net to output per-pixel class logits.
"""

from __future__ import annotations

import torch
from torch import nn

from condsynth.nn.blocks import make_norm, norm_uses_bias


class UNetGenerator(nn.Module):
    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, num_downs: int = 8,
                 norm: str = "batch", dropout: float = 0.5, dropout_blocks: tuple[int, ...] = (0, 1, 2),
                 skips: bool = True, max_mult: int = 8, tanh: bool = True):
        super().__init__()
        if num_downs < 2:
            raise ValueError("num_downs must be >= 2")
        self.num_downs = num_downs
        self.skips = skips
        widths = [ngf * min(2 ** i, max_mult) for i in range(num_downs)]
        bias = norm_uses_bias(norm)

        self.down = nn.ModuleList()
        for i in range(num_downs):
            cin = in_channels if i == 0 else widths[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=False)]
            first_or_innermost = i == 0 or i == num_downs - 1
            layers.append(nn.Conv2d(cin, widths[i], 4, 2, 1, bias=bias or first_or_innermost))
            if not first_or_innermost:
                layers.append(make_norm(norm, widths[i]))
            self.down.append(nn.Sequential(*layers))

        self.up = nn.ModuleList()
        for j, i in enumerate(reversed(range(num_downs))):  # j: decoder block index from the innermost
            innermost = i == num_downs - 1
            cin = widths[i] if (innermost or not skips) else 2 * widths[i]
            if i == 0:
                last = [nn.ReLU(), nn.ConvTranspose2d(cin, out_channels, 4, 2, 1)]
                self.up.append(nn.Sequential(*last, nn.Tanh()) if tanh else nn.Sequential(*last))
                continue
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, widths[i - 1], 4, 2, 1, bias=bias),
                      make_norm(norm, widths[i - 1])]
            if dropout > 0 and j in dropout_blocks:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    @property
    def stride(self) -> int:
        """Inputs must have sides divisible by this (pipelines pad, then crop back)."""
        return 2 ** self.num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        h = x
        for layer in self.down:
            h = layer(h)
            feats.append(h)
        h = self.up[0](feats[-1])
        for j in range(1, self.num_downs):
            skip = feats[self.num_downs - 1 - j]
            h = self.up[j](torch.cat([h, skip], 1) if self.skips else h)
        return h
