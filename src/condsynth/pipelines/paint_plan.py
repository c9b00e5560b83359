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
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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
