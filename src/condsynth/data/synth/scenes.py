"""The "scenes" synthetic world: semantic label maps of simple outdoor scenes and a rendered photo of each.

It stands in for labels->photo datasets (Cityscapes, CMP Facades, ADE20K) in tests, tutorials and the
demo checkpoints: pix2pix, pix2pixHD and CycleGAN can all train on it in minutes on a CPU, and the
label map is exact ground truth for segmentation scores.

A scene is composed back to front (painter's algorithm) from a random layout:
sky, an optional sun, clouds, grass below a gently curved horizon, an optional road in perspective,
buildings standing on the horizon with a grid of windows and a door, then trees and bushes sorted by
depth (a farther object is drawn first and is smaller). The photo is rendered from the same layout:
per-class colours with per-object jitter, gradients (sky, haze towards the horizon), shading
(light from the upper left), value-noise textures, tree shadows, a dashed road marking, pixel noise
and a slight blur.

Determinism: everything comes from ``numpy.random.default_rng(seed)``; the same seed gives identical
arrays. The layout is drawn first and in normalised coordinates, before any size-dependent draw,
so one seed gives the same scene composition at every resolution.

Non-square images (e.g. ``size=(64, 128)``, pix2pixHD's 2:1) show the same layout: positions span
the width, while sizes of round things (sun, crowns, bushes, trunks, shadows) are relative to the
height, so they stay round; buildings and clouds stretch with the width. Square images are unchanged
by this, bit for bit.

Instance maps as written to disk follow Cityscapes: a pixel of a "thing" class (cloud, building,
tree, bush) holds ``class * 1000 + k``, k counting that class's objects visible in the image from 0
in drawing order; every other pixel, "stuff" (sky, sun, grass, road) and object parts (window, door,
trunk), holds its class id. Parts thus do not carry their object's id on disk (in
:attr:`Scene.instances` they do): pix2pixHD pools its encoder's features per instance id, and a
building's pooled colour should be its facade's, not a mix with its glass.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from condsynth.data.check import LabelStats, Report, check_dataset, register_check
from condsynth.errors import UserError
from condsynth.io.atomic import atomic_dir, atomic_write_text
from condsynth.io.images import label_map_image

WORLD_NAME = "scenes"
# Bump when a change alters the images produced for a given seed; meta.json records it.
WORLD_VERSION = 1

CLASSES: tuple[str, ...] = (
    "sky", "cloud", "sun", "grass", "road", "building", "window", "door", "tree", "trunk", "bush",
)
SKY, CLOUD, SUN, GRASS, ROAD, BUILDING, WINDOW, DOOR, TREE, TRUNK, BUSH = range(len(CLASSES))

# Colours of the label maps, fixed forever (stored datasets and checkpoints depend on them).
# Chosen far apart in RGB so a label map read back from a lossy resize can still be decoded;
# several follow the Cityscapes palette for the classes it shares (sky, road, building, vegetation).
PALETTE = np.array([
    (70, 130, 180),   # sky        (Cityscapes sky)
    (255, 255, 255),  # cloud
    (250, 170, 30),   # sun
    (152, 251, 152),  # grass      (Cityscapes terrain)
    (128, 64, 128),   # road       (Cityscapes road)
    (70, 70, 70),     # building   (Cityscapes building)
    (0, 0, 230),      # window
    (220, 20, 60),    # door
    (107, 142, 35),   # tree       (Cityscapes vegetation)
    (120, 60, 0),     # trunk
    (0, 255, 120),    # bush
], dtype=np.uint8)


@dataclass(frozen=True)
class Scene:
    """One sample of the world.

    labels:    H x W uint8 class ids (indices into :data:`CLASSES`).
    label_rgb: H x W x 3 uint8, ``PALETTE[labels]`` (what pix2pix-style datasets store as image A).
    photo:     H x W x 3 uint8 rendered image (image B).
    instances: H x W int32 object ids, 0 for "stuff" (sky, grass, road, sun); windows and doors
               carry the id of their building, trunks the id of their tree. Useful for pix2pixHD's
               instance boundary maps. :func:`instance_ids` gives the map written to disk.

    objects:   object id (as in ``instances``) -> {"class": name, "facade": index into the 7 facade
               colours (buildings only)}, for every object of the layout, visible or not.
    """

    labels: np.ndarray
    label_rgb: np.ndarray
    photo: np.ndarray
    instances: np.ndarray
    objects: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- layout
# All layout quantities are in normalised image coordinates: u = x / width, v = y / height, both in
# [0, 1], v growing downwards.

@dataclass
class _Building:
    inst: int
    x0: float
    x1: float
    top: float
    bottom: float
    n_cols: int
    n_rows: int            # window rows above the ground floor
    win_fx: float          # window width as a fraction of its cell
    win_fy: float
    door_col: int          # -1: no door
    facade: int            # index into _FACADE_COLOURS of the facade's base colour
    colour: np.ndarray
    lit: np.ndarray        # (n_rows, n_cols) bool: windows with the light on


@dataclass
class _Tree:
    inst: int
    x: float
    base: float            # v of the trunk's foot
    trunk_w: float
    trunk_h: float
    blobs: np.ndarray      # (k, 3): centre u, centre v, radius of the circles whose union is the crown
    colour: np.ndarray


@dataclass
class _Bush:
    inst: int
    blobs: np.ndarray      # (k, 3) circles, clipped at ``base``
    base: float
    colour: np.ndarray


@dataclass
class _Layout:
    horizon: float
    hill_amp: float
    hill_freq: float
    hill_phase: float
    sun: tuple[float, float, float] | None           # u, v, radius
    clouds: list[tuple[int, np.ndarray]]             # (instance id, (k, 4) ellipses u, v, ru, rv)
    road: tuple[float, float, float, float] | None   # vanishing u, half-width at top, bottom left, bottom right
    buildings: list[_Building]
    trees: list[_Tree]
    bushes: list[_Bush]
    sky_top: np.ndarray
    sky_low: np.ndarray
    grass_colour: np.ndarray
    road_grey: float
    exposure: float
    tint: np.ndarray
    light: np.ndarray      # unit 2-vector pointing towards the light, (du, dv)

    def horizon_at(self, u):
        return self.horizon + self.hill_amp * np.sin(2 * np.pi * self.hill_freq * u + self.hill_phase)

    def road_edges(self, v):
        """Left and right road edge (u) at height v; only meaningful for v >= the horizon."""
        vx, half_top, left_b, right_b = self.road
        t = np.clip((v - self.horizon) / (1.0 - self.horizon), 0.0, None)
        return vx - half_top + t * (left_b - (vx - half_top)), vx + half_top + t * (right_b - (vx + half_top))


_FACADE_COLOURS = np.array([
    (0.62, 0.32, 0.25), (0.78, 0.70, 0.55), (0.55, 0.55, 0.58), (0.85, 0.82, 0.75),
    (0.45, 0.40, 0.38), (0.70, 0.52, 0.38), (0.60, 0.65, 0.70),
])


def _rgb(values) -> np.ndarray:
    """A colour as float32, so that it does not promote the float32 image fields to float64."""
    return np.asarray(values, dtype=np.float32)


def _jitter(rng, colour, amount):
    return _rgb(np.clip(np.asarray(colour) + rng.uniform(-amount, amount, 3), 0.0, 1.0))


def _sample_layout(rng: np.random.Generator) -> _Layout:
    next_inst = iter(range(1, 1 << 30))
    horizon = rng.uniform(0.42, 0.62)
    hill_amp = rng.uniform(0.0, 0.025)
    hill_freq = rng.uniform(0.5, 2.0)
    hill_phase = rng.uniform(0, 2 * np.pi)

    sun = None
    if rng.random() < 0.5:
        sun = (rng.uniform(0.1, 0.9), rng.uniform(0.08, horizon * 0.6), rng.uniform(0.035, 0.07))

    clouds = []
    for _ in range(rng.integers(0, 4)):
        cu, cv = rng.uniform(0.0, 1.0), rng.uniform(0.06, max(0.08, horizon - 0.15))
        k = rng.integers(3, 6)
        width = rng.uniform(0.08, 0.2)
        ellipses = np.stack([
            cu + rng.uniform(-width, width, k),
            cv + rng.uniform(-0.02, 0.015, k),
            rng.uniform(0.04, 0.09, k),
            rng.uniform(0.025, 0.045, k),
        ], axis=1)
        clouds.append((next(next_inst), ellipses))

    road = None
    if rng.random() < 0.75:
        vx = rng.uniform(0.3, 0.7)
        half_top = rng.uniform(0.005, 0.03)
        centre_b = vx + rng.uniform(-0.35, 0.35)
        half_b = rng.uniform(0.2, 0.45)
        road = (vx, half_top, centre_b - half_b, centre_b + half_b)

    buildings = []
    for _ in range(rng.choice(5, p=[0.15, 0.25, 0.3, 0.2, 0.1])):
        width = rng.uniform(0.12, 0.35)
        x0 = rng.uniform(-0.08, 1.0 - width + 0.08)
        height = rng.uniform(0.15, min(0.5, horizon - 0.04))
        # Stand the building on the lowest point of the horizon under it, so no sky shows beneath.
        us = np.linspace(x0, x0 + width, 16)
        bottom = float(np.max(horizon + hill_amp * np.sin(2 * np.pi * hill_freq * us + hill_phase))) + 0.01
        n_cols = max(1, int(round(width / rng.uniform(0.05, 0.09))))
        floor_h = rng.uniform(0.055, 0.09)
        n_rows = max(0, int((height - floor_h) / floor_h))
        # The draws below keep the order they had before the facade index was stored (WORLD_VERSION 1).
        win_fx, win_fy = rng.uniform(0.45, 0.7), rng.uniform(0.45, 0.65)
        door_col = int(rng.integers(0, n_cols)) if rng.random() < 0.75 else -1
        facade = int(rng.integers(len(_FACADE_COLOURS)))
        buildings.append(_Building(
            inst=next(next_inst), x0=x0, x1=x0 + width, top=bottom - height, bottom=bottom,
            n_cols=n_cols, n_rows=n_rows, win_fx=win_fx, win_fy=win_fy, door_col=door_col, facade=facade,
            colour=_jitter(rng, _FACADE_COLOURS[facade], 0.05),
            lit=rng.random((max(n_rows, 1), n_cols)) < 0.2,
        ))
    # Taller buildings behind shorter ones reads more naturally.
    buildings.sort(key=lambda b: b.top)

    layout = _Layout(
        horizon=horizon, hill_amp=hill_amp, hill_freq=hill_freq, hill_phase=hill_phase,
        sun=sun, clouds=clouds, road=road, buildings=buildings, trees=[], bushes=[],
        sky_top=_jitter(rng, (0.22, 0.42, 0.78), 0.06), sky_low=_jitter(rng, (0.70, 0.80, 0.92), 0.05),
        grass_colour=_jitter(rng, (0.30, 0.52, 0.18), 0.06), road_grey=rng.uniform(0.28, 0.42),
        exposure=rng.uniform(0.9, 1.08), tint=rng.uniform(-0.03, 0.03, 3),
        light=np.array([-0.6, -0.8]),
    )

    def off_road(u, v):
        """Move a ground object sideways off the road (objects stand on grass)."""
        if road is None:
            return u
        left, right = layout.road_edges(v)
        if left - 0.02 < u < right + 0.02:
            u = left - 0.03 if u - left < right - u else right + 0.03
        return u

    for _ in range(rng.choice(5, p=[0.2, 0.25, 0.25, 0.2, 0.1])):
        base = rng.uniform(horizon + 0.03, 0.98)
        depth = (base - horizon) / (1.0 - horizon)        # 0 at the horizon, 1 at the bottom edge
        scale = 0.45 + 0.9 * depth
        x = off_road(rng.uniform(0.0, 1.0), base)
        trunk_h = rng.uniform(0.06, 0.1) * scale
        crown_r = rng.uniform(0.05, 0.08) * scale
        crown_v = base - trunk_h - 0.6 * crown_r
        k = rng.integers(3, 6)
        blobs = np.stack([
            x + rng.uniform(-0.6, 0.6, k) * crown_r,
            crown_v + rng.uniform(-0.6, 0.3, k) * crown_r,
            crown_r * rng.uniform(0.6, 1.0, k),
        ], axis=1)
        layout.trees.append(_Tree(
            inst=next(next_inst), x=x, base=base, trunk_w=rng.uniform(0.012, 0.02) * scale, trunk_h=trunk_h,
            blobs=blobs, colour=_jitter(rng, (0.13, 0.36, 0.11), 0.05)))

    for _ in range(rng.integers(0, 5)):
        base = rng.uniform(horizon + 0.03, 0.99)
        depth = (base - horizon) / (1.0 - horizon)
        scale = 0.45 + 0.9 * depth
        x = off_road(rng.uniform(0.0, 1.0), base)
        k = rng.integers(2, 4)
        r = rng.uniform(0.03, 0.05) * scale
        blobs = np.stack([
            x + rng.uniform(-1.0, 1.0, k) * r,
            np.full(k, base) - rng.uniform(0.0, 0.3, k) * r,
            r * rng.uniform(0.7, 1.0, k),
        ], axis=1)
        layout.bushes.append(_Bush(inst=next(next_inst), blobs=blobs, base=base,
                                   colour=_jitter(rng, (0.28, 0.48, 0.14), 0.05)))
    return layout


# ---------------------------------------------------------------------------------- rasterisation
class _Raster:
    """Pixel-centre coordinate grids plus the label and instance maps being painted.

    ``a`` (width / height) converts a horizontal distance in u to the height's units: round shapes
    test ``((u - cu) * a) ** 2 + (v - cv) ** 2 <= r ** 2`` and extend ``r / a`` in u.
    """

    def __init__(self, h: int, w: int):
        self.h, self.w, self.a = h, w, w / h
        self.v = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]      # H x 1
        self.u = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]      # 1 x W
        self.labels = np.zeros((h, w), np.uint8)
        self.inst = np.zeros((h, w), np.int32)

    def box(self, u0, v0, u1, v1):
        """Slices of the pixels whose centres may fall inside [u0, u1] x [v0, v1], with their coordinates.

        Working inside an object's bounding box keeps the cost per object proportional to its area.
        """
        r0, r1 = max(0, int(np.floor(v0 * self.h))), min(self.h, int(np.ceil(v1 * self.h)) + 1)
        c0, c1 = max(0, int(np.floor(u0 * self.w))), min(self.w, int(np.ceil(u1 * self.w)) + 1)
        r1, c1 = max(r0, r1), max(c0, c1)
        return (slice(r0, r1), slice(c0, c1)), self.v[r0:r1], self.u[:, c0:c1]

    def paint(self, sl, mask, cls, inst=0):
        self.labels[sl][mask] = cls
        self.inst[sl][mask] = inst


def _circles_mask(v, u, blobs, a, clip_below=None):
    """Union of circles (rows u, v, r) on a sub-grid; optionally only the part above v = clip_below."""
    cu, cv, r = blobs[:, 0, None, None], blobs[:, 1, None, None], blobs[:, 2, None, None]
    mask = ((((u[None] - cu) * a) ** 2 + (v[None] - cv) ** 2) <= r ** 2).any(axis=0)
    if clip_below is not None:
        mask &= v <= clip_below
    return mask


def _window_cells(b: _Building, v, u):
    """Per-pixel window column/row index inside building b and whether the pixel is glass or door."""
    width, height = b.x1 - b.x0, b.bottom - b.top
    floor_h = height / (b.n_rows + 1)                  # n_rows window floors plus a ground floor
    cell_w = width / b.n_cols
    fu = (u - b.x0) / cell_w
    fv = (v - b.top) / floor_h
    col, row = np.floor(fu).astype(np.int64), np.floor(fv).astype(np.int64)
    px, py = fu - col, fv - row                        # position inside the cell, in [0, 1)
    in_x = np.abs(px - 0.5) < b.win_fx / 2
    in_y = np.abs(py - 0.5) < b.win_fy / 2
    window = in_x & in_y & (row < b.n_rows) & (col >= 0) & (col < b.n_cols)
    # The door: centred in its column, on the ground floor, from 35% of its height to the ground.
    door = ((row >= b.n_rows) & (col == b.door_col) & (np.abs(px - 0.5) < min(0.3, b.win_fx / 2 + 0.05))
            & (py > 0.3)) if b.door_col >= 0 else np.zeros_like(window)
    return window, door, np.clip(row, 0, max(b.n_rows - 1, 0)), np.clip(col, 0, b.n_cols - 1)


def _rasterise(layout: _Layout, h: int, w: int) -> _Raster:
    r = _Raster(h, w)
    a = r.a
    # Sky covers everything to start with.
    if layout.sun is not None:
        su, sv, sr = layout.sun
        sl, v, u = r.box(su - sr / a, sv - sr, su + sr / a, sv + sr)
        r.paint(sl, ((u - su) * a) ** 2 + (v - sv) ** 2 <= sr ** 2, SUN)
    for inst, ell in layout.clouds:
        # Clouds stretch with the image (they are amorphous; corrected, their puffs fall apart).
        sl, v, u = r.box((ell[:, 0] - ell[:, 2]).min(), (ell[:, 1] - ell[:, 3]).min(),
                         (ell[:, 0] + ell[:, 2]).max(), (ell[:, 1] + ell[:, 3]).max())
        e = ell[:, :, None, None]
        mask = ((((u[None] - e[:, 0]) / e[:, 2]) ** 2 + ((v[None] - e[:, 1]) / e[:, 3]) ** 2) <= 1).any(0)
        r.paint(sl, mask, CLOUD, inst)
    ground = r.v >= layout.horizon_at(r.u)
    r.labels[ground] = GRASS
    r.inst[ground] = 0
    if layout.road is not None:
        left, right = layout.road_edges(r.v)
        road = ground & (r.u >= left) & (r.u <= right)
        r.labels[road] = ROAD
        r.inst[road] = 0
    for b in layout.buildings:
        sl, v, u = r.box(b.x0, b.top, b.x1, b.bottom)
        body = (u >= b.x0) & (u <= b.x1) & (v >= b.top) & (v <= b.bottom)
        r.paint(sl, body, BUILDING, b.inst)
        window, door, _, _ = _window_cells(b, v, u)
        r.paint(sl, body & window, WINDOW, b.inst)
        r.paint(sl, body & door, DOOR, b.inst)
    # Ground objects far to near, so nearer ones occlude farther ones.
    objects = sorted([("tree", t.base, t) for t in layout.trees] + [("bush", b.base, b) for b in layout.bushes],
                     key=lambda o: o[1])
    for kind, _, obj in objects:
        if kind == "tree":
            t = obj
            sl, v, u = r.box(t.x - t.trunk_w / a, t.base - t.trunk_h, t.x + t.trunk_w / a, t.base)
            r.paint(sl, (np.abs(u - t.x) * a <= t.trunk_w / 2) & (v >= t.base - t.trunk_h) & (v <= t.base),
                    TRUNK, t.inst)
            bl = t.blobs
            sl, v, u = r.box((bl[:, 0] - bl[:, 2] / a).min(), (bl[:, 1] - bl[:, 2]).min(),
                             (bl[:, 0] + bl[:, 2] / a).max(), (bl[:, 1] + bl[:, 2]).max())
            r.paint(sl, _circles_mask(v, u, bl, a), TREE, t.inst)
        else:
            bl = obj.blobs
            sl, v, u = r.box((bl[:, 0] - bl[:, 2] / a).min(), (bl[:, 1] - bl[:, 2]).min(),
                             (bl[:, 0] + bl[:, 2] / a).max(), obj.base)
            r.paint(sl, _circles_mask(v, u, bl, a, clip_below=obj.base), BUSH, obj.inst)
    return r


# -------------------------------------------------------------------------------------- rendering
def _value_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in about [-1, 1]: a (cells+1)^2 grid of normals, smoothstep-interpolated to h x w.

    The number of random draws does not depend on the size, so the texture is the same pattern at
    every resolution (stretched with the image's aspect).
    """
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32) * 0.5

    def cell_and_weight(n):
        t = (np.arange(n, dtype=np.float32) + 0.5) * (cells / n)
        i = np.minimum(t.astype(np.int64), cells - 1)
        f = t - i
        return i, f * f * (3 - 2 * f)

    iy, fy = cell_and_weight(h)
    ix, fx = cell_and_weight(w)
    fy, fx = fy[:, None], fx[None, :]
    top = grid[iy][:, ix] * (1 - fx) + grid[iy][:, ix + 1] * fx
    bottom = grid[iy + 1][:, ix] * (1 - fx) + grid[iy + 1][:, ix + 1] * fx
    return top * (1 - fy) + bottom * fy


