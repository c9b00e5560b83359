"""Stroke parameterisation and the NumPy rasteriser, the renderer's ground truth (data/synth/strokes.py)."""

from __future__ import annotations

import numpy as np

from condsynth.data.synth.strokes import paint_strokes_cpu, rasterize_stroke, rasterize_strokes


def stroke(**kw):
    p = dict(x0=0.2, y0=0.5, x1=0.5, y1=0.5, x2=0.8, y2=0.5, z0=0.1, v0=1.0, z1=0.1, v1=1.0)
    p.update(kw)
    return np.array([p[k] for k in ("x0", "y0", "x1", "y1", "x2", "y2", "z0", "v0", "z1", "v1")])


def test_rasteriser_range_thickness_and_transparency():
    thin = rasterize_stroke(stroke(z0=0.05, z1=0.05), 64)
    thick = rasterize_stroke(stroke(z0=0.3, z1=0.3), 64)
    half = rasterize_stroke(stroke(z0=0.3, z1=0.3, v0=0.5, v1=0.5), 64)
    assert thin.shape == (64, 64) and thin.min() >= 0 and thick.max() <= 1
    assert thick.sum() > 2 * thin.sum() > 0                       # thickness grows with z
    assert np.allclose(half, 0.5 * thick, atol=1e-6)             # transparency scales the values
    # x is the column, y the row: a horizontal stroke at y = 0.5 covers the middle rows only
    assert thin[:, 20:44].sum(1).argmax() in (31, 32) and thin[:10].sum() == 0


def test_rasteriser_transparency_interpolates_along_the_curve():
    a = rasterize_stroke(stroke(z0=0.05, z1=0.05, v0=0.0, v1=1.0), 64)
    cols = a[32]
    assert cols[16] < cols[48]                                   # v grows from P0 to P2


def test_relative_p1_option_changes_the_middle_point():
    p = stroke(y1=1.0)                                           # absolute: P1 at the bottom edge
    assert not np.allclose(rasterize_stroke(p, 32), rasterize_stroke(p, 32, relative_p1=True))


def test_cpu_painting_composites_strokes_in_order():
    red, blue = np.r_[stroke(z0=0.3, z1=0.3), 1, 0, 0], np.r_[stroke(z0=0.1, z1=0.1), 0, 0, 1]
    alpha = rasterize_strokes(np.stack([red, blue])[:, :10], 32)
    assert alpha.shape == (2, 32, 32) and rasterize_strokes(np.zeros((0, 10)), 32).shape == (0, 32, 32)
    canvas = paint_strokes_cpu(np.stack([red, blue]), size=32)
    a, b = alpha[0][..., None], alpha[1][..., None]
    expected = b * np.array([0, 0, 1]) + (1 - b) * (a * np.array([1, 0, 0]))   # C = a*rgb + (1-a)*C
    np.testing.assert_allclose(canvas, expected, atol=1e-6)
    assert canvas[16, 16, 2] > 0.9 and canvas[16, 16, 0] < 0.1   # the later blue stroke is on top
