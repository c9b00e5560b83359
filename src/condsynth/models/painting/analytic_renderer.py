"""An analytic, differentiable stroke renderer: the rasteriser's discs as PyTorch tensor code.

:func:`condsynth.data.synth.strokes.rasterize_stroke` stamps ``N_DISCS`` = 100 filled discs along
the Bezier curve on a canvas drawn at twice the output size, later discs overwriting earlier ones,
then averages 2x2 blocks. Per pixel of the big canvas the alpha is the value v of the *last* disc
that covers it, which is the over-composite recurrence

    alpha <- alpha + cov_i * (v_i - alpha),     i = 0 .. 99,

with cov_i = [|p - c_i|^2 <= r_i^2]. This module computes that recurrence on tensors:

* :func:`render_hard`: integer centres and radii and the hard test, on the 2x canvas, 2x2 means.
  It is the rasteriser exactly (tests/models/test_analytic_renderer.py: MSE < 1e-12), at any
  height and width; each stroke is drawn in its own bounding box, so big canvases stay cheap.
* :func:`render_soft`: the same curve as a chain of capsules with continuous centres and radii
  and a sigmoid edge, evaluated at the output pixels directly (no 2x canvas). Within 1.5e-3 MSE
  of the rasteriser, and differentiable in all ten shape parameters.

Canvas geometry for an ``H x W`` canvas (what :func:`rasterize_stroke` does for ``H = W = S``):
x spans the width, y the height, both in [0, 1]; on the 2x canvas a point is
``(int(x (2W - 1) + .5), int(y (2H - 1) + .5))`` and a radius ``1 + (2 ref / 4) z`` with ``ref``
the long side (``max(H, W)``, as :func:`condsynth.io.strokes.stroke_radius_px`).

:class:`AnalyticRenderer` is a drop-in for :class:`.renderer.NeuralRenderer` (``renderer(p)`` ->
``N x S x S`` alpha) with ``model.renderer: analytic`` in the agent's config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from condsynth.data.synth.strokes import N_DISCS, SHAPE_PARAMS, _disc

ANALYTIC = "analytic"          # the renderer name that selects this module instead of a checkpoint


def _curve(p: torch.Tensor, relative_p1: bool):
    x0, y0, x1, y1, x2, y2 = p[:, 0:6].unbind(1)
    if relative_p1:
        x1 = x0 + (x2 - x0) * x1
        y1 = y0 + (y2 - y0) * y1
    return x0, y0, x1, y1, x2, y2


def _taus(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.arange(n, dtype=like.dtype, device=like.device) / n


def disc_geometry(p: torch.Tensor, height: int, width: int, ref: Optional[int] = None,
                  hard: bool = True, relative_p1: bool = False, n_discs: int = N_DISCS):
    """Centres (cx, cy), radii and values of the discs of ``N x >=10`` strokes on the 2x canvas,
    each ``N x n_discs``; ``hard`` rounds and truncates as the rasteriser does."""
    ref = max(height, width) if ref is None else ref
    x0, y0, x1, y1, x2, y2 = _curve(p, relative_p1)
    sx, sy = 2 * width - 1, 2 * height - 1
    pts = [x0 * sx, y0 * sy, x1 * sx, y1 * sy, x2 * sx, y2 * sy]
    if hard:
        pts = [torch.floor(v + 0.5) for v in pts]
    t = _taus(n_discs, p)[None]
    w0, w1, w2 = (1 - t) ** 2, 2 * t * (1 - t), t * t
    cx = w0 * pts[0][:, None] + w1 * pts[2][:, None] + w2 * pts[4][:, None]
    cy = w0 * pts[1][:, None] + w1 * pts[3][:, None] + w2 * pts[5][:, None]
    z0, v0, z1, v1 = p[:, 6:7], p[:, 7:8], p[:, 8:9], p[:, 9:10]
    r0, r1 = 1.0 + (2 * ref) / 4 * z0, 1.0 + (2 * ref) / 4 * z1
    r = (1 - t) * r0 + t * r1
    v = (1 - t) * v0 + t * v1
    if hard:
        cx, cy, r = torch.trunc(cx), torch.trunc(cy), torch.trunc(r)
    return cx, cy, r, v


def _hard_crops(p: torch.Tensor, height: int, width: int, ref: Optional[int], relative_p1: bool,
                n_discs: int):
    """For each stroke, ``(row, col, alpha)``: its exact alpha in the box of output pixels that
    its discs touch (the box starts at output pixel (row, col)), or None if it is off the canvas.
    Each disc is stamped in its own square on the 2x canvas, later over earlier, as the
    rasteriser does; then 2x2 means."""
    p = p.reshape(-1, p.shape[-1]).double().cpu()
    big_h, big_w = 2 * height, 2 * width
    cx, cy, r, v = (t.numpy() for t in disc_geometry(p, height, width, ref, True, relative_p1, n_discs))
    cx, cy, r = cx.astype(np.int64), cy.astype(np.int64), r.astype(np.int64)
    for s in range(p.shape[0]):
        ya = max(int((cy[s] - r[s]).min()), 0) // 2 * 2          # the box, on even 2x-canvas pixels
        xa = max(int((cx[s] - r[s]).min()), 0) // 2 * 2
        yb = min(int((cy[s] + r[s]).max()) + 1, big_h)
        xb = min(int((cx[s] + r[s]).max()) + 1, big_w)
        yb, xb = yb + yb % 2, xb + xb % 2
        if ya >= yb or xa >= xb:
            yield None
            continue
        box = np.zeros((yb - ya, xb - xa), np.float32)
        keep = np.ones(cx.shape[1], bool)                  # consecutive repeats stamp the same disc
        keep[1:] = (np.diff(cx[s]) != 0) | (np.diff(cy[s]) != 0) | (np.diff(r[s]) != 0) | (np.diff(v[s]) != 0)
        idx = np.nonzero(keep)[0]
        if box.size * len(idx) <= 400_000:                 # small box: every disc's test at once
            yy = np.arange(ya, yb)[None, :, None] - cy[s, idx, None, None]
            xx = np.arange(xa, xb)[None, None, :] - cx[s, idx, None, None]
            cov = yy * yy + xx * xx <= (r[s, idx] ** 2)[:, None, None]
            last = np.where(cov.any(0), len(idx) - 1 - np.argmax(cov[::-1], axis=0), -1)
            box = np.where(last >= 0, v[s, idx][np.maximum(last, 0)], 0.0).astype(np.float32)
        for i in (idx if box.size * len(idx) > 400_000 else ()):   # big box: one disc at a time
            ri = int(r[s, i])
            y0, x0 = int(cy[s, i]) - ri - ya, int(cx[s, i]) - ri - xa
            disc = _disc(ri)
            ca, cb = max(y0, 0), min(y0 + 2 * ri + 1, box.shape[0])
            da, db = max(x0, 0), min(x0 + 2 * ri + 1, box.shape[1])
            if ca >= cb or da >= db:
                continue
            box[ca:cb, da:db][disc[ca - y0:cb - y0, da - x0:db - x0]] = v[s, i]
        h2, w2 = box.shape[0] // 2, box.shape[1] // 2
        yield ya // 2, xa // 2, box.reshape(h2, 2, w2, 2).mean(axis=(1, 3))


def stroke_discs(strokes, height: int, width: int, ref: Optional[int] = None) -> list:
    """The hard discs of ``N x >=10`` strokes in output pixels, for an SVG that draws what
    :func:`paint_hard` does: per stroke an ``M x 4`` array of (cx, cy, radius, value), in order,
    consecutive repeats dropped. A 2x-canvas pixel k is covered when |k - c| <= r; its square is
    [k, k + 1), so the disc is centred at (c + 0.5) / 2 output pixels with radius r / 2 (its area is
    the count of covered 2x pixels, and it covers exactly their centres)."""
    p = torch.as_tensor(np.asarray(strokes, np.float64)).reshape(-1, np.shape(strokes)[-1])
    cx, cy, r, v = (t.numpy() for t in disc_geometry(p, height, width, ref, True))
    out = []
    for s in range(p.shape[0]):
        d = np.stack([(cx[s] + 0.5) / 2, (cy[s] + 0.5) / 2, r[s] / 2, np.round(v[s], 3)], 1)
        keep = np.ones(len(d), bool)
        keep[1:] = np.any(d[1:] != d[:-1], axis=1)
        out.append(d[keep])
    return out


def render_hard(p: torch.Tensor, height: int, width: Optional[int] = None, ref: Optional[int] = None,
                relative_p1: bool = False, n_discs: int = N_DISCS) -> torch.Tensor:
    """The rasteriser exactly, at any size: ``N x >=10`` -> ``N x H x W`` alpha (no gradient)."""
    width = height if width is None else width
    out = np.zeros((p.reshape(-1, p.shape[-1]).shape[0], height, width), np.float32)
    for s, crop in enumerate(_hard_crops(p, height, width, ref, relative_p1, n_discs)):
        if crop is not None:
            y, x, a = crop
            out[s, y:y + a.shape[0], x:x + a.shape[1]] = a
    return torch.from_numpy(out).to(p.device)


def paint_hard(strokes: torch.Tensor, height: int, width: int, canvas: Optional[torch.Tensor] = None,
               ref: Optional[int] = None, relative_p1: bool = False, callback=None) -> torch.Tensor:
    """Composite ``N x 13`` strokes in order on a ``3 x H x W`` canvas (black by default) with the
    exact hard discs, each only in its own box: C = a rgb + (1 - a) C. What an SVG of the strokes
    (:func:`condsynth.io.strokes.save_svg`) shows. ``callback(i, canvas)`` after stroke i."""
    st = strokes.reshape(-1, strokes.shape[-1]).detach().cpu()
    c = np.zeros((3, height, width), np.float32) if canvas is None else canvas.detach().cpu().numpy().copy()
    rgb = st[:, SHAPE_PARAMS:].numpy().astype(np.float32)
    for s, crop in enumerate(_hard_crops(st[:, :SHAPE_PARAMS], height, width, ref, relative_p1, N_DISCS)):
        if crop is not None:
            y, x, a = crop
            view = c[:, y:y + a.shape[0], x:x + a.shape[1]]
            view *= (1.0 - a)[None]
            view += a[None] * rgb[s][:, None, None]
        if callback is not None:
            callback(s + 1, c)
    return torch.from_numpy(c)


def paint_hard_greedy(strokes: torch.Tensor, canvas: np.ndarray, target: np.ndarray, fit: bool = True,
                      accept: bool = True, ref: Optional[int] = None, relative_p1: bool = False,
                      n_discs: int = N_DISCS):
    """:func:`paint_hard` for a search: ``N x 13`` strokes over a ``3 x H x W`` float32 ``canvas``
    (not modified), each stroke in its own box of exact hard alpha. ``fit``: each stroke's colour
    is the closed-form one under its alpha on the canvas before it (:func:`.env.closed_form_color`,
    the sums taken over the box: the alpha is 0 elsewhere). ``accept``: a stroke that does not
    lower the squared error to ``target`` is left out. Only the union of the boxes is touched, so
    the cost follows the strokes' area, not the canvas's.

    Returns ``(kept strokes K x 13 with the colours drawn, change of the squared error, (y, x,
    patch))``: ``patch`` is the painted ``3 x h x w`` region at (y, x) to paste into the canvas
    (None when no stroke touches the canvas)."""
    st = strokes.reshape(-1, strokes.shape[-1]).detach().cpu()
    H, W = canvas.shape[-2:]
    crops = list(_hard_crops(st[:, :SHAPE_PARAMS], H, W, ref, relative_p1, n_discs))
    on = [c for c in crops if c is not None]
    if not on:
        return (st[:0] if accept else st.clone()), 0.0, None
    y0, x0 = min(c[0] for c in on), min(c[1] for c in on)
    y1, x1 = max(c[0] + c[2].shape[0] for c in on), max(c[1] + c[2].shape[1] for c in on)
    box = canvas[:, y0:y1, x0:x1].copy()
    tgt = target[:, y0:y1, x0:x1]
    out, total = [], 0.0
    for s, crop in enumerate(crops):
        row = st[s].clone()
        if crop is None:
            if not accept:
                out.append(row)
            continue
        y, x, a = crop
        view, t = box[:, y - y0:y - y0 + a.shape[0], x - x0:x - x0 + a.shape[1]], \
            tgt[:, y - y0:y - y0 + a.shape[0], x - x0:x - x0 + a.shape[1]]
        if fit:
            num = (a[None] * (t - (1.0 - a[None]) * view)).reshape(3, -1).sum(1)
            rgb = np.clip(num / (float((a * a).sum()) + 1e-6), 0.0, 1.0).astype(np.float32)
            row[SHAPE_PARAMS:] = torch.from_numpy(rgb).to(row.dtype)
        else:
            rgb = row[SHAPE_PARAMS:].numpy().astype(np.float32)
        new = a[None] * rgb[:, None, None] + (1.0 - a[None]) * view
        change = float(np.square(new - t, dtype=np.float64).sum() - np.square(view - t, dtype=np.float64).sum())
        if accept and change >= 0:
            continue
        view[...] = new
        total += change
        out.append(row)
    kept = torch.stack(out) if out else st[:0]
    return kept, total, (y0, x0, box)


def render_soft(p: torch.Tensor, height: int, width: Optional[int] = None, ref: Optional[int] = None,
                edge: float = 0.4, grow: float = 0.0, segments: int = 12,
                relative_p1: bool = False, crop: str = "pieces", groups: int = 2) -> torch.Tensor:
    """Differentiable alpha ``N x H x W`` of ``N x >=10`` strokes, a "capsule chain".

    The curve from the first disc (tau = 0) to the last (tau = 0.99) is cut into ``segments``
    straight pieces; each piece is the union of its discs, a capsule whose radius and value go
    linearly from one end to the other, with soft coverage sigmoid((r(u) + grow - d) / edge) (d:
    distance to the piece, u: where the pixel projects on it; 2x-canvas units, output pixel
    centres). The pieces are composited in order, later over earlier, as the discs are. One
    B x H x W tensor per piece keeps it fast on a CPU; the MSE to the rasteriser is ~6e-4 at 64^2
    and ~4e-4 at 128^2 (tests/models/test_analytic_renderer.py).

    ``crop``: ``"pieces"`` (default) evaluates each piece of each stroke only in its own window
    (the piece's box + radius + 10 edge widths, where the coverage is below 5e-5; the windows of a
    piece are padded to one size across the batch, gathered from and scattered into the canvas);
    ``"hull"`` evaluates every piece on the box around all the strokes; ``"none"`` on the whole
    canvas. With ``"pieces"`` the strokes are sorted by radius and drawn in ``groups`` batches, so
    thin strokes are not padded to the windows of thick ones."""
    width = height if width is None else width
    p = p.reshape(-1, p.shape[-1])
    ref = max(height, width) if ref is None else ref
    x0, y0, x1, y1, x2, y2 = _curve(p, relative_p1)
    t = (torch.arange(segments + 1, dtype=p.dtype, device=p.device) / segments * (N_DISCS - 1) / N_DISCS)[None]
    w0, w1, w2 = (1 - t) ** 2, 2 * t * (1 - t), t * t
    # the hard version truncates centres and radii: on average 0.5 lower
    cx = (w0 * x0[:, None] + w1 * x1[:, None] + w2 * x2[:, None]) * (2 * width - 1) - 0.5
    cy = (w0 * y0[:, None] + w1 * y1[:, None] + w2 * y2[:, None]) * (2 * height - 1) - 0.5
    r = (1 - t) * (1.0 + ref / 2 * p[:, 6:7]) + t * (1.0 + ref / 2 * p[:, 8:9]) - 0.5 + grow
    v = (1 - t) * p[:, 7:8] + t * p[:, 9:10]
    if crop == "pieces":
        if groups <= 1 or p.shape[0] < 2 * groups:
            return _CapsuleChainWindows.apply(cx, cy, r, v, height, width, edge)
        order = torch.argsort(r.detach().amax(1))      # similar sizes together: less padding
        parts = [_CapsuleChainWindows.apply(cx[o], cy[o], r[o], v[o], height, width, edge)
                 for o in order.chunk(groups)]
        return torch.cat(parts)[torch.argsort(order)]
    if crop not in ("hull", "none"):
        raise ValueError(f"render_soft: crop must be pieces, hull or none, not {crop!r}")
    y0, x0, y1, x1 = 0, 0, height, width
    if crop == "hull":          # only the output pixels within reach of the strokes (their hull + radius + edge)
        with torch.no_grad():
            m = r.amax() + 8 * edge + 2
            x0 = max(0, int((cx.amin() - m) // 2))
            x1 = min(width, int((cx.amax() + m) // 2) + 2)
            y0 = max(0, int((cy.amin() - m) // 2))
            y1 = min(height, int((cy.amax() + m) // 2) + 2)
        if x0 >= x1 or y0 >= y1:
            return p.new_zeros(p.shape[0], height, width) + 0 * p[:, :1, None].sum()
        if (y0, x0, y1, x1) != (0, 0, height, width):
            a = _CapsuleChain.apply(cx - 2 * x0, cy - 2 * y0, r, v, y1 - y0, x1 - x0, edge)
            return torch.nn.functional.pad(a, (x0, width - x1, y0, height - y1))
    return _CapsuleChain.apply(cx, cy, r, v, height, width, edge)


def _segment(cx, cy, r, v, j, X, Y, inv):
    """Coverage and value of capsule piece ``j`` at every pixel, and what its backward needs.
    Per-stroke factors are folded into the broadcast (row or column) terms and the full-size
    ones fused (addcmul, in place) to keep the passes over the pixels few."""
    e = lambda q, i: q[:, i, None, None]              # noqa: E731 - N x 1 x 1
    ax, ay = e(cx, j), e(cy, j)
    bx, by = e(cx, j + 1) - ax, e(cy, j + 1) - ay
    px, py = X - ax, Y - ay                           # N x 1 x W, N x H x 1
    L = bx * bx + by * by + 1e-6
    s = px * (bx / L) + py * (by / L)                 # where the pixel projects on the piece
    u = s.clamp(0, 1)
    qx, qy = torch.addcmul(px, u, bx, value=-1), torch.addcmul(py, u, by, value=-1)
    d = torch.addcmul(qx * qx, qy, qy).add_(1e-6).sqrt_()
    ra, dr = e(r, j), e(r, j + 1) - e(r, j)
    va, dv = e(v, j), e(v, j + 1) - e(v, j)
    cov = torch.addcmul(ra, u, dr).sub_(d).mul_(inv).sigmoid_()
    val = torch.addcmul(va, u, dv)
    return cov, val, (bx, by, px, py, L, s, u, qx, qy, d, dr, dv)


class _CapsuleChain(torch.autograd.Function):
    """alpha <- alpha + cov_j (val_j - alpha) over the pieces, with a hand-written backward: it
    keeps only the running alpha before each piece and recomputes the rest, about 2x faster
    than autograd's graph of the same elementwise operations on a CPU."""

    @staticmethod
    def forward(ctx, cx, cy, r, v, height, width, edge):
        X = (torch.arange(width, dtype=cx.dtype, device=cx.device) * 2 + 0.5)[None, None, :]
        Y = (torch.arange(height, dtype=cx.dtype, device=cx.device) * 2 + 0.5)[None, :, None]
        inv = 1.0 / edge
        alpha = cx.new_zeros(cx.shape[0], height, width)
        before = []
        for j in range(cx.shape[1] - 1):
            cov, val, _ = _segment(cx, cy, r, v, j, X, Y, inv)
            before.append(alpha)
            alpha = torch.lerp(alpha, val, cov)
        ctx.save_for_backward(cx, cy, r, v, *before)
        ctx.geom = (X, Y, inv)
        return alpha

    @staticmethod
    def backward(ctx, g):
        cx, cy, r, v, *before = ctx.saved_tensors
        X, Y, inv = ctx.geom
        grads = tuple(torch.zeros_like(t) for t in (cx, cy, r, v))
        for j in reversed(range(cx.shape[1] - 1)):
            g = _piece_backward(g, before[j], cx, cy, r, v, j, X, Y, inv, grads)
        return (*grads, None, None, None)


