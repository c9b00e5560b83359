"""Stroke files: JSON round trip, SVG, bad files (io/strokes.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from condsynth.errors import UserError
from condsynth.io.strokes import FIELDS, load_strokes_json, save_strokes_json, save_svg, stroke_radius_px


def test_json_round_trip_keeps_five_decimals(tmp_path):
    strokes = np.random.default_rng(0).random((4, 13)).astype(np.float32)
    path = save_strokes_json(strokes, tmp_path / "s.json", 64, 32, mode="agent")
    doc = json.loads(path.read_text())
    assert doc["order"] == list(FIELDS) and doc["canvas"] == [32, 64] and doc["mode"] == "agent"
    np.testing.assert_allclose(load_strokes_json(path), strokes, atol=5e-6)


def test_svg_has_one_group_per_stroke_and_the_rasteriser_widths(tmp_path):
    strokes = np.zeros((3, 13))
    strokes[:, 6] = strokes[:, 8] = 0.5                              # z = 0.5 at both ends
    svg = save_svg(strokes, tmp_path / "s.svg", 128, 128, segments=4).read_text()
    assert svg.startswith("<svg") and svg.count("<g ") == 3 and svg.count("<line ") == 12
    assert float(stroke_radius_px(0.5, 128)) == 16.5                  # (1 + 256/4 * z) / 2: drawn at 2x, halved
    assert 'stroke-width="33.00"' in svg


def test_a_file_that_is_not_strokes_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"strokes": [[1, 2, 3]]}')
    with pytest.raises(UserError, match="not a strokes JSON file"):
        load_strokes_json(bad)
