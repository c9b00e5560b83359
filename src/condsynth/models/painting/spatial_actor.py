"""A spatial actor head: where each stroke goes read off a heat map (our deviation, ``actor_head: spatial``).

The thesis's actor (LTP's ResNet-18) pools its last 2x2 (64 px input) or 4x4 (128 px) feature map
into one vector and regresses all k strokes' coordinates from it with one linear layer; it can
only say where a stroke goes by encoding positions in channels (through the CoordConv planes).
On this CPU's budget it does not learn that (docs/painting.md): every bundle after the first is
drawn in the same places. This head keeps the same trunk and the same output (k x 13 logits, so
everything downstream is unchanged) and splits each stroke into

* **where**: a heat map per stroke over the 16x16 cells of the trunk's first stage (fused with the
  upsampled second stage); the start point P0 is its soft-argmax, the expected cell centre
  under a spatial softmax, so it is differentiable and sub-cell precise;
* **what**: the second stage's features pooled under that same softmax (what is at P0), with
  the trunk's global feature, give P1 and P2 relative to P0, thickness, opacity and colour.

A stroke's placement is then translation-equivariant, like the error it should fix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.data.synth.strokes import STROKE_PARAMS
from condsynth.nn.resnet import ResNet18

_REST = STROKE_PARAMS - 2          # everything but P0: P1, P2 (relative), z0 v0 z1 v1, r g b


class SpatialActor(nn.Module):
    """``B x C x S x S`` state -> ``B x (k*13)`` logits (sigmoid gives the strokes), as ResNet18."""

    def __init__(self, in_ch: int, k: int, width: int = 64, max_reach: float = 0.5):
        super().__init__()
        self.k, self.max_reach = k, max_reach
        self.trunk = ResNet18(in_ch, 1, width, norm=True)            # its fc is unused
        self.trunk.fc = nn.Identity()
        w1, w2, w4 = width, 2 * width, 8 * width
        self.fuse = nn.Sequential(nn.Conv2d(w1 + w2, w2, 3, 1, 1), nn.ReLU(), nn.Conv2d(w2, w2, 3, 1, 1), nn.ReLU())
        self.heat = nn.Conv2d(w2, k, 1)
        self.fc = nn.Sequential(nn.Linear(w2 + w4, 2 * w2), nn.ReLU(), nn.Linear(2 * w2, _REST))
        self.slot = nn.Parameter(torch.zeros(k, w2))                  # tells the strokes apart in `fc`
        nn.init.normal_(self.slot, std=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.trunk
        h = t.stem(x)
        f1 = t.blocks[1](t.blocks[0](h))                              # stage 1: S/4 (16 at 64)
        f2 = t.blocks[3](t.blocks[2](f1))                             # stage 2: S/8
        g = t.blocks[7](t.blocks[6](t.blocks[5](t.blocks[4](f2))))    # stages 3-4
        g = F.adaptive_avg_pool2d(g, 1).flatten(1)                    # B x 8w
        fused = self.fuse(torch.cat([f1, F.interpolate(f2, size=f1.shape[-2:], mode="bilinear",
                                                       align_corners=False)], 1))
        b, c, hh, ww = fused.shape
        prob = self.heat(fused).flatten(2).softmax(-1)                # B x k x (h*w)
        ys = (torch.arange(hh, dtype=x.dtype, device=x.device) + 0.5) / hh
        xs = (torch.arange(ww, dtype=x.dtype, device=x.device) + 0.5) / ww
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        p0 = torch.stack([(prob * gx.flatten()).sum(-1), (prob * gy.flatten()).sum(-1)], -1)   # B x k x 2 (x, y)
        local = torch.einsum("bkn,bcn->bkc", prob, fused.flatten(2)) + self.slot               # what is at P0
        rest = self.fc(torch.cat([local, g[:, None].expand(b, self.k, g.shape[1])], -1))       # B x k x 11
        off = torch.tanh(rest[..., 0:4]) * self.max_reach
        p1 = (p0 + off[..., 0:2]).clamp(0, 1)
        p2 = (p0 + off[..., 2:4]).clamp(0, 1)
        eps = 1e-4
        pos = torch.logit(torch.cat([p0, p1, p2], -1).clamp(eps, 1 - eps))
        return torch.cat([pos, rest[..., 4:]], -1).flatten(1)

    def init_stroke_bias(self, z: float, v: float) -> None:
        """First strokes at thickness ``z`` and opacity ``v`` (as :func:`agent.init_stroke_bias`)."""
        last = self.fc[-1]
        with torch.no_grad():
            last.weight[4:8].mul_(0.1)
            last.bias[[4, 6]] = float(torch.logit(torch.tensor(z)))
            last.bias[[5, 7]] = float(torch.logit(torch.tensor(v)))