def _piece_backward(g, a, cx, cy, r, v, j, X, Y, inv, grads):
    """Adds piece ``j``'s share of d loss / d (cx, cy, r, v) to ``grads`` given the gradient ``g``
    w.r.t. the alpha after the piece and the alpha ``a`` before it (on the pixels X x Y); returns
    the gradient w.r.t. the alpha before it. Per-stroke factors are taken out of the pixel sums;
    where the pixel projects inside the piece (0 < s < 1) moving along it leaves d unchanged, so
    u's gradient there has no distance term."""
    gcx, gcy, gr, gv = grads
    tot = lambda t: t.sum((1, 2))                     # noqa: E731 - per stroke
    cov, val, (bx, by, px, py, L, s, u, qx, qy, d, dr, dv) = _segment(cx, cy, r, v, j, X, Y, inv)
    bx, by, L, dr, dv = (t[:, 0, 0] for t in (bx, by, L, dr, dv))
    omc = 1 - cov
    gval = g * cov
    gz = gval * (val - a) * omc                       # d/dz of sigmoid(z), z = (r(u) - d) / edge, over inv
    g = g * omc                                       # to alpha before piece j
    t_val, t_valu = tot(gval), tot(gval * u)
    t_z, t_zu = tot(gz), tot(gz * u)
    gv[:, j] += t_val - t_valu
    gv[:, j + 1] += t_valu
    gr[:, j] += inv * (t_z - t_zu)
    gr[:, j + 1] += inv * t_zu
    k = gz / d                                        # the gradient to q is -inv k q (dd/dq = q / d)
    kqx, kqy = k * qx, k * qy
    gs = torch.addcmul(gval * dv[:, None, None], gz, (inv * dr)[:, None, None]) * (u == s)
    gs_px = (gs.sum(1) * px[:, 0, :]).sum(1)
    gs_py = (gs.sum(2) * py[:, :, 0]).sum(1)
    t_s, t_ss = tot(gs), tot(gs * s)
    gbx = inv * tot(kqx * u) + gs_px / L - 2 * bx / L * t_ss
    gby = inv * tot(kqy * u) + gs_py / L - 2 * by / L * t_ss
    gax = inv * tot(kqx) - bx / L * t_s               # -sum of (gq + gs b / L)
    gay = inv * tot(kqy) - by / L * t_s
    gcx[:, j] += gax - gbx
    gcx[:, j + 1] += gbx
    gcy[:, j] += gay - gby
    gcy[:, j + 1] += gby
    return g


