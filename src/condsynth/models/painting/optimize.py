"""Painting without an agent: strokes fitted by gradient descent through the neural renderer.

Because the renderer and the compositing are differentiable (:mod:`.env`), a canvas is a
differentiable function of its strokes, and strokes can be fitted to a target directly. This is
the ``optimize`` mode of ``condsynth paint`` (a strong baseline for the agent, and slower), and
``agent+optimize`` refines the agent's strokes the same way.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from condsynth.models.painting.env import step_canvas


def optimize_strokes(renderer, target: torch.Tensor, n_strokes: int, canvas: Optional[torch.Tensor] = None,
                     init: Optional[torch.Tensor] = None, group: int = 20, iters: int = 40, lr: float = 0.2,
                     seed: int = 0, callback: Optional[Callable] = None, z_range=(0.3, 0.02)):
    """Fit strokes by gradient descent through the neural renderer, ``group`` strokes at a time.

    For each group the earlier canvas is fixed; the group's 13 x ``group`` parameters (as logits)
    minimise the MSE between the composited canvas and the target with Adam. Without ``init``,
    a group's strokes start at pixels drawn in proportion to the current squared error, with
    the target's colour there and a thickness that shrinks from ``z_range[0]`` to ``z_range[1]``
    over the groups (coarse to fine). With ``init`` (``N x 13``, e.g. the agent's strokes) those
    are refined instead. Returns (canvas, strokes ``N x 13``) for a batch of one.
    """
    gen = torch.Generator().manual_seed(seed)
    b, _, h, w = target.shape
    canvas = torch.zeros_like(target) if canvas is None else canvas.clone()
    n_groups = -(-n_strokes // group)
    out = []
    done = 0
    eps = 1e-4
    for gi in range(n_groups):
        m = min(group, n_strokes - done)
        if init is not None:
            p0 = init[:, done:done + m].clamp(eps, 1 - eps)
        else:
            err = (canvas - target).pow(2).sum(1).flatten(1)[0] + 1e-8
            idx = torch.multinomial(err / err.sum(), m, replacement=True, generator=gen)
            cy, cx = (idx // w).float() / (h - 1), (idx % w).float() / (w - 1)
            frac = gi / max(1, n_groups - 1)
            z = z_range[0] * (1 - frac) + z_range[1] * frac
            length = 0.6 * z + 0.03
            ang = torch.rand(m, generator=gen) * math.pi
            dx, dy = length * torch.cos(ang), length * torch.sin(ang)
            col = target[0, :, (idx // w), (idx % w)].T
            p0 = torch.stack([cx - dx, cy - dy, cx, cy, cx + dx, cy + dy,
                              torch.full((m,), z), torch.full((m,), 0.9), torch.full((m,), z),
                              torch.full((m,), 0.9)], 1)
            p0 = torch.cat([p0, col], 1)[None].clamp(eps, 1 - eps)
        logits = torch.logit(p0).clone().requires_grad_(True)
        opt = torch.optim.Adam([logits], lr=lr)
        for _ in range(iters):
            a = torch.sigmoid(logits)
            c1 = step_canvas(renderer, canvas, a.reshape(b, -1), m)[0]
            loss = F.mse_loss(c1, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            a = torch.sigmoid(logits)
            canvas = step_canvas(renderer, canvas, a.reshape(b, -1), m)[0]
        out.append(a.detach())
        done += m
        if callback is not None:
            callback(done, canvas, a.detach())
    return canvas, torch.cat(out, 1)
