"""Painting metrics: stroke thickness, foreground/background errors, the block mosaic (metrics/painting.py)."""

from __future__ import annotations

import numpy as np

from condsynth.metrics import painting as M


def test_metrics_thickness_fg_bg_and_mosaic():
    s = np.random.default_rng(0).random((25, 13))
    assert np.allclose(M.thickness(s), (s[:, 6] + s[:, 8]) / 2)     # parameters 7 and 9 (1-based)
    prof = M.thickness_profile(s, window=10)
    assert len(prof["mean_z"]) == 2 and np.isclose(prof["mean_z"][0], M.thickness(s)[:10].mean())
    t = np.zeros((4, 4, 3))
    c = t.copy()
    c[:2] = 0.5
    mask = np.zeros((4, 4))
    mask[:2] = 1
    e = M.fg_bg_l2(c, t, mask)
    assert np.isclose(e["fg_l2"], 0.25) and e["bg_l2"] == 0
    img = np.random.default_rng(1).random((128, 128, 3))
    mos = M.block_mosaic(img, 20)
    assert len(np.unique(mos[..., 0])) <= 400 and np.isclose(mos.mean(), img.mean())
    assert M.image_errors(mos, img)["l2"] < M.image_errors(np.zeros_like(img), img)["l2"]
    frames = [(50, c), (100, t)]
    assert M.errors_at_counts(frames, t, (50, 100, 200)).keys() == {50, 100}
