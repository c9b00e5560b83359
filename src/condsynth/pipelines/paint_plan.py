"""Where the agent's strokes go on a photo of any size: the coarse-to-fine pyramid of patches.

The actor is trained on ``S x S`` canvases (64 here) and paints its first bundles there best: the
first 15 strokes of an episode take most of the error away, later ones much less
(docs/painting.md). So a photo is painted as a pyramid, each level a grid of patches twice as fine
as the one before (1x1, 2x2, 4x4, ...), each patch seen by the actor at ``S x S`` as a fresh
problem on the canvas painted so far: every region of the photo gets strokes at every scale,
coverage comes from the grid rather than from the actor having learnt to find every gap, and the
thickness goes coarse to fine by construction (a stroke on a 2x finer patch is 2x thinner on the
canvas). The coarse levels get a few bundles per patch; the finest level that the budget reaches
gets what is left, shared out by the remaining error (``detail`` weights it by the saliency mask).
LTP's own test loop divides the image into patches for the same reason (one level).

:func:`pyramid_strokes` runs the search on that plan: the actor proposes bundles (with
``proposals`` > 1 also for mirrored views of a patch), each is painted in its own box with the
closed-form colour and the acceptance test, and the one that lowers the error most is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from condsynth.models.painting.analytic_renderer import paint_hard_greedy


@dataclass(frozen=True)
class Level:
    rows: int
    cols: int
    bundles_per_patch: int          # 0: the level shares out the rest of the budget by error
    t_fraction: float               # the actor's t/T for this level's first bundle


def boxes(level: Level, H: int, W: int) -> list[tuple[int, int, int, int]]:
    """The (y, x, h, w) patches of a level on an H x W canvas, row by row."""
    ys = [round(i * H / level.rows) for i in range(level.rows + 1)]
    xs = [round(j * W / level.cols) for j in range(level.cols + 1)]
    return [(ys[i], xs[j], ys[i + 1] - ys[i], xs[j + 1] - xs[j]) for i in range(level.rows) for j in range(level.cols)]


def pyramid_plan(n_bundles: int, H: int, W: int, min_patch: int = 6, per_patch: tuple = (8, 8, 4),
                 t_fractions: tuple = (0.0,)) -> list[Level]:
    """The levels for ``n_bundles`` bundles on an H x W working canvas.

    Level l has 2^l patches along the long side (near-square patches), at least ``min_patch`` px
    each; it takes ``per_patch[l]`` bundles per patch (the last entry for finer levels) while the
    budget lasts; the first level that the budget cannot cover in full gets the rest
    (``bundles_per_patch`` 0) and is the last. ``t_fractions[l]``: the actor's t/T at the level (the
    last entry for finer levels). Every patch starts as a fresh episode (t = 0), where the actor
    paints best. ``per_patch`` (8, 8, 4) was chosen on five of scikit-image's photos (astronaut,
    coffee, chelsea, rocket, camera; bench/bench_painting_agent.py ``--tune``), not on the held-out
    ones: at 400 strokes and 128 px its error is 0.80x the 20x20 mosaic's there, against 1.11x for
    the former (4, 2, 1) (docs/painting.md)."""
    levels, left, depth = [], n_bundles, 0
    long = max(H, W)
    while left > 0:
        g = 2 ** depth
        rows = max(1, min(H, round(g * H / long)))
        cols = max(1, min(W, round(g * W / long)))
        per = per_patch[min(depth, len(per_patch) - 1)]
        tf = t_fractions[min(depth, len(t_fractions) - 1)]
        finer_fits = math.ceil(long / (2 ** (depth + 1))) >= min_patch and rows * cols < H * W
        need = rows * cols * per
        if need <= left and finer_fits:
            levels.append(Level(rows, cols, per, tf))
            left -= need
        else:
            levels.append(Level(rows, cols, 0, tf))
            left = 0
        depth += 1
    return levels


def share_out(n: int, weights: list[float]) -> list[int]:
    """``n`` bundles over patches in proportion to ``weights`` (largest remainders get the rest)."""
    total = sum(weights) or 1.0
    raw = [n * w / total for w in weights]
    out = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)
    for i in order[:n - sum(out)]:
        out[i] += 1
    return out


def resize_hw(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of ``B x C x H x W`` to ``size`` (int: square)."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == hw:
        return x
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False,
                         antialias=hw[0] < x.shape[-2] or hw[1] < x.shape[-1])


FLIPS = ((False, False), (True, False), (False, True), (True, True))   # (left-right, up-down)
PROPOSALS = (1, 2, 4)


def to_canvas(st: torch.Tensor, y: int, x: int, h: int, w: int, H: int, W: int, S: int) -> torch.Tensor:
    """Strokes ``n x 13`` painted on an ``S x S`` view of the box (y, x, h, w) of an ``H x W``
    canvas -> the same strokes in the canvas's coordinates: positions through the 2x-canvas
    pixel grids, radius scaled by the box's size over S (geometric mean of the two axes)."""
    s = st.clone()
    s[:, 0:6:2] = (2 * x + st[:, 0:6:2] * (2 * w - 1)) / (2 * W - 1)
    s[:, 1:6:2] = (2 * y + st[:, 1:6:2] * (2 * h - 1)) / (2 * H - 1)
    scale = math.sqrt(h * w) / S
    s[:, 6:10:2] = (((1 + S / 2 * st[:, 6:10:2]) * scale - 1) / (max(H, W) / 2)).clamp(0, 1)
    return s


# The search: the actor proposes, the environment keeps what helps


