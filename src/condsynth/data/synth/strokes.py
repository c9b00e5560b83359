"""Brush strokes (thesis Sec. 6.3.2) and their NumPy rasteriser, the ground truth of the neural renderer.

A stroke is a quadratic Bezier curve with 13 parameters in the thesis order
``(x0, y0, x1, y1, x2, y2, z0, v0, z1, v1, r, g, b)``: three control points (x to the right, y
down, in [0, 1] of the canvas), thickness z and opacity v at both ends, and a colour. The first ten
are the stroke's shape, what a renderer sees; the colour only tints the alpha map when compositing.
"""

from __future__ import annotations

import numpy as np

STROKE_PARAMS = 13        # x0 y0 x1 y1 x2 y2 z0 v0 z1 v1 r g b   (thesis order, 1-based 7 and 9 = thickness)
SHAPE_PARAMS = 10         # the first ten: what the renderer sees
THICKNESS_INDEX = (6, 8)  # 0-based z0, z1
ALPHA_INDEX = (7, 9)      # 0-based v0, v1
N_DISCS = 100             # discs stamped along the curve (tau = i / 100)

_DISC_CACHE: dict[int, np.ndarray] = {}


def _disc(radius: int) -> np.ndarray:
    """Boolean (2r+1)^2 stencil of a filled disc of integer radius ``r``."""
    d = _DISC_CACHE.get(radius)
    if d is None:
        yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
        d = (xx * xx + yy * yy) <= radius * radius
        _DISC_CACHE[radius] = d
    return d


def rasterize_stroke(p, size: int = 128, relative_p1: bool = False) -> np.ndarray:
    """Ground-truth alpha of one stroke (Sec. 6.3.2: "Q(t) ... serves as ground truth").

    ``p`` holds the ten shape parameters in the thesis order. The stroke is drawn on a canvas of
    twice the size (256 for 128) as ``N_DISCS`` filled discs along the Bezier curve
    Q(tau) = (1-tau)^2 P0 + 2 (1-tau) tau P1 + tau^2 P2; the radius goes from 1 + (2*size/4) z0 to
    1 + (2*size/4) z1 and the value from v0 to v1, later discs overwriting earlier ones. It is
    then reduced 2x by averaging 2x2 blocks (what bilinear resizing by exactly one half does).
    ``relative_p1`` places P1 relative to P0 and P2 as LearningToPaint's code does.
    """
    x0, y0, x1, y1, x2, y2, z0, v0, z1, v1 = [float(v) for v in p[:SHAPE_PARAMS]]
    if relative_p1:
        x1 = x0 + (x2 - x0) * x1
        y1 = y0 + (y2 - y0) * y1
    big = 2 * size
    scale = big - 1
    x0, y0, x1, y1, x2, y2 = (int(v * scale + 0.5) for v in (x0, y0, x1, y1, x2, y2))
    r0, r1 = 1.0 + big / 4 * z0, 1.0 + big / 4 * z1
    canvas = np.zeros((big, big), np.float32)
    for i in range(N_DISCS):
        t = i / N_DISCS
        cx = int((1 - t) ** 2 * x0 + 2 * t * (1 - t) * x1 + t * t * x2)   # column (x)
        cy = int((1 - t) ** 2 * y0 + 2 * t * (1 - t) * y1 + t * t * y2)   # row (y)
        r = int((1 - t) * r0 + t * r1)
        v = (1 - t) * v0 + t * v1
        disc = _disc(r)
        ya, yb, xa, xb = cy - r, cy + r + 1, cx - r, cx + r + 1
        ca, cb, da, db = max(ya, 0), min(yb, big), max(xa, 0), min(xb, big)
        if ca >= cb or da >= db:
            continue
        sub = disc[ca - ya:cb - ya, da - xa:db - xa]
        canvas[ca:cb, da:db][sub] = v
    return canvas.reshape(size, 2, size, 2).mean(axis=(1, 3))


def rasterize_strokes(params, size: int = 128, relative_p1: bool = False) -> np.ndarray:
    """``N x >=10`` parameters -> ``N x size x size`` float32 alpha maps."""
    params = np.asarray(params, dtype=np.float64).reshape(-1, np.shape(params)[-1])
    return np.stack([rasterize_stroke(p, size, relative_p1) for p in params]) if len(params) \
        else np.zeros((0, size, size), np.float32)


def paint_strokes_cpu(strokes, canvas=None, size: int = 128, relative_p1: bool = False) -> np.ndarray:
    """Composite ``N x 13`` strokes onto an ``H x W x 3`` canvas in [0, 1] with the rasteriser."""
    canvas = np.zeros((size, size, 3), np.float32) if canvas is None else np.array(canvas, np.float32)
    for s in np.asarray(strokes, np.float64).reshape(-1, STROKE_PARAMS):
        a = rasterize_stroke(s[:SHAPE_PARAMS], size, relative_p1)[..., None]
        canvas = a * s[SHAPE_PARAMS:].astype(np.float32) + (1.0 - a) * canvas
    return canvas

