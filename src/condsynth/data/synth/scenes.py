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
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from condsynth.errors import UserError
from condsynth.io.atomic import atomic_dir, atomic_write_text

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
               instance boundary maps.
    """

    labels: np.ndarray
    label_rgb: np.ndarray
    photo: np.ndarray
    instances: np.ndarray


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
        buildings.append(_Building(
            inst=next(next_inst), x0=x0, x1=x0 + width, top=bottom - height, bottom=bottom,
            n_cols=n_cols, n_rows=n_rows, win_fx=rng.uniform(0.45, 0.7), win_fy=rng.uniform(0.45, 0.65),
            door_col=int(rng.integers(0, n_cols)) if rng.random() < 0.75 else -1,
            colour=_jitter(rng, _FACADE_COLOURS[rng.integers(len(_FACADE_COLOURS))], 0.05),
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
    """Pixel-centre coordinate grids plus the label and instance maps being painted."""

    def __init__(self, size: int):
        self.size = size
        centres = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.v = centres[:, None]      # H x 1
        self.u = centres[None, :]      # 1 x W
        self.labels = np.zeros((size, size), np.uint8)
        self.inst = np.zeros((size, size), np.int32)

    def box(self, u0, v0, u1, v1):
        """Slices of the pixels whose centres may fall inside [u0, u1] x [v0, v1], with their coordinates.

        Working inside an object's bounding box keeps the cost per object proportional to its area.
        """
        s = self.size
        r0, r1 = max(0, int(np.floor(v0 * s))), min(s, int(np.ceil(v1 * s)) + 1)
        c0, c1 = max(0, int(np.floor(u0 * s))), min(s, int(np.ceil(u1 * s)) + 1)
        r1, c1 = max(r0, r1), max(c0, c1)
        return (slice(r0, r1), slice(c0, c1)), self.v[r0:r1], self.u[:, c0:c1]

    def paint(self, sl, mask, cls, inst=0):
        self.labels[sl][mask] = cls
        self.inst[sl][mask] = inst


def _circles_mask(v, u, blobs, clip_below=None):
    """Union of circles (rows u, v, r) on a sub-grid; optionally only the part above v = clip_below."""
    cu, cv, r = blobs[:, 0, None, None], blobs[:, 1, None, None], blobs[:, 2, None, None]
    mask = (((u[None] - cu) ** 2 + (v[None] - cv) ** 2) <= r ** 2).any(axis=0)
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


def _rasterise(layout: _Layout, size: int) -> _Raster:
    r = _Raster(size)
    # Sky covers everything to start with.
    if layout.sun is not None:
        su, sv, sr = layout.sun
        sl, v, u = r.box(su - sr, sv - sr, su + sr, sv + sr)
        r.paint(sl, (u - su) ** 2 + (v - sv) ** 2 <= sr ** 2, SUN)
    for inst, ell in layout.clouds:
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
            sl, v, u = r.box(t.x - t.trunk_w, t.base - t.trunk_h, t.x + t.trunk_w, t.base)
            r.paint(sl, (np.abs(u - t.x) <= t.trunk_w / 2) & (v >= t.base - t.trunk_h) & (v <= t.base),
                    TRUNK, t.inst)
            bl = t.blobs
            sl, v, u = r.box((bl[:, 0] - bl[:, 2]).min(), (bl[:, 1] - bl[:, 2]).min(),
                             (bl[:, 0] + bl[:, 2]).max(), (bl[:, 1] + bl[:, 2]).max())
            r.paint(sl, _circles_mask(v, u, bl), TREE, t.inst)
        else:
            bl = obj.blobs
            sl, v, u = r.box((bl[:, 0] - bl[:, 2]).min(), (bl[:, 1] - bl[:, 2]).min(),
                             (bl[:, 0] + bl[:, 2]).max(), obj.base)
            r.paint(sl, _circles_mask(v, u, bl, clip_below=obj.base), BUSH, obj.inst)
    return r


# -------------------------------------------------------------------------------------- rendering
def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in about [-1, 1]: a (cells+1)^2 grid of normals, smoothstep-interpolated to size^2.

    The number of random draws does not depend on ``size``, so the texture is the same pattern at
    every resolution.
    """
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32) * 0.5
    t = (np.arange(size, dtype=np.float32) + 0.5) * (cells / size)
    i = np.minimum(t.astype(np.int64), cells - 1)
    f = t - i
    f = f * f * (3 - 2 * f)
    fy, fx = f[:, None], f[None, :]
    top = grid[i][:, i] * (1 - fx) + grid[i][:, i + 1] * fx
    bottom = grid[i + 1][:, i] * (1 - fx) + grid[i + 1][:, i + 1] * fx
    return top * (1 - fy) + bottom * fy