def _windows(cx, cy, r, height, width, edge):
    """Per piece j, the pixels where it can matter: ``(idx, X, Y)`` with ``idx`` the ``N x Kh x Kw``
    flat indices into the ``N x H x W`` canvas of each stroke's window (the piece's box grown by
    its larger radius + 10 edge widths + 1, clipped to the canvas, padded to the batch's largest
    and shifted to lie inside the canvas) and X, Y the 2x-canvas coordinates of its columns, rows."""
    with torch.no_grad():
        m = torch.maximum(r[:, :-1], r[:, 1:]) + 10 * edge + 1

        def span(c, size):
            lo = torch.floor((torch.minimum(c[:, :-1], c[:, 1:]) - m - 0.5) / 2).clamp(0, size)
            hi = (torch.ceil((torch.maximum(c[:, :-1], c[:, 1:]) + m - 0.5) / 2) + 1).clamp(0, size)
            k = (hi - lo).clamp(min=1).amax(0).long().tolist()           # per piece, batch-wide
            return lo.long(), k

        lx, kw = span(cx, width)
        ly, kh = span(cy, height)
        n = torch.arange(cx.shape[0], device=cx.device)[:, None, None] * (height * width)
        out = []
        for j in range(cx.shape[1] - 1):
            sx = torch.minimum(lx[:, j], torch.tensor(width - kw[j]))[:, None, None]
            sy = torch.minimum(ly[:, j], torch.tensor(height - kh[j]))[:, None, None]
            cols = sx + torch.arange(kw[j], device=cx.device)[None, None, :]      # N x 1 x Kw
            rows = sy + torch.arange(kh[j], device=cx.device)[None, :, None]      # N x Kh x 1
            out.append((n + rows * width + cols, cols.to(cx.dtype) * 2 + 0.5, rows.to(cx.dtype) * 2 + 0.5))
    return out


