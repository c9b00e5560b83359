"""Stroke files: the painter's strokes as JSON (exact, reloadable) and as SVG (for looking at).

A stroke is 13 numbers in the thesis order, :data:`FIELDS`: a quadratic Bezier curve (x to the
right, y down, in [0, 1] of the canvas), thickness z and opacity v at both ends, and a colour.
Strokes are composited in order on a black canvas, C = a * rgb + (1 - a) * C.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from condsynth.errors import UserError
from condsynth.io.atomic import atomic_write_text

FIELDS = ("x0", "y0", "x1", "y1", "x2", "y2", "z0", "v0", "z1", "v1", "r", "g", "b")
JSON_FORMAT = "condsynth.strokes/1"


def stroke_radius_px(z, canvas_size: int):
    """Radius in pixels of a stroke end of thickness ``z`` on a ``canvas_size`` canvas (drawn 2x)."""
    return (1.0 + (2 * canvas_size) / 4 * np.asarray(z)) / 2.0


def save_svg(strokes: np.ndarray, path, width: int, height: int, segments: int = 12, discs=None) -> Path:
    """Strokes as SVG: each Bezier is cut into ``segments`` round-capped lines whose width and
    opacity follow the stroke's (z, v) interpolation; a stroke is one group so that its own
    overlaps do not add up. Black background, as the canvas starts.

    ``discs`` (per stroke an ``M x 4`` array of (cx, cy, radius, value) in pixels, from
    ``models.painting.analytic_renderer.stroke_discs``) draws the strokes exactly as the hard
    raster does instead: each stroke is a rectangle of its colour through a mask of its discs,
    later discs painted over earlier ones with grey level = value, so the mask is the alpha."""
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">', f'<rect width="{width}" height="{height}" fill="black"/>']
    size = max(width, height)
    if discs is not None:
        for i, (s, d) in enumerate(zip(np.asarray(strokes, np.float64).reshape(-1, len(FIELDS)), discs)):
            col = "#%02x%02x%02x" % tuple(int(round(c * 255)) for c in s[10:13])
            lines.append(f'<mask id="m{i}" maskUnits="userSpaceOnUse" x="0" y="0" width="{width}" height="{height}">')
            for cx, cy, r, v in d:
                g = int(round(v * 255))
                lines.append(f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="{r:.2f}" fill="rgb({g},{g},{g})"/>')
            lines.append(f'</mask><rect width="{width}" height="{height}" fill="{col}" mask="url(#m{i})"/>')
        lines.append("</svg>")
        path = Path(path)
        atomic_write_text(path, "\n".join(lines) + "\n")
        return path
    for s in np.asarray(strokes, np.float64).reshape(-1, len(FIELDS)):
        x0, y0, x1, y1, x2, y2, z0, v0, z1, v1, r, g, b = s
        col = "#%02x%02x%02x" % tuple(int(round(c * 255)) for c in (r, g, b))
        op = 0.5 * (v0 + v1)
        lines.append(f'<g stroke="{col}" stroke-linecap="round" fill="none" opacity="{op:.3f}">')
        for i in range(segments):
            ta, tb = i / segments, (i + 1) / segments
            pa = [(1 - ta) ** 2 * a + 2 * ta * (1 - ta) * m + ta * ta * c for a, m, c in ((x0, x1, x2), (y0, y1, y2))]
            pb = [(1 - tb) ** 2 * a + 2 * tb * (1 - tb) * m + tb * tb * c for a, m, c in ((x0, x1, x2), (y0, y1, y2))]
            tm = 0.5 * (ta + tb)
            w = 2 * stroke_radius_px((1 - tm) * z0 + tm * z1, size)
            lines.append(f'<line x1="{pa[0] * (width - 1):.2f}" y1="{pa[1] * (height - 1):.2f}" '
                         f'x2="{pb[0] * (width - 1):.2f}" y2="{pb[1] * (height - 1):.2f}" stroke-width="{w:.2f}"/>')
        lines.append("</g>")
    lines.append("</svg>")
    path = Path(path)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def save_strokes_json(strokes: np.ndarray, path, width: int, height: int, mode: str = "") -> Path:
    """Strokes as JSON, 5 decimals per number, with the canvas size and how to composite them."""
    doc = {"format": JSON_FORMAT, "order": list(FIELDS), "canvas": [height, width],
           "mode": mode, "background": [0, 0, 0],
           "notes": "quadratic Bezier; x right, y down, in [0,1] of the canvas; radius_px = "
                    "(1 + canvas/2 * z) / 2; v = opacity; composited in order: C = a*rgb + (1-a)*C",
           "strokes": [[round(float(v), 5) for v in s] for s in np.asarray(strokes).reshape(-1, len(FIELDS))]}
    path = Path(path)
    atomic_write_text(path, json.dumps(doc) + "\n")
    return path


def load_strokes_json(path) -> np.ndarray:
    """``N x 13`` float32 strokes of a file written by :func:`save_strokes_json`."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        arr = np.asarray(doc["strokes"], np.float32).reshape(-1, len(FIELDS))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a strokes JSON file ({type(exc).__name__})") from None
    return arr