def pyramid_strokes(agent, draw_renderer, target: torch.Tensor, n: int, detail: float, accept: str = "improving",
                    proposals: int = 4, plan_options: Optional[dict] = None, max_passes: int = 4) -> torch.Tensor:
    """The agent's ``1 x n x 13`` strokes for a ``1 x 3 x H x W`` target on the levels of
    :func:`pyramid_plan` (``plan_options``: its keyword arguments): ever finer patches, each seen
    by the actor at its training size on the canvas painted so far; all strokes on one canvas,
    drawn with the hard renderer ``draw_renderer``.

    With ``accept == "improving"`` a stroke that would raise the squared error is not
    drawn and its share of the budget stays for later patches (the actor proposes, the
    environment keeps what helps); when the plan ends with budget left, the finest level is
    painted again with the actor's t one bundle on, up to ``max_passes`` times.

    ``proposals`` > 1: the actor also sees each patch mirrored (left-right, then upside down,
    then both) and proposes a bundle for each view; the bundle that leaves the lowest error
    is the one painted (our deviation, docs/painting.md: a test-time search over the actor's
    own proposals; 1 = the thesis's single deterministic action)."""
    c = agent.model_cfg
    S, k = c.size, c.bundle
    H, W = target.shape[-2:]
    cv = np.zeros((3, H, W), np.float32)       # the canvas; ``canvas`` is a view of it for the actor
    canvas = torch.from_numpy(cv)[None]
    tgt = target[0].detach().cpu().numpy().astype(np.float32)
    fit = c.color == "closed_form"
    check = accept == "improving"
    rc = draw_renderer.cfg
    out: list = []
    left = n
    sal = resize_hw(agent.masks.masks(resize_hw(target, S), None, S, c.focus_size)[0], (H, W)) \
        if detail > 0 else None
    plan = pyramid_plan(-(-n // k), H, W, **(plan_options or {}))
    passes = [(lv, 0) for lv in plan] + [(plan[-1], p) for p in range(1, max_passes if check else 1)]
    for level, extra in passes:
        if left <= 0:
            break
        cells = boxes(level, H, W)
        if level.bundles_per_patch and not extra:
            budgets = [level.bundles_per_patch] * len(cells)
        else:                                   # the rest, shared out by the remaining error
            err = (canvas - target).pow(2).mean(1, keepdim=True)
            weights = []
            for y, x, h, w in cells:
                e = float(err[..., y:y + h, x:x + w].mean())
                m = float(sal[..., y:y + h, x:x + w].mean() / (sal.mean() + 1e-6)) if sal is not None else 1.0
                weights.append(e * ((1 - detail) + detail * m))
            budgets = share_out(-(-left // k), weights)
        views_t = torch.cat([resize_hw(target[..., y:y + h, x:x + w], S) for y, x, h, w in cells])
        fm17, _ = agent.masks.masks(views_t, None, S, c.focus_size) \
            if agent.masks.kind != "ground_truth" else (torch.ones_like(views_t[:, :1]), None)
        for t in range(max(budgets)):
            live = [i for i, b in enumerate(budgets) if b > t]
            if not live or left <= 0:
                break
            views_c = torch.cat([resize_hw(canvas[..., y:y + h, x:x + w], S) for y, x, h, w in
                                 (cells[i] for i in live)])
            tt = level.t_fraction * c.max_step + t + extra
            props = propose(agent, views_c, views_t[live], fm17[live], tt, proposals)
            for b, i in enumerate(live):
                take = min(k, left)
                if take <= 0:
                    break
                # each proposal painted in its own box (one stroke at a time, kept if it helps
                # with accept "improving"); the one that lowers the error most is kept
                tries = [paint_hard_greedy(to_canvas(a[b, :take], *cells[i], H, W, S), cv, tgt, fit, check,
                                             None, rc.relative_p1, rc.n_discs) for a in props]
                kept, _, patch = min(tries, key=lambda r: r[1])
                if patch is not None:
                    y, x, box = patch
                    cv[:, y:y + box.shape[1], x:x + box.shape[2]] = box
                out.append(kept.to(target.dtype))
                left -= len(kept)
    if not sum(len(o) for o in out):             # nothing helped: one stroke so the result is well-formed
        out.append(paint_hard_greedy(to_canvas(props[0][0, :1], *cells[live[0]], H, W, S), cv, tgt, fit,
                                       False, None, rc.relative_p1, rc.n_discs)[0].to(target.dtype))
    return torch.cat(out)[None]

def propose(agent, views_c, views_t, fm17, t, proposals: int) -> list[torch.Tensor]:
    """The actor's bundles for a batch of ``n`` patch views, ``n x k x 13`` each: one per view
    transform of ``proposals`` (1: the view as it is; 2: and mirrored left-right; 4: and
    upside down, and both), all in one batch through the actor. A mirrored view's strokes are
    mirrored back (x -> 1 - x on the 2x-canvas grid; the hard renderer truncates disc centres
    to whole 2x pixels, so up to half a pixel off), so every proposal is a bundle for the same
    patch."""
    n, k = views_c.shape[0], agent.model_cfg.bundle
    flips = FLIPS[:proposals]

    def views(x):
        return torch.cat([x.flip([d for d, on in zip((-1, -2), f) if on]) if any(f) else x for f in flips])

    a = agent.act(agent.actor, views(views_c), views(views_t), views(fm17), t).view(len(flips), n, k, -1)
    out = []
    for f, af in zip(flips, a):
        if any(f):
            af = af.clone()
            for on, sl in zip(f, (slice(0, 6, 2), slice(1, 6, 2))):
                if on:
                    af[..., sl] = 1 - af[..., sl]
        out.append(af)
    return out