class _CapsuleChainWindows(torch.autograd.Function):
    """:class:`_CapsuleChain` with each piece evaluated only in its own window per stroke
    (:func:`_windows`): gathered from the canvas, composited, scattered back."""

    @staticmethod
    def forward(ctx, cx, cy, r, v, height, width, edge):
        wins = _windows(cx, cy, r, height, width, edge)
        inv = 1.0 / edge
        alpha = cx.new_zeros(cx.shape[0] * height * width)
        before = []
        for j, (idx, X, Y) in enumerate(wins):
            a = alpha.take(idx)
            cov, val, _ = _segment(cx, cy, r, v, j, X, Y, inv)
            before.append(a)
            alpha[idx] = torch.lerp(a, val, cov)
        ctx.save_for_backward(cx, cy, r, v, *before)
        ctx.geom = (wins, inv)
        return alpha.view(cx.shape[0], height, width)

    @staticmethod
    def backward(ctx, g):
        cx, cy, r, v, *before = ctx.saved_tensors
        wins, inv = ctx.geom
        grads = tuple(torch.zeros_like(t) for t in (cx, cy, r, v))
        g = g.reshape(-1).clone()
        for j in reversed(range(len(wins))):
            idx, X, Y = wins[j]
            g[idx] = _piece_backward(g.take(idx), before[j], cx, cy, r, v, j, X, Y, inv, grads)
        return (*grads, None, None, None)


@dataclass
class AnalyticRendererConfig:
    size: int = 128
    soft: bool = True          # False: the exact hard discs (no gradient)
    edge: float = 0.4          # sigmoid edge width, in pixels of the 2x canvas (fitted to the rasteriser)
    grow: float = 0.0
    segments: int = 12         # capsule pieces of the soft version
    n_discs: int = N_DISCS     # discs of the hard version
    relative_p1: bool = False
    crop: str = "pieces"     # soft version: pieces (per-stroke windows), hull or none (render_soft)
    groups: int = 2            # soft version, crop pieces: batches of strokes of similar radius


class AnalyticRenderer(nn.Module):
    """Drop-in for the neural renderer: ``renderer(p)`` -> ``N x S x S`` alpha; ``render(p, H, W)``
    draws any size. No weights, nothing to train."""

    def __init__(self, cfg: Optional[AnalyticRendererConfig] = None, **kw):
        super().__init__()
        self.cfg = cfg or AnalyticRendererConfig(**kw)

    def render(self, p: torch.Tensor, height: int, width: Optional[int] = None, ref: Optional[int] = None,
               hard: Optional[bool] = None) -> torch.Tensor:
        c = self.cfg
        if (not c.soft) if hard is None else hard:
            return render_hard(p[..., :SHAPE_PARAMS], height, width, ref, c.relative_p1, c.n_discs).to(p.dtype)
        return render_soft(p[..., :SHAPE_PARAMS], height, width, ref, c.edge, c.grow, c.segments, c.relative_p1,
                           c.crop, c.groups)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return self.render(p, self.cfg.size)