def _blur121(img: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur with edge replication (a slight camera softness)."""
    p = np.pad(img, ((1, 1), (0, 0), (0, 0)), mode="edge")
    img = 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]
    p = np.pad(img, ((0, 0), (1, 1), (0, 0)), mode="edge")
    return 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]


@dataclass
class _Winter:
    """The ``winter`` style: overcast grey sky, snow on the grass and on top of tree crowns and bushes.

    Its parameters and its snow-cover noise come from the style's own generator (:func:`style_rng`),
    so the scene's generator makes the same draws as in summer: layout, labels, textures and the
    sensor noise are identical, and the two photos differ only on (and, through the camera's 3x3
    blur, one pixel around) sky, sun, cloud, grass, tree and bush pixels.
    """
    sky_top: np.ndarray
    sky_low: np.ndarray
    snow: np.ndarray
    cloud_grey: float
    cover: np.ndarray          # H x W value noise in about [-1, 1]: where crowns hold more snow

    @classmethod
    def draw(cls, rng: np.random.Generator, h: int, w: int) -> "_Winter":
        grey = rng.uniform(0.58, 0.72)
        return cls(sky_top=_rgb([grey, grey * 1.01, grey * 1.05]), sky_low=_rgb(np.full(3, grey + 0.14)),
                   snow=_jitter(rng, (0.93, 0.95, 0.98), 0.02), cloud_grey=float(rng.uniform(0.78, 0.88)),
                   cover=_value_noise(rng, h, w, 16))

    def snowed(self, colour: np.ndarray, height: np.ndarray, fine: np.ndarray, cover: np.ndarray) -> np.ndarray:
        """``colour`` (h x w x 3) under snow where ``height`` (about -1 at the bottom .. 1 at the top of the
        object) and the ``cover`` noise say so; ``fine`` and ``cover`` are the fields cut to the same box."""
        amount = np.clip(0.45 + 0.9 * height + 0.6 * cover, 0.0, 1.0)[..., None]
        return colour * (1 - amount) + self.snow * (0.92 + 0.08 * fine)[..., None] * amount


def _render(layout: _Layout, r: _Raster, rng: np.random.Generator, winter: _Winter | None = None) -> np.ndarray:
    labels, v, u, a = r.labels, r.v, r.u, r.a
    # Size-independent textures first (same draws at every size), per-pixel noise last.
    coarse = _value_noise(rng, r.h, r.w, 6)
    medium = _value_noise(rng, r.h, r.w, 16)
    fine = _value_noise(rng, r.h, r.w, 48)
    img = np.zeros((r.h, r.w, 3), np.float32)

    def fill(mask, colour):
        img[mask] = colour if np.ndim(colour) == 1 else colour[mask]

    ones = np.ones((r.h, r.w, 1), np.float32)
    h = layout.horizon

    # Sky: vertical gradient to a pale horizon, with a warm glow around the sun.
    t = np.clip(v / h, 0, 1)[..., None] * ones
    if winter is None:
        sky = layout.sky_top * (1 - t) + layout.sky_low * t
    else:
        sky = winter.sky_top * (1 - t) + winter.sky_low * t
    if layout.sun is not None:
        su, sv, sr = layout.sun
        glow = np.exp(-(((u - su) * a) ** 2 + (v - sv) ** 2) / (2 * (3 * sr) ** 2))[..., None]
        sky = sky + (0.35 if winter is None else 0.12) * glow * (_rgb([1.0, 0.9, 0.6]) - sky)
    sky = sky + 0.015 * coarse[..., None]
    fill(labels == SKY, sky)
    fill(labels == SUN, _rgb([1.0, 0.96, 0.7]) if winter is None else _rgb([0.9, 0.9, 0.86]))

    # Clouds: white, greyer towards the bottom of each cloud, soft texture.
    cloud = labels == CLOUD
    if cloud.any():
        shade = np.zeros((r.h, r.w), np.float32)
        for inst, ell in layout.clouds:
            m = r.inst == inst
            cv, rv = ell[:, 1].mean(), ell[:, 3].max()
            shade[m] = np.broadcast_to(np.clip((v - (cv - rv)) / (2 * rv), 0, 1), m.shape)[m]
        base = (0.98 - 0.2 * shade + 0.04 * medium)[..., None] * _rgb([1.0, 1.0, 1.02])
        if winter is not None:
            base = base * np.float32(winter.cloud_grey)
        fill(cloud, base)

    # Ground: grass texture, hazier (towards the sky's horizon colour) with distance.
    depth = np.clip((v - h) / (1 - h), 0, 1)
    haze = np.exp(-6.0 * depth)[..., None] * 0.45
    grass = layout.grass_colour * (1 + 0.12 * coarse + 0.1 * fine)[..., None] * (0.85 + 0.2 * depth)[..., None]
    if winter is None:
        grass = grass * (1 - haze) + layout.sky_low * haze
    else:       # snow: bright, a little texture, hazier with distance towards the grey sky
        snow = winter.snow * (0.9 + 0.05 * coarse + 0.03 * fine + 0.05 * depth)[..., None]
        grass = snow * (1 - haze) + winter.sky_low * haze
    fill(labels == GRASS, grass)

    road = labels == ROAD
    if road.any():
        asphalt = (layout.road_grey * (1 + 0.06 * coarse + 0.12 * fine))[..., None] * _rgb([1.0, 1.0, 1.03])
        left, right = layout.road_edges(v)
        centre, half = (left + right) / 2, (right - left) / 2
        # Dashed centre line: a fixed width relative to the road, dashes that shorten with distance.
        dash_phase = np.sin(2 * np.pi * 3.0 / np.maximum(v - h + 0.02, 1e-3) * 0.1)
        marking = (np.abs(u - centre) < 0.02 * half) & (dash_phase > 0)
        asphalt = np.where(marking[..., None], _rgb([0.92, 0.88, 0.6]), asphalt)
        asphalt = asphalt * (1 - haze) + layout.sky_low * haze
        fill(road, asphalt)

    for b in layout.buildings:
        sl, bv, bu = r.box(b.x0, b.top, b.x1, b.bottom)
        mine = r.inst[sl] == b.inst
        lab = labels[sl]
        window, door, row, col = _window_cells(b, bv, bu)
        # Light from the upper left: the facade darkens to the right, and a thin ledge line per floor.
        across = np.clip((bu - b.x0) / (b.x1 - b.x0), 0, 1)
        floor_h = (b.bottom - b.top) / (b.n_rows + 1)
        ledge = (((bv - b.top) / floor_h) % 1.0) < 0.08
        facade = b.colour * (1.0 - 0.18 * across - 0.12 * ledge + 0.05 * medium[sl])[..., None]
        glass = _rgb([0.16, 0.24, 0.36]) + 0.25 * np.clip(1 - ((bv - b.top) / floor_h) % 1.0, 0, 1)[..., None] \
            * _rgb([0.5, 0.6, 0.7]) * 0.5
        glass = np.broadcast_to(glass, facade.shape)
        lit = b.lit[row, col][..., None]
        glass = np.where(lit, _rgb([0.95, 0.82, 0.45]), glass)
        wood = _rgb([0.38, 0.22, 0.1]) * (1 + 0.1 * fine[sl])[..., None]
        out = img[sl]
        m = mine & (lab == BUILDING)
        out[m] = facade[m]
        m = mine & (lab == WINDOW)
        out[m] = glass[m]
        m = mine & (lab == DOOR)
        out[m] = wood[m]
        # Haze on the whole building, as for the ground at the horizon.
        out[mine] = out[mine] * 0.8 + layout.sky_low * 0.2

    # Tree shadows on the ground, cast away from the light.
    ground = (labels == GRASS) | (labels == ROAD)
    for t in layout.trees:
        reach = 2.5 * t.blobs[:, 2].max()
        cu, cv = t.x - layout.light[0] * reach * 0.5, t.base + 0.01
        sl, sv, su_ = r.box(cu - reach / a, cv - reach * 0.3, cu + reach / a, cv + reach * 0.3)
        inside = (((su_ - cu) * a / reach) ** 2 + ((sv - cv) / (reach * 0.25)) ** 2) <= 1
        m = inside & ground[sl]
        img[sl][m] *= 0.65

    light_u, light_v = layout.light
    for t in layout.trees:
        bl = t.blobs
        sl, tv, tu = r.box(min((bl[:, 0] - bl[:, 2] / a).min(), t.x - t.trunk_w / a), (bl[:, 1] - bl[:, 2]).min(),
                           max((bl[:, 0] + bl[:, 2] / a).max(), t.x + t.trunk_w / a), t.base)
        mine = r.inst[sl] == t.inst
        lab = labels[sl]
        cu, cv, rad = bl[:, 0].mean(), bl[:, 1].mean(), bl[:, 2].max()
        # Crown lit from the light's side: brightness follows the offset along the light direction.
        lit = np.clip(((tu - cu) * a * light_u + (tv - cv) * light_v) / rad, -1.5, 1.5)
        crown = t.colour * (1 + 0.22 * lit + 0.25 * medium[sl] + 0.15 * fine[sl])[..., None]
        if winter is not None:      # snow on the upper part of the crown
            crown = winter.snowed(crown, np.broadcast_to((cv - tv) / rad, lit.shape), fine[sl], winter.cover[sl])
        bark = _rgb([0.33, 0.21, 0.11]) * (1 + 0.15 * np.sin(np.pi * (tu - t.x) * a / max(t.trunk_w, 1e-3) * 3)
                                               + 0.1 * fine[sl])[..., None]
        out = img[sl]
        m = mine & (lab == TREE)
        out[m] = crown[m]
        m = mine & (lab == TRUNK)
        out[m] = np.broadcast_to(bark, out.shape)[m]

    for bush in layout.bushes:
        bl = bush.blobs
        sl, tv, tu = r.box((bl[:, 0] - bl[:, 2] / a).min(), (bl[:, 1] - bl[:, 2]).min(),
                           (bl[:, 0] + bl[:, 2] / a).max(), bush.base)
        m = (r.inst[sl] == bush.inst) & (labels[sl] == BUSH)
        lit = np.clip((bush.base - tv) / (2 * bl[:, 2].max()), 0, 1)  # darker at the foot
        leaves = bush.colour * (0.75 + 0.35 * lit + 0.2 * fine[sl] + 0.1 * medium[sl])[..., None]
        if winter is not None:
            leaves = winter.snowed(leaves, np.broadcast_to(2 * lit - 1, leaves.shape[:2]), fine[sl],
                                    winter.cover[sl])
        img[sl][m] = np.broadcast_to(leaves, img[sl].shape)[m]

    # Camera: exposure, a slight colour cast, softness and sensor noise.
    img = img * np.float32(layout.exposure) + layout.tint.astype(np.float32)
    for _ in range(max(1, r.h // 128)):
        img = _blur121(img)
    img = img + np.float32(0.012) * rng.standard_normal(img.shape, dtype=np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------- API
THINGS = (CLOUD, BUILDING, TREE, BUSH)       # classes whose objects get their own instance id on disk


def size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """A square side or ``(h, w)`` as ``(h, w)``."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    return int(h), int(w)


STYLES = ("none", "winter")    # rendering styles of the photo; the label and instance maps never change


def style_rng(seed: int | Sequence[int], style: str) -> np.random.Generator:
    """The style's own generator, from (seed, style): its draws never touch the scene's generator, so
    the base image is the same under every style and each styled image has an exact counterpart."""
    seq = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
    return np.random.default_rng(seq + [zlib.crc32(style.encode())])


def render_scene(seed: int | Sequence[int], size: int | Sequence[int] = 64, style: str | None = None) -> Scene:
    """Compose and render one scene; the same ``seed`` (an int or a sequence of ints) gives identical arrays.

    ``size`` is the side of a square image or ``(h, w)``, in pixels (at least 16 each). ``style``
    (None or ``"none"``: the world's default, bit-identical to WORLD_VERSION 1; ``"winter"``: grey sky
    and snow on grass, tree crowns and bushes) changes the photo only, with parameters from
    :func:`style_rng`; labels and instances are the unstyled scene's.
    """
    h, w = size_hw(size)
    if min(h, w) < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    style = style or "none"
    if style not in STYLES:
        raise UserError(f"unknown scenes style '{style}' (known: {', '.join(STYLES)})")
    rng = np.random.default_rng(seed)
    layout = _sample_layout(rng)
    raster = _rasterise(layout, h, w)
    winter = _Winter.draw(style_rng(seed, style), h, w) if style == "winter" else None
    photo = _render(layout, raster, rng, winter)
    objects = {inst: {"class": "cloud"} for inst, _ in layout.clouds}
    objects.update({b.inst: {"class": "building", "facade": b.facade} for b in layout.buildings})
    objects.update({t.inst: {"class": "tree"} for t in layout.trees})
    objects.update({b.inst: {"class": "bush"} for b in layout.bushes})
    return Scene(labels=raster.labels, label_rgb=PALETTE[raster.labels], photo=photo, instances=raster.inst,
                 objects=objects)


def instance_ids(scene: Scene) -> tuple[np.ndarray, list[dict]]:
    """The scene's instance map in the Cityscapes convention (module docstring), ``H x W`` int32, and one
    record per visible thing: ``{"id": class * 1000 + k, "class": name, "pixels": area, ...attributes}``."""
    out = scene.labels.astype(np.int32)
    records = []
    for c in THINGS:
        mask = scene.labels == c
        for k, obj in enumerate(np.unique(scene.instances[mask]).tolist()):
            mine = mask & (scene.instances == obj)
            out[mine] = c * 1000 + k
            records.append({"id": c * 1000 + k, **scene.objects.get(obj, {"class": CLASSES[c]}),
                            "pixels": int(mine.sum())})
    return out, records


def labels_to_rgb(labels: np.ndarray) -> np.ndarray:
    """Class ids -> palette colours (H x W x 3 uint8)."""
    return PALETTE[labels]


def rgb_to_labels(label_rgb: np.ndarray) -> np.ndarray:
    """Palette colours -> class ids by nearest palette colour (robust to small resize/JPEG errors)."""
    rgb = np.asarray(label_rgb, dtype=np.int32)[..., None, :3]
    dist = ((rgb - PALETTE.astype(np.int32)) ** 2).sum(-1)
    return dist.argmin(-1).astype(np.uint8)


# ------------------------------------------------------------------------------------ on-disk dataset
LAYOUTS = ("ab", "folders", "pix2pixhd", "cityscapes")
_SPLITS = ("train", "val", "test")
CITY = "scenesville"      # the fake city of the cityscapes layout
UNPAIRED = ("labels-photos", "summer-winter")


def split_counts(n: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """Sizes of train/val/test: val and test are rounded fractions of n, train gets the rest (at least 1)."""
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    for name, frac in (("--val-fraction", val_fraction), ("--test-fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise UserError(f"{name} must be in [0, 1), got {frac}")
    n_val, n_test = int(round(n * val_fraction)), int(round(n * test_fraction))
    if n - n_val - n_test < 1:
        raise UserError(f"--val-fraction {val_fraction} and --test-fraction {test_fraction} leave no "
                        f"training images out of --n {n}")
    return {"train": n - n_val - n_test, "val": n_val, "test": n_test}


def scene_seed(seed: int, index: int) -> list[int]:
    """The seed of image ``index`` of a dataset generated with ``seed``: ``render_scene([seed, index])``."""
    return [int(seed), int(index)]


def _size_text(h: int, w: int) -> str:
    return f"{h}" if h == w else f"{h}x{w}"


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")


def _user_permissions(tmp: Path) -> None:
    # mkdtemp makes the folder private (0700); give the dataset the user's usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)


def _save(img: Image.Image, path: Path) -> None:
    # Inside a temporary folder already, so plain writes are atomic as a whole.
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, compress_level=3)


def _classes_meta() -> list[dict]:
    return [{"id": i, "name": name, "color": [int(c) for c in PALETTE[i]]} for i, name in enumerate(CLASSES)]


def write_dataset(out: str | Path, n: int, *, size: int | Sequence[int] = 64, seed: int = 0,
                  val_fraction: float = 0.1, test_fraction: float = 0.1, layout: str = "ab",
                  class_ids: bool = False, instances: bool = False, style: str | None = None,
                  overwrite: bool = False, progress: bool | None = None) -> dict:
    """Write ``n`` scenes as a paired dataset under ``out`` and return the metadata written to meta.json.

    Layouts:

    - ``ab``: ``out/{train,val,test}/NNNNN.png``, each ``h x 2w``: A (colour label map) on the
      left, B (photo) on the right, as in pix2pix's facades/cityscapes archives.
    - ``folders``: ``out/{train,val,test}/{A,B}/NNNNN.png`` with the same file name for a pair.
    - ``pix2pixhd``: ``out/SPLIT_label/NNNNN.png`` (class ids), ``SPLIT_inst/NNNNN.png`` (16-bit
      instance ids), ``SPLIT_img/NNNNN.png`` (photos), ``SPLIT_instances.json``.
    - ``cityscapes``: ``out/leftImg8bit/SPLIT/scenesville/scenesville_NNNNNN_000019_leftImg8bit.png``
      and ``out/gtFine/SPLIT/scenesville/..._gtFine_{labelIds,instanceIds,color}.png`` (+
      ``instances.json``). The ids are the scenes world's classes, not Cityscapes' (meta.json lists
      them; ``condsynth data check cityscapes`` reads its names from there).

    The last two always hold class ids and instance maps. ``size`` is a square side or ``(h, w)``,
    e.g. ``(64, 128)`` for pix2pixHD's 2:1. Opt-in outputs of the first two (their default output is
    unchanged by them):

    - ``class_ids`` (folders layout): A is an 8-bit palette PNG whose pixels are the class ids, shown
      in :data:`PALETTE`: ``read_label_map`` gives the ids, ``read_image`` the same colours as before.
    - ``instances``: ``SPLIT/instance/NNNNN.png``, 16-bit instance ids (:func:`instance_ids`), and
      ``SPLIT/instances.json``: per image, its things with their attributes (a building's ``facade``,
      the index of its base colour in meta.json's ``facade_colours``).

    ``style`` renders every photo in a style of :data:`STYLES` (labels unchanged). Image ``i``
    (numbered across splits: train first, then val, then test) is ``render_scene(scene_seed(seed, i),
    size, style)``, so any file can be regenerated from meta.json. The folder appears complete or
    not at all (it is built in a temporary sibling and renamed).
    """
    out = Path(out)
    h, w = size_hw(size)
    if min(h, w) < 16:
        raise UserError(f"--size must be at least 16, got {_size_text(h, w)}")
    if layout not in LAYOUTS:
        raise UserError(f"--layout must be one of {', '.join(LAYOUTS)}, got '{layout}'")
    if class_ids and layout != "folders":
        raise UserError("--class-ids needs --layout folders: an A|B image cannot hold class ids beside a photo"
                        if layout == "ab" else f"--class-ids is implied by --layout {layout} (it always writes ids)")
    style = style or "none"
    if style not in STYLES:
        raise UserError(f"--style must be one of {', '.join(STYLES)}, got '{style}'")
    hd = layout in ("pix2pixhd", "cityscapes")
    class_ids, instances = class_ids or hd, instances or hd
    counts = split_counts(n, val_fraction, test_fraction)
    _prepare_out(out, overwrite)

    meta = {
        "world": WORLD_NAME,
        "world_version": WORLD_VERSION,
        "seed": int(seed),
        "seed_rule": "image i (numbered across splits, train then val then test) = "
                     "render_scene(seed=[seed, i], size" + (", style)" if style != "none" else ")"),
        "size": h if h == w else [h, w],
        "layout": layout,
        "a": "class-id map: 8-bit palette PNG, pixel = class id, shown in the colours below" if class_ids
             else "colour label map (palette below)",
        "b": "rendered photo",
        "counts": counts,
        "classes": _classes_meta(),
    }
    if style != "none":
        meta["style"] = style
    if class_ids and not hd:
        meta["class_ids"] = True
    if instances:
        meta["instances"] = True
        meta["instance"] = ("16-bit ids, class * 1000 + k for things "
                            f"({', '.join(CLASSES[c] for c in THINGS)}; k from 0 per class and image), "
                            "the class id for every other pixel" +
                            ("; SPLIT/instance/NNNNN.png, SPLIT/instances.json: each image's things" if not hd else ""))
        meta["facade_colours"] = [[round(float(c), 3) for c in rgb] for rgb in _FACADE_COLOURS]
    digits = max(5, len(str(n - 1)))    # zero-padded names sort in generation order
    index = 0
    with atomic_dir(out) as tmp, tqdm(total=n, desc=f"scenes {_size_text(h, w)}px", unit="img",
                                      disable=(n < 200) if progress is None else not progress) as bar:
        _user_permissions(tmp)
        for split in _SPLITS:
            if counts[split] == 0:
                continue
            folder = tmp / split
            if not hd:
                for sub in (["A", "B"] if layout == "folders" else [""]) + (["instance"] if instances else []):
                    (folder / sub).mkdir(parents=True, exist_ok=True)
            things = {}
            for _ in range(counts[split]):
                scene = render_scene(scene_seed(seed, index), size, style)
                name = f"{index:0{digits}d}.png"
                ids = None
                if instances:
                    ids, things[name] = instance_ids(scene)
                if layout == "ab":
                    _save(Image.fromarray(np.concatenate([scene.label_rgb, scene.photo], axis=1)), folder / name)
                elif layout == "folders":
                    a = label_map_image(scene.labels, PALETTE) if class_ids else Image.fromarray(scene.label_rgb)
                    _save(a, folder / "A" / name)
                    _save(Image.fromarray(scene.photo), folder / "B" / name)
                elif layout == "pix2pixhd":
                    _save(label_map_image(scene.labels, PALETTE), tmp / f"{split}_label" / name)
                    _save(label_map_image(ids, bits=16), tmp / f"{split}_inst" / name)
                    _save(Image.fromarray(scene.photo), tmp / f"{split}_img" / name)
                else:
                    stem = f"{CITY}_{index:06d}_000019"
                    gt = tmp / "gtFine" / split / CITY
                    _save(Image.fromarray(scene.photo), tmp / "leftImg8bit" / split / CITY / f"{stem}_leftImg8bit.png")
                    _save(label_map_image(scene.labels, PALETTE), gt / f"{stem}_gtFine_labelIds.png")
                    _save(label_map_image(ids, bits=16), gt / f"{stem}_gtFine_instanceIds.png")
                    _save(Image.fromarray(scene.label_rgb), gt / f"{stem}_gtFine_color.png")
                    name = stem
                if instances and not hd:
                    _save(label_map_image(ids, bits=16), folder / "instance" / name)
                if instances and layout == "cityscapes":
                    things[name] = things.pop(f"{index:0{digits}d}.png")
                index += 1
                bar.update(1)
            if instances:
                where = {"ab": folder / "instances.json", "folders": folder / "instances.json",
                         "pix2pixhd": tmp / f"{split}_instances.json",
                         "cityscapes": tmp / "gtFine" / split / "instances.json"}[layout]
                lines = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in things.items())
                atomic_write_text(where, "{\n" + lines + "\n}\n")   # one image a line
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta


def write_unpaired(out: str | Path, kind: str, n_train: int, n_test: int, *, size: int | Sequence[int] = 64,
                   seed: int = 0, overwrite: bool = False, progress: bool | None = None) -> dict:
    """CycleGAN's layout (``trainA/ trainB/ testA/ testB/``, NNNNN.png) from the world; returns meta.json.

    - ``labels-photos``: A = colour label maps, B = photos.
    - ``summer-winter``: A = photos, B = the ``winter`` style's photos.

    trainA holds scenes ``[seed, i]``, trainB scenes ``[seed + 1, i]`` (disjoint scenes, so nothing
    pairs them), testA/testB both scenes ``[seed + 2, i]``: each test image has its exact counterpart
    of the same name in the other domain (for metrics against ground truth). testLabels/ holds the
    class-id maps of the test scenes (palette PNGs), for segmentation scores.
    """
    out = Path(out)
    if kind not in UNPAIRED:
        raise UserError(f"--unpaired must be one of {', '.join(UNPAIRED)}, got '{kind}'")
    h, w = size_hw(size)
    if min(h, w) < 16:
        raise UserError(f"--size must be at least 16, got {_size_text(h, w)}")
    if n_train < 1 or n_test < 0:
        raise UserError(f"an unpaired export needs at least 1 training image per domain, got {n_train}")
    _prepare_out(out, overwrite)
    domains = {"labels-photos": ("colour label map", "photo"), "summer-winter": ("photo", "winter photo")}[kind]
    meta = {"world": WORLD_NAME, "world_version": WORLD_VERSION, "seed": int(seed), "layout": "unpaired",
            "unpaired": kind, "size": h if h == w else [h, w], "a": domains[0], "b": domains[1],
            "seed_rule": "trainA image i = render_scene([seed, i]); trainB image i = render_scene([seed + 1, i]); "
                         "testA and testB image i = render_scene([seed + 2, i]) (exact counterparts)",
            "counts": {"trainA": n_train, "trainB": n_train, "testA": n_test, "testB": n_test},
            "classes": _classes_meta()}
    digits = max(5, len(str(max(n_train, n_test) - 1)))

    def image(scene_seed_: list[int], domain: str) -> Image.Image:
        if kind == "labels-photos":
            scene = render_scene(scene_seed_, size)
            return Image.fromarray(scene.label_rgb if domain == "A" else scene.photo)
        return Image.fromarray(render_scene(scene_seed_, size, "winter" if domain == "B" else None).photo)

    jobs = [("trainA", seed, "A", n_train), ("trainB", seed + 1, "B", n_train),
            ("testA", seed + 2, "A", n_test), ("testB", seed + 2, "B", n_test)]
    with atomic_dir(out) as tmp, tqdm(total=2 * (n_train + n_test), desc=f"scenes {kind}", unit="img",
                                      disable=(n_train < 100) if progress is None else not progress) as bar:
        _user_permissions(tmp)
        for folder, base, domain, count in jobs:
            if count == 0:
                continue
            (tmp / folder).mkdir()
            for i in range(count):
                _save(image(scene_seed(base, i), domain), tmp / folder / f"{i:0{digits}d}.png")
                if folder == "testA":
                    _save(label_map_image(render_scene(scene_seed(base, i), size).labels, PALETTE),
                          tmp / "testLabels" / f"{i:0{digits}d}.png")
                bar.update(1)
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta


# ------------------------------------------------------------------------------------ data check
@register_check("scenes", "a dataset written by `condsynth data synth scenes`: meta.json, pairs per split "
                          "against its counts, label maps (colours or class ids) and instance maps")
def check_scenes(root: Path) -> Report:
    from condsynth.data.translation import PairedDataConfig, PairedImageDataset
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise UserError(f"{meta_path}: not found; a scenes dataset has one (condsynth data synth scenes writes it)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{meta_path}: not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("world") != WORLD_NAME:
        raise UserError(f"{meta_path}: not the meta.json of a scenes dataset (world "
                        f"{meta.get('world') if isinstance(meta, dict) else None!r})")
    layout = meta.get("layout", "ab")
    kind = {"pix2pixhd": "pix2pixhd", "cityscapes": "cityscapes", "unpaired": "unpaired"}.get(layout, "pix2pix")
    paired = check_dataset(kind, root)
    report = Report("scenes", root, lines=list(paired.lines), warnings=list(paired.warnings),
                    counts=dict(paired.counts))
    for split, n in meta.get("counts", {}).items():
        if paired.counts.get(split, 0) != n:
            raise UserError(f"{root / split}: {paired.counts.get(split, 0)} "
                            f"{'images' if kind == 'unpaired' else 'pairs'}, but meta.json counts {n}")
    if kind == "unpaired":
        return report
    if meta.get("world_version") != WORLD_VERSION:
        report.warnings.append(f"written by world version {meta.get('world_version')}; this condsynth renders "
                               f"version {WORLD_VERSION} (the same seed gives other images now)")
    stats = LabelStats()
    for split in [s for s in meta.get("counts", {}) if paired.counts.get(s)]:
        cfg = PairedDataConfig(root=str(root), label_a=bool(meta.get("class_ids")) or kind != "pix2pix",
                               instances=bool(meta.get("instances")))
        ds = PairedImageDataset(cfg, split, train=False)
        for i in range(len(ds)):
            a, _, inst, _ = ds.read_arrays(i)
            where = ds.items[i][0]
            labels = a[..., 0] if cfg.label_a else rgb_to_labels(a)
            if cfg.label_a and labels.max() >= len(CLASSES):
                raise UserError(f"{where}: class id {labels.max()} out of range 0..{len(CLASSES) - 1}")
            if not cfg.label_a and not np.array_equal(PALETTE[labels], a):
                raise UserError(f"{where}: label colours outside the palette (resized or saved lossily?)")
            stats.add(labels)
            if inst is not None:
                expected = np.where(inst[..., 0] >= 1000, inst[..., 0] // 1000, inst[..., 0])
                if not np.array_equal(expected, labels) or not np.isin(np.unique(inst[inst >= 1000] // 1000),
                                                                       THINGS).all():
                    raise UserError(f"{ds.instance_files[i]}: instance ids do not match the label map "
                                    f"(class * 1000 + k for {', '.join(CLASSES[c] for c in THINGS)}, else the class)")
    report.lines += stats.lines(names=dict(enumerate(CLASSES)))
    report.counts["pixels"] = dict(stats.pixels)
    return report