def _blur121(img: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur with edge replication (a slight camera softness)."""
    p = np.pad(img, ((1, 1), (0, 0), (0, 0)), mode="edge")
    img = 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]
    p = np.pad(img, ((0, 0), (1, 1), (0, 0)), mode="edge")
    return 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]


def _render(layout: _Layout, r: _Raster, rng: np.random.Generator) -> np.ndarray:
    size = r.size
    labels, v, u = r.labels, r.v, r.u
    # Size-independent textures first (same draws at every size), per-pixel noise last.
    coarse = _value_noise(rng, size, 6)
    medium = _value_noise(rng, size, 16)
    fine = _value_noise(rng, size, 48)
    img = np.zeros((size, size, 3), np.float32)

    def fill(mask, colour):
        img[mask] = colour if np.ndim(colour) == 1 else colour[mask]

    ones = np.ones((size, size, 1), np.float32)
    h = layout.horizon

    # Sky: vertical gradient to a pale horizon, with a warm glow around the sun.
    t = np.clip(v / h, 0, 1)[..., None] * ones
    sky = layout.sky_top * (1 - t) + layout.sky_low * t
    if layout.sun is not None:
        su, sv, sr = layout.sun
        glow = np.exp(-((u - su) ** 2 + (v - sv) ** 2) / (2 * (3 * sr) ** 2))[..., None]
        sky = sky + 0.35 * glow * (_rgb([1.0, 0.9, 0.6]) - sky)
    sky = sky + 0.015 * coarse[..., None]
    fill(labels == SKY, sky)
    fill(labels == SUN, _rgb([1.0, 0.96, 0.7]))

    # Clouds: white, greyer towards the bottom of each cloud, soft texture.
    cloud = labels == CLOUD
    if cloud.any():
        shade = np.zeros((size, size), np.float32)
        for inst, ell in layout.clouds:
            m = r.inst == inst
            cv, rv = ell[:, 1].mean(), ell[:, 3].max()
            shade[m] = np.broadcast_to(np.clip((v - (cv - rv)) / (2 * rv), 0, 1), m.shape)[m]
        base = (0.98 - 0.2 * shade + 0.04 * medium)[..., None] * _rgb([1.0, 1.0, 1.02])
        fill(cloud, base)

    # Ground: grass texture, hazier (towards the sky's horizon colour) with distance.
    depth = np.clip((v - h) / (1 - h), 0, 1)
    haze = np.exp(-6.0 * depth)[..., None] * 0.45
    grass = layout.grass_colour * (1 + 0.12 * coarse + 0.1 * fine)[..., None] * (0.85 + 0.2 * depth)[..., None]
    grass = grass * (1 - haze) + layout.sky_low * haze
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
        sl, sv, su_ = r.box(cu - reach, cv - reach * 0.3, cu + reach, cv + reach * 0.3)
        inside = (((su_ - cu) / reach) ** 2 + ((sv - cv) / (reach * 0.25)) ** 2) <= 1
        m = inside & ground[sl]
        img[sl][m] *= 0.65

    light_u, light_v = layout.light
    for t in layout.trees:
        bl = t.blobs
        sl, tv, tu = r.box(min((bl[:, 0] - bl[:, 2]).min(), t.x - t.trunk_w), (bl[:, 1] - bl[:, 2]).min(),
                           max((bl[:, 0] + bl[:, 2]).max(), t.x + t.trunk_w), t.base)
        mine = r.inst[sl] == t.inst
        lab = labels[sl]
        cu, cv, rad = bl[:, 0].mean(), bl[:, 1].mean(), bl[:, 2].max()
        # Crown lit from the light's side: brightness follows the offset along the light direction.
        lit = np.clip(((tu - cu) * light_u + (tv - cv) * light_v) / rad, -1.5, 1.5)
        crown = t.colour * (1 + 0.22 * lit + 0.25 * medium[sl] + 0.15 * fine[sl])[..., None]
        bark = _rgb([0.33, 0.21, 0.11]) * (1 + 0.15 * np.sin(np.pi * (tu - t.x) / max(t.trunk_w, 1e-3) * 3)
                                               + 0.1 * fine[sl])[..., None]
        out = img[sl]
        m = mine & (lab == TREE)
        out[m] = crown[m]
        m = mine & (lab == TRUNK)
        out[m] = np.broadcast_to(bark, out.shape)[m]

    for bush in layout.bushes:
        bl = bush.blobs
        sl, tv, tu = r.box((bl[:, 0] - bl[:, 2]).min(), (bl[:, 1] - bl[:, 2]).min(),
                           (bl[:, 0] + bl[:, 2]).max(), bush.base)
        m = (r.inst[sl] == bush.inst) & (labels[sl] == BUSH)
        lit = np.clip((bush.base - tv) / (2 * bl[:, 2].max()), 0, 1)  # darker at the foot
        leaves = bush.colour * (0.75 + 0.35 * lit + 0.2 * fine[sl] + 0.1 * medium[sl])[..., None]
        img[sl][m] = np.broadcast_to(leaves, img[sl].shape)[m]

    # Camera: exposure, a slight colour cast, softness and sensor noise.
    img = img * np.float32(layout.exposure) + layout.tint.astype(np.float32)
    for _ in range(max(1, size // 128)):
        img = _blur121(img)
    img = img + np.float32(0.012) * rng.standard_normal(img.shape, dtype=np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------- API
def render_scene(seed: int | Sequence[int], size: int = 64) -> Scene:
    """Compose and render one scene; the same ``seed`` (an int or a sequence of ints) gives identical arrays.

    ``size`` is the side of the square image in pixels (at least 16).
    """
    if int(size) < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    rng = np.random.default_rng(seed)
    layout = _sample_layout(rng)
    raster = _rasterise(layout, int(size))
    photo = _render(layout, raster, rng)
    return Scene(labels=raster.labels, label_rgb=PALETTE[raster.labels], photo=photo, instances=raster.inst)


def labels_to_rgb(labels: np.ndarray) -> np.ndarray:
    """Class ids -> palette colours (H x W x 3 uint8)."""
    return PALETTE[labels]


def rgb_to_labels(label_rgb: np.ndarray) -> np.ndarray:
    """Palette colours -> class ids by nearest palette colour (robust to small resize/JPEG errors)."""
    rgb = np.asarray(label_rgb, dtype=np.int32)[..., None, :3]
    dist = ((rgb - PALETTE.astype(np.int32)) ** 2).sum(-1)
    return dist.argmin(-1).astype(np.uint8)


# ------------------------------------------------------------------------------------ on-disk dataset
LAYOUTS = ("ab", "folders")
_SPLITS = ("train", "val", "test")


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


def write_dataset(out: str | Path, n: int, *, size: int = 64, seed: int = 0, val_fraction: float = 0.1,
                  test_fraction: float = 0.1, layout: str = "ab", overwrite: bool = False,
                  progress: bool | None = None) -> dict:
    """Write ``n`` scenes as a paired dataset under ``out`` and return the metadata written to meta.json.

    Layouts (both used by pix2pix-style readers):

    - ``ab``: ``out/{train,val,test}/NNNNN.png``, each ``size x 2*size``: A (colour label map) on the
      left, B (photo) on the right, as in pix2pix's facades/cityscapes archives.
    - ``folders``: ``out/{train,val,test}/{A,B}/NNNNN.png`` with the same file name for a pair.

    Image ``i`` (numbered across splits: train first, then val, then test) is
    ``render_scene(scene_seed(seed, i), size)``, so any file can be regenerated from meta.json.
    The folder appears complete or not at all (it is built in a temporary sibling and renamed).
    """
    out = Path(out)
    if size < 16:
        raise UserError(f"--size must be at least 16, got {size}")
    if layout not in LAYOUTS:
        raise UserError(f"--layout must be one of {', '.join(LAYOUTS)}, got '{layout}'")
    counts = split_counts(n, val_fraction, test_fraction)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")

    meta = {
        "world": WORLD_NAME,
        "world_version": WORLD_VERSION,
        "seed": int(seed),
        "seed_rule": "image i (numbered across splits, train then val then test) = "
                     "render_scene(seed=[seed, i], size)",
        "size": int(size),
        "layout": layout,
        "a": "colour label map (palette below)",
        "b": "rendered photo",
        "counts": counts,
        "classes": [{"id": i, "name": name, "color": [int(c) for c in PALETTE[i]]}
                    for i, name in enumerate(CLASSES)],
    }
    digits = max(5, len(str(n - 1)))    # zero-padded names sort in generation order
    index = 0
    with atomic_dir(out) as tmp, tqdm(total=n, desc=f"scenes {size}px", unit="img",
                                      disable=(n < 200) if progress is None else not progress) as bar:
        # mkdtemp makes the folder private (0700); give the dataset the user's usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        for split in _SPLITS:
            if counts[split] == 0:
                continue
            folder = tmp / split
            if layout == "folders":
                (folder / "A").mkdir(parents=True)
                (folder / "B").mkdir(parents=True)
            else:
                folder.mkdir(parents=True)
            for _ in range(counts[split]):
                scene = render_scene(scene_seed(seed, index), size)
                name = f"{index:0{digits}d}.png"
                # Inside a temporary folder already, so plain writes are atomic as a whole.
                if layout == "ab":
                    Image.fromarray(np.concatenate([scene.label_rgb, scene.photo], axis=1)).save(
                        folder / name, compress_level=3)
                else:
                    Image.fromarray(scene.label_rgb).save(folder / "A" / name, compress_level=3)
                    Image.fromarray(scene.photo).save(folder / "B" / name, compress_level=3)
                index += 1
                bar.update(1)
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta
