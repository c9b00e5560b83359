"""The "faces" synthetic world: procedural faces whose geometry *is* the 68 iBUG landmarks.

Every feature (jaw, brows, eyes, nose, lips) is drawn from the 68 points, so the landmarks are
exact by construction and mirror-consistent (:data:`condsynth.io.landmarks.MIRROR`). An identity
(:class:`Identity`) fixes the face shape, skin tone, eye colour, brows, hair and glasses; age is a
separate argument, so **every identity can be rendered at every age** (the true aged face that no
real dataset has). Age acts through functions of age (:func:`age_factors`): a child's face has
larger eyes set lower under a large forehead, a short nose and a round, small jaw; an old face has
a longer nose, a sagging jaw, thinner lips, narrower eyes, wrinkles (forehead, crow's feet,
nasolabial folds), spots, lower skin saturation and grey, thinning hair. Nuisances: small head
pose (yaw, roll, scale, shift), lighting direction and colour, sensor noise, blur and JPEG.

Mouth and eye controls (:class:`Expression`: jaw opening, lip width, lip rounding, closure,
blink) are arguments of :func:`render_face`, for talking-face and reenactment work.

Layout written by ``condsynth data synth faces --out DIR --n N`` (UTKFace's file names)::

    OUT/train/AGE_GENDER_RACE_DATE.jpg     one random age per training identity (unpaired), or
                                           --ages-per-identity K ages each (evaluator training)
    OUT/train/AGE_..._DATE.npy             the exact 68 x 2 landmarks (pixels) beside each image
    OUT/train/landmarks.npz                the same, as the toolkit's landmark cache
    OUT/test/...                           held-out identities, each rendered at all ten age groups
    OUT/identities.json                    per identity: its parameters, split, files and ages
    OUT/meta.json

``DATE`` is ``2000`` + the identity number (7 digits) + the render number (6 digits), so names
are unique and a file's identity is readable from its name (:func:`identity_of`). Identity ``i``
is drawn from ``default_rng([seed, i])`` and each of its renders from ``default_rng([seed, i,
k])``: any file can be regenerated.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from scipy import ndimage
from PIL import Image, ImageDraw

from condsynth.data.utkface import AGE_GROUPS, AGE_GROUP_NAMES
from condsynth.errors import UserError

WORLD_NAME = "faces"
WORLD_VERSION = 1
_SS = 2                           # supersampling factor

# Child proportions at birth (face units): how much lower the eyes sit, how much shorter the lower face is
CHILD_EYE_DROP, CHILD_SHORT_FACE = 0.16, 0.28

# The image placement of the face frame: pixel = (CX * W, CY * H) + SCALE * W * (x, y).
CX, CY, SCALE = 0.5, 0.47, 0.36

SKIN_TONES = np.array([            # (race index of UTKFace, rgb in [0, 1])
    (0, 0.93, 0.80, 0.70), (0, 0.88, 0.72, 0.60), (1, 0.45, 0.30, 0.22), (1, 0.36, 0.24, 0.17),
    (2, 0.92, 0.79, 0.62), (2, 0.85, 0.70, 0.54), (3, 0.68, 0.50, 0.36), (3, 0.60, 0.43, 0.31),
    (4, 0.76, 0.58, 0.44), (4, 0.55, 0.40, 0.30)])
HAIR_COLOURS = np.array([(0.08, 0.06, 0.05), (0.22, 0.14, 0.08), (0.40, 0.26, 0.14), (0.62, 0.45, 0.25),
                         (0.80, 0.66, 0.40), (0.50, 0.20, 0.10)])
EYE_COLOURS = np.array([(0.25, 0.15, 0.08), (0.35, 0.22, 0.10), (0.20, 0.35, 0.55), (0.30, 0.45, 0.30),
                        (0.45, 0.40, 0.25)])
HAIR_STYLES = ("short", "long", "bob", "crop")


# ------------------------------------------------------------------------------------ parameters
@dataclass
class Identity:
    """What stays fixed for one person across ages."""
    index: int
    gender: int                     # 0 male, 1 female (UTKFace's codes)
    race: int                       # 0..4 (UTKFace's codes)
    skin: tuple[float, float, float]
    face_width: float               # half width of the face at the cheekbones, face units
    jaw_width: float                # lower-jaw taper (0.6 narrow .. 1.0 square)
    face_length: float              # chin distance below the eye line
    chin: float                     # chin pointedness
    eye_size: float
    eye_spacing: float              # half distance between eye centres
    eye_tilt: float                 # radians, outer corners up when > 0
    eye_colour: tuple[float, float, float]
    nose_length: float
    nose_width: float
    mouth_width: float
    lip_thickness: float
    lip_colour: tuple[float, float, float]
    brow_thickness: float
    brow_arch: float
    brow_height: float
    hair_colour: tuple[float, float, float]
    hair_style: str
    grey_onset: float               # age at which hair starts to grey
    thinning: float                 # 0..1, how much hair is lost with age
    glasses: bool
    glasses_colour: tuple[float, float, float]
    glasses_round: bool

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Identity:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise UserError(f"identity parameters: unknown keys {sorted(unknown)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


@dataclass
class Expression:
    """Mouth and eye controls, each in [0, 1] (lip_width in [-1, 1]); all 0 = neutral, closed mouth."""
    jaw_open: float = 0.0           # lower lip and chin move down, inner lips part
    lip_width: float = 0.0          # -1 narrow (pucker) .. 1 wide (smile/'ee')
    lip_round: float = 0.0          # rounding ('oo'): corners in, lips pushed into an O
    closure: float = 0.0            # lips pressed together ('m', 'b', 'p'): overrides opening
    blink: float = 0.0              # 1 = eyes shut


@dataclass
class Nuisance:
    """Pose, lighting and camera: drawn per render by :func:`sample_nuisance`."""
    yaw: float = 0.0                # radians
    roll: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)     # in units of the image side
    light: tuple[float, float] = (0.0, -0.5)    # light direction in the image plane
    light_strength: float = 0.25
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    background: tuple[float, float, float] = (0.5, 0.5, 0.5)
    background2: tuple[float, float, float] = (0.4, 0.4, 0.4)
    clothes: tuple[float, float, float] = (0.2, 0.3, 0.5)
    noise: float = 0.01
    blur: float = 0.0


def sample_identity(rng: np.random.Generator, index: int = 0) -> Identity:
    gender = int(rng.integers(2))
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    skin = np.clip(tone[1:] * rng.uniform(0.94, 1.06) + rng.normal(0, 0.015, 3), 0, 1)
    f = gender == 1
    style = HAIR_STYLES[rng.choice(4, p=[0.15, 0.5, 0.3, 0.05] if f else [0.6, 0.05, 0.1, 0.25])]
    return Identity(
        index=index, gender=gender, race=int(tone[0]), skin=tuple(float(v) for v in skin),
        face_width=float(rng.uniform(0.9, 1.05) - 0.03 * f), jaw_width=float(rng.uniform(0.62, 0.95) - 0.06 * f),
        face_length=float(rng.uniform(1.12, 1.32) - 0.05 * f), chin=float(rng.uniform(0.0, 1.0)),
        eye_size=float(rng.uniform(0.85, 1.15) + 0.05 * f), eye_spacing=float(rng.uniform(0.38, 0.46)),
        eye_tilt=float(rng.uniform(-0.08, 0.12)), eye_colour=tuple(float(v) for v in
                                                                   EYE_COLOURS[rng.integers(len(EYE_COLOURS))]),
        nose_length=float(rng.uniform(0.85, 1.15)), nose_width=float(rng.uniform(0.8, 1.25) - 0.08 * f),
        mouth_width=float(rng.uniform(0.85, 1.15)), lip_thickness=float(rng.uniform(0.75, 1.25) + 0.1 * f),
        lip_colour=tuple(float(v) for v in np.clip(skin * np.array([0.85, 0.55, 0.55]) + rng.normal(0, 0.03, 3)
                                                   + np.array([0.05, 0, 0.02]) * f, 0, 1)),
        brow_thickness=float(rng.uniform(0.7, 1.3) - 0.2 * f), brow_arch=float(rng.uniform(0.0, 1.0)),
        brow_height=float(rng.uniform(-0.04, 0.04)),
        hair_colour=tuple(float(v) for v in HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]), hair_style=str(style),
        grey_onset=float(rng.uniform(35, 60)), thinning=float(rng.uniform(0.3, 1.0) if not f else rng.uniform(0, 0.3)),
        glasses=bool(rng.random() < 0.2),
        glasses_colour=tuple(float(v) for v in rng.uniform(0.02, 0.35, 3)), glasses_round=bool(rng.random() < 0.5))


def sample_nuisance(rng: np.random.Generator, pose: float = 1.0) -> Nuisance:
    a = rng.uniform(0, 2 * np.pi)
    bg = rng.uniform(0.15, 0.85, 3)
    return Nuisance(
        yaw=float(rng.normal(0, 0.12) * pose), roll=float(rng.normal(0, 0.06) * pose),
        scale=float(np.exp(rng.normal(0, 0.04 * pose))), shift=tuple(float(v) for v in rng.normal(0, 0.015 * pose, 2)),
        light=(float(np.cos(a)), float(np.sin(a))), light_strength=float(rng.uniform(0.05, 0.35)),
        tint=tuple(float(v) for v in 1 + rng.normal(0, 0.04, 3)), background=tuple(float(v) for v in bg),
        background2=tuple(float(v) for v in np.clip(bg + rng.normal(0, 0.12, 3), 0, 1)),
        clothes=tuple(float(v) for v in rng.uniform(0.05, 0.8, 3)),
        noise=float(rng.uniform(0.004, 0.025)), blur=float(rng.uniform(0.0, 0.6)))


def age_factors(age: float) -> dict[str, float]:
    """The age effects, each a smooth function of age in years.

    ``child`` 1 at birth .. 0 from 18; ``old`` 0 up to 40 .. 1 at 90; ``wrinkles`` from 30 on;
    ``adult`` the mid-life rise of the nasolabial folds.
    """
    a = float(age)
    child = float(np.clip((18.0 - a) / 18.0, 0, 1)) ** 1.2
    old = float(np.clip((a - 40.0) / 50.0, 0, 1))
    wrinkles = float(np.clip((a - 30.0) / 55.0, 0, 1)) ** 1.3
    return {"child": child, "old": old, "wrinkles": wrinkles, "adult": float(np.clip((a - 18) / 30, 0, 1))}


# ------------------------------------------------------------------------------------ geometry
def _arc(x0, x1, y0, y1, ymid, n):
    """n points from (x0, y0) to (x1, y1) bulging through ymid at the middle (a parabola)."""
    t = np.linspace(0, 1, n)
    x = x0 + (x1 - x0) * t
    y = y0 + (y1 - y0) * t + (ymid - (y0 + y1) / 2) * 4 * t * (1 - t)
    return np.stack([x, y], 1)


def face_geometry(ident: Identity, age: float, expr: Expression | None = None) -> dict[str, np.ndarray]:
    """The face in face units (x right, y down, eye line near y = -0.3): ``points`` (68 x 2),
    ``forehead`` (the skull outline over the top, from point 16 back to point 0), ``depth`` (68,)."""
    e = expr or Expression()
    af = age_factors(age)
    c, o = af["child"], af["old"]
    fw = ident.face_width * (1 - 0.06 * c)
    eye_y = -0.30 + CHILD_EYE_DROP * c            # a child's eyes sit lower on the head
    low = 1 - CHILD_SHORT_FACE * c                # the lower face is short in children
    s_eye = ident.eye_size * (1 + 0.35 * c) * (1 - 0.05 * o)
    ew, eh = 0.17 * s_eye, 0.055 * s_eye * (1 - 0.35 * o) * (1 - e.blink)
    sp = ident.eye_spacing * (1 - 0.05 * c)
    nose_len = ident.nose_length * low * (1 + 0.12 * o)
    nose_tip = eye_y + 0.42 * nose_len
    mouth_y = nose_tip + 0.2 * low + 0.03 * o
    open_ = e.jaw_open * (1 - e.closure)
    chin_y = eye_y + ident.face_length * low + 0.05 * o + 0.22 * open_
    sag = 0.06 * o

    pts = np.zeros((68, 2))
    # jaw 0-16: from the right ear (image left), around the chin
    t = np.linspace(0, 1, 17)
    ang = np.pi * t
    jaw_w = fw * (1 - (1 - ident.jaw_width) * np.sin(ang) ** 4 * (1 - 0.5 * c)) * (1 + sag * np.sin(ang) ** 2)
    pinch = 1 - 0.25 * ident.chin * np.exp(-((t - 0.5) / 0.12) ** 2) * (1 - c)
    pts[:17, 0] = -np.cos(ang) * jaw_w * np.where(np.abs(t - 0.5) < 0.3, pinch, 1)
    top = eye_y + 0.02
    pts[:17, 1] = top + (chin_y - top) * np.sin(ang) ** (1.1 - 0.3 * c) + sag * np.sin(ang) ** 6 * 0.4
    # brows 17-21 (right), 22-26 (left)
    by = eye_y - 0.22 * (1 + 0.1 * c) + ident.brow_height + 0.03 * o
    arch = 0.05 + 0.05 * ident.brow_arch
    pts[17:22] = _arc(-sp - 0.24, -0.1, by + 0.04, by + 0.02, by - arch, 5)
    pts[22:27] = _arc(0.1, sp + 0.24, by + 0.02, by + 0.04, by - arch, 5)
    # nose 27-35
    pts[27:31, 0] = 0.0
    pts[27:31, 1] = np.linspace(eye_y, nose_tip, 4)
    nw = 0.11 * ident.nose_width * (1 + 0.1 * o) * (1 - 0.15 * c)
    nb = nose_tip + 0.07 * low
    pts[31:36] = np.stack([np.linspace(-nw, nw, 5), nb + np.array([0, 0.02, 0.035, 0.02, 0])], 1)
    # eyes 36-41 (right: outer 36 .. inner 39), 42-47 (left: inner 42 .. outer 45)
    for base, side in ((36, -1), (42, 1)):
        cx = side * sp
        lift = np.tan(ident.eye_tilt)
        outer = np.array([cx + side * ew, eye_y - lift * ew])
        inner = np.array([cx - side * ew, eye_y + lift * ew])
        ring = []                                  # corner, two upper, corner, two lower
        for k, (u, up) in enumerate([(0, 0), (0.3, -1), (0.7, -1), (1, 0), (0.7, 1), (0.3, 1)]):
            p = outer + (inner - outer) * u
            p = p + np.array([0, up * eh * (1.0 if up < 0 else 0.8) * np.sin(np.pi * (0.2 + 0.6 * u))])
            ring.append(p)
        ring = np.array(ring)
        if side == 1:                              # left eye starts at the inner corner
            ring = ring[[3, 2, 1, 0, 5, 4]]
        pts[base:base + 6] = ring
    # mouth 48-67
    mw = 0.27 * ident.mouth_width * (1 - 0.18 * c) * (1 + 0.15 * e.lip_width) * (1 - 0.3 * e.lip_round)
    thick = ident.lip_thickness * (1 - 0.45 * o) * (1 + 0.1 * c) * (1 + 0.3 * e.lip_round)
    ut, lt = 0.05 * thick, 0.065 * thick
    gap = 0.3 * open_ + 0.02 * e.lip_round * (1 - e.closure)
    corner_y = mouth_y + 0.012 * o - 0.02 * max(e.lip_width, 0)
    yu, yl = mouth_y - gap * 0.3, mouth_y + gap * 0.7         # the upper and lower lip lines
    xs = np.array([-1, -0.62, -0.24, 0, 0.24, 0.62, 1]) * mw
    upper_outer = np.stack([xs, yu - ut * np.array([0, 0.8, 1.0, 0.8, 1.0, 0.8, 0]) + 0 * xs], 1)
    upper_outer[[0, 6], 1] = corner_y
    lower_outer = np.stack([xs[[5, 4, 3, 2, 1]], yl + lt * np.array([0.75, 0.95, 1.0, 0.95, 0.75])], 1)
    pts[48:55] = upper_outer
    pts[55:60] = lower_outer
    ix = np.array([-0.82, -0.3, 0, 0.3, 0.82]) * mw
    pts[60:65] = np.stack([ix, np.array([corner_y, yu, yu, yu, corner_y])], 1)
    pts[65:68] = np.stack([ix[[3, 2, 1]], np.array([yl, yl, yl])], 1)
    if gap < 1e-6:
        pts[61:64, 1] = pts[65:68, 1][::-1] = mouth_y

    # the skull over the top: from point 16 to point 0 (not landmarks)
    head_top = eye_y - 0.95 - 0.25 * c
    th = np.linspace(0, np.pi, 25)
    hw = fw * (1.0 + 0.05 * c)
    forehead = np.stack([np.cos(th) * hw, top - (top - head_top) * np.sin(th) ** 0.8], 1)
    depth = 0.55 * np.sqrt(np.clip(1 - (pts[:, 0] / (fw * 1.05)) ** 2, 0, 1))
    depth[27:31] += np.linspace(0.05, 0.35, 4)
    depth[31:36] += 0.18
    depth[48:68] += 0.08
    return {"points": pts, "forehead": forehead, "depth": depth, "eye_y": eye_y, "chin_y": chin_y,
            "head_top": head_top, "hw": hw}


def _project(xy: np.ndarray, depth: np.ndarray, nz: Nuisance, size: int) -> np.ndarray:
    """Face units -> pixels: yaw (a rotation about the vertical axis), roll, scale, shift."""
    x = xy[:, 0] * np.cos(nz.yaw) + depth * np.sin(nz.yaw)
    y = xy[:, 1]
    cr, sr = np.cos(nz.roll), np.sin(nz.roll)
    x, y = cr * x - sr * y, sr * x + cr * y
    s = SCALE * size * nz.scale
    return np.stack([(CX + nz.shift[0]) * size + s * x, (CY + nz.shift[1]) * size + s * y], 1)


def mean_shape(size: int = 128, age: float = 30.0, n: int = 200, seed: int = 0) -> np.ndarray:
    """The mean of the world's frontal landmarks (``68 x 2`` pixels of a ``size`` image) over ``n``
    identities at ``age``: the canonical alignment template is this shape at age 30."""
    acc = np.zeros((68, 2))
    for i in range(n):
        g = face_geometry(sample_identity(np.random.default_rng([seed, 10 ** 6 + i]), i), age)
        acc += _project(g["points"], g["depth"], Nuisance(), size) - 0.5
    return acc / n


# ------------------------------------------------------------------------------------ rendering
class _Canvas:
    """Float RGB canvas at supersampled resolution with alpha compositing of masks."""

    def __init__(self, size: int):
        self.n = size * _SS
        self.img = np.zeros((self.n, self.n, 3), np.float32)
        yy, xx = np.mgrid[0:self.n, 0:self.n].astype(np.float32)
        self.yy, self.xx = (yy + 0.5) / _SS, (xx + 0.5) / _SS   # pixel coordinates of the output image

    def poly(self, pts: np.ndarray) -> np.ndarray:
        im = Image.new("L", (self.n, self.n), 0)
        ImageDraw.Draw(im).polygon([tuple(p) for p in (np.asarray(pts) * _SS).tolist()], fill=255)
        return np.asarray(im, np.float32) / 255.0

    def stroke(self, pts: np.ndarray, width, closed: bool = False) -> np.ndarray:
        """A thick polyline (width in output pixels, scalar or per point) as a mask."""
        p = np.vstack([pts, pts[:1]]) if closed else pts
        w = np.broadcast_to(np.asarray(width, np.float64), (len(pts),))
        w = np.concatenate([w, w[:1]]) if closed else w
        d = np.gradient(p, axis=0)
        nrm = np.stack([-d[:, 1], d[:, 0]], 1) / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-9)
        half = nrm * w[:, None] / 2
        return self.poly(np.vstack([p + half, (p - half)[::-1]]))

    def ellipse(self, cx, cy, rx, ry, rot=0.0) -> np.ndarray:
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        x, y = max(rx, 0.25) * np.cos(t), max(ry, 0.25) * np.sin(t)
        c, s = np.cos(rot), np.sin(rot)
        return self.poly(np.stack([cx + c * x - s * y, cy + s * x + c * y], 1))

    @staticmethod
    def _box(mask: np.ndarray, pad: int = 0):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if not len(rows):
            return None
        n = mask.shape[0]
        return (slice(max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, n)),
                slice(max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, n)))

    def put(self, mask: np.ndarray, colour, alpha: float = 1.0) -> None:
        box = self._box(mask)
        if box is None:
            return
        a = (mask[box] * alpha)[..., None]
        col = np.asarray(colour, np.float32)
        col = col[box] if col.ndim == 3 else col
        self.img[box] = self.img[box] * (1 - a) + col * a

    def soft(self, mask: np.ndarray, sigma: float) -> np.ndarray:
        if sigma <= 0:
            return mask
        box = self._box(mask, pad=int(3 * sigma * _SS) + 1)
        if box is None:
            return mask
        out = np.zeros_like(mask)
        out[box] = ndimage.gaussian_filter(mask[box], sigma * _SS)
        return out

    def result(self) -> np.ndarray:
        n = self.n // _SS
        return self.img.reshape(n, _SS, n, _SS, 3).mean((1, 3))


def _grey(colour, g: float):
    c = np.asarray(colour)
    return c * (1 - g) + np.array([0.78, 0.78, 0.78]) * g


def render_face(ident: Identity, age: float, size: int = 128, expr: Expression | None = None,
                nuisance: Nuisance | None = None, rng: np.random.Generator | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Render one face: ``(H x W x 3 uint8 image, 68 x 2 float landmarks in pixels)``.

    ``rng`` drives the small random details (noise, spots); ``nuisance`` the pose, light and
    camera (default: frontal, neutral). The landmarks are the projected drawing points, in dlib's
    pixel convention (pixel ``i``'s centre at ``i``, so a flip maps ``x`` to ``W - 1 - x``).
    """
    if size < 32:
        raise UserError(f"faces world: size must be at least 32, got {size}")
    rng = rng or np.random.default_rng(0)
    nz = nuisance or Nuisance(noise=0.0)
    af = age_factors(age)
    g = face_geometry(ident, age, expr)
    P = _project(g["points"], g["depth"], nz, size)
    head = _project(g["forehead"], np.zeros(len(g["forehead"])), nz, size)
    unit = SCALE * size * nz.scale                                # pixels per face unit
    cv = _Canvas(size)

    def fp(xy, depth=0.0):                                          # face units -> pixels
        xy = np.atleast_2d(np.asarray(xy, np.float64))
        return _project(xy, np.full(len(xy), depth), nz, size)

    # background: a vertical gradient between two colours
    t = (cv.yy / size)[..., None]
    cv.img[:] = np.asarray(nz.background) * (1 - t) + np.asarray(nz.background2) * t
    grey = float(np.clip((age - ident.grey_onset) / 30.0, 0, 1))
    hair = _grey(ident.hair_colour, grey)
    if af["child"] > 0.8:
        hair = hair * 0.7 + np.array([0.55, 0.42, 0.28]) * 0.3
    thin = ident.thinning * af["old"]
    hair_amount = 1 - 0.85 * thin
    long_hair = ident.hair_style in ("long", "bob")
    # hair behind the head
    if hair_amount > 0.15 and ident.hair_style != "crop":
        ext = 1.12 if ident.hair_style == "short" else 1.22
        drop = {"short": 0.0, "long": 1.25, "bob": 0.55}[ident.hair_style]
        outline = np.vstack([g["forehead"] * [ext, 1.0] + [0, -0.08],
                             [[-g["hw"] * ext, g["eye_y"] + drop], [g["hw"] * ext, g["eye_y"] + drop]][::-1]])
        outline = np.vstack([outline, [[g["hw"] * ext, g["eye_y"] + drop]]])
        cv.put(cv.soft(cv.poly(fp(outline[:-1])), 0.6), hair, alpha=min(1.0, hair_amount + 0.1))
    skin = np.asarray(ident.skin)
    sat = 1 - 0.25 * af["old"]
    skin = skin.mean() + (skin - skin.mean()) * sat
    # neck and clothes
    neck = fp([[-0.42, g["chin_y"] - 0.4], [0.42, g["chin_y"] - 0.4], [0.45, 2.2], [-0.45, 2.2]])
    cv.put(cv.poly(neck), skin * 0.8)
    shoulders = fp([[-1.6, g["chin_y"] + 0.35], [1.6, g["chin_y"] + 0.35], [2.2, 2.5], [-2.2, 2.5]])
    cv.put(cv.soft(cv.poly(shoulders), 0.5), nz.clothes)
    # ears
    for k in (1, 15):
        ex, ey = P[k]
        cv.put(cv.soft(cv.ellipse(ex + (k - 8) / 7 * 0.05 * unit, ey, 0.1 * unit, 0.19 * unit), 0.4), skin * 0.9)
    # the face: jaw + skull, shaded by the light
    face_poly = np.vstack([P[:17], head[1:-1]])
    face_mask = cv.poly(face_poly)
    centre = fp([[0, 0.1]])[0]
    rx = (cv.xx - centre[0]) / unit
    ry = (cv.yy - centre[1]) / unit
    shade = 1 + nz.light_strength * (rx * nz.light[0] + ry * nz.light[1]) * 0.8 - 0.12 * (rx ** 2 + 0.3 * ry ** 2)
    face_col = skin[None, None, :] * shade[..., None]
    cv.put(cv.soft(face_mask, 0.5), face_col)
    # cheeks (blush), jaw shadow
    for side in (-1, 1):
        c = fp([[side * 0.5, g["eye_y"] + 0.38]])[0]
        cv.put(cv.soft(cv.ellipse(c[0], c[1], 0.17 * unit, 0.12 * unit), 3.0 * size / 128),
               skin * np.array([1.05, 0.8, 0.8]), alpha=0.25 + 0.2 * af["child"] + 0.1 * ident.gender)
    # wrinkles and spots
    w = af["wrinkles"]
    if w > 0.02:
        lw = 0.012 * unit
        col = skin * 0.6
        for k in range(3):                                          # forehead lines
            y = g["eye_y"] - 0.45 - 0.1 * k
            cv.put(cv.soft(cv.stroke(fp(_arc(-0.45, 0.45, y, y, y - 0.03, 9)), lw), 0.3), col, alpha=0.6 * w)
        for side, corner in ((-1, 36), (1, 45)):                    # crow's feet
            c0 = g["points"][corner]
            for d in (-0.05, 0.0, 0.05):
                seg = np.array([c0 + [side * 0.03, d * 0.3], c0 + [side * 0.12, d]])
                cv.put(cv.soft(cv.stroke(fp(seg), lw), 0.3), col, alpha=0.6 * w)
    nl = min(1.0, 0.25 * af["adult"] + 0.9 * w)                      # nasolabial folds
    for wing, corner, side in ((31, 48, -1), (35, 54, 1)):
        a0, a1 = g["points"][wing] + [side * 0.05, -0.02], g["points"][corner] + [side * 0.06, 0.05]
        mid = (a0 + a1) / 2 + [side * 0.05, 0]
        curve = np.array([a0, mid, a1])
        cv.put(cv.soft(cv.stroke(fp(curve), 0.02 * unit), 0.8 * size / 128), skin * 0.65, alpha=0.65 * nl)
    if af["old"] > 0.3:
        for _ in range(int(8 * af["old"])):
            p = fp([[rng.uniform(-0.7, 0.7), rng.uniform(g["eye_y"] - 0.6, g["eye_y"] + 0.6)]])[0]
            cv.put(cv.soft(cv.ellipse(p[0], p[1], 0.02 * unit, 0.02 * unit), 0.3), skin * 0.7, alpha=0.5)
    # hair in front: the fringe / hairline
    if hair_amount > 0.05:
        recede = 0.12 * thin + (0.1 if ident.hair_style == "crop" else 0.0)
        line = g["eye_y"] - 0.62 + recede
        if ident.hair_style == "bob":
            line = g["eye_y"] - 0.42
        fr = np.vstack([g["forehead"][::-1] * [1.03, 1.0] + [0, -0.03],
                        _arc(g["hw"] * 1.03, -g["hw"] * 1.03, g["eye_y"] - 0.1, g["eye_y"] - 0.1, line, 9)[::-1][::-1]])
        mask = cv.poly(fp(fr))
        cv.put(cv.soft(mask, 0.5), hair, alpha=hair_amount)
        if long_hair:                                               # hair down the sides of the face
            for side in (-1, 1):
                strip = np.array([[side * g["hw"] * 0.98, g["eye_y"] - 0.2], [side * g["hw"] * 1.2, g["eye_y"] - 0.2],
                                  [side * g["hw"] * 1.2, g["eye_y"] + 0.75], [side * g["hw"] * 0.93, g["eye_y"] + 0.6]])
                cv.put(cv.soft(cv.poly(fp(strip)), 0.5), hair, alpha=hair_amount)
    # brows
    bw = 0.045 * ident.brow_thickness * unit * (1 - 0.2 * af["child"])
    brow_col = _grey(np.asarray(ident.hair_colour) * 0.9, grey * 0.8)
    for a, b in ((17, 22), (22, 27)):
        widths = bw * np.array([0.7, 1.0, 1.0, 0.85, 0.6]) if a == 17 else bw * np.array([0.6, 0.85, 1.0, 1.0, 0.7])
        cv.put(cv.soft(cv.stroke(P[a:b], widths), 0.3), brow_col, alpha=0.9)
    # eyes
    for base in (36, 42):
        ring = P[base:base + 6]
        opening = np.linalg.norm(ring[1] - ring[5]) + np.linalg.norm(ring[2] - ring[4])
        cv.put(cv.soft(cv.stroke(ring[[0, 1, 2, 3]], 0.022 * unit), 0.3), skin * 0.55, alpha=0.8)  # lid crease
        if opening > 0.01 * unit:
            sclera = cv.poly(ring)
            cv.put(sclera, np.array([0.92, 0.9, 0.87]))
            cx, cy = ring.mean(0)
            r = 0.065 * unit * ident.eye_size * (1 + 0.3 * af["child"])
            iris = cv.ellipse(cx, cy, r, r) * sclera
            cv.put(iris, ident.eye_colour)
            cv.put(cv.ellipse(cx, cy, r * 0.45, r * 0.45) * sclera, np.array([0.03, 0.03, 0.03]))
            cv.put(cv.ellipse(cx + r * 0.3, cy - r * 0.3, r * 0.18, r * 0.18) * sclera, np.array([1.0, 1.0, 1.0]),
                   alpha=0.8)
        cv.put(cv.stroke(ring[[0, 1, 2, 3]], 0.02 * unit), np.array([0.08, 0.06, 0.05]))           # upper lid line
        cv.put(cv.soft(cv.stroke(ring[[3, 4, 5, 0]], 0.008 * unit), 0.2), skin * 0.5, alpha=0.6)
    # nose: bridge shadow on the side away from the light, nostrils, the tip
    side = -1 if nz.light[0] > 0 else 1
    bridge = P[27:31] + np.array([side * 0.05 * unit, 0])
    cv.put(cv.soft(cv.stroke(bridge, 0.035 * unit), 1.0 * size / 128), skin * 0.7, alpha=0.5)
    cv.put(cv.soft(cv.stroke(P[31:36], 0.02 * unit), 0.4), skin * 0.55, alpha=0.8)
    for k in (32, 34):
        cv.put(cv.soft(cv.ellipse(P[k][0], P[k][1] - 0.01 * unit, 0.028 * unit, 0.015 * unit), 0.3),
               skin * 0.3, alpha=0.9)
    tip = P[30]
    cv.put(cv.soft(cv.ellipse(tip[0], tip[1], 0.05 * unit, 0.04 * unit), 0.8), np.minimum(skin * 1.12, 1), alpha=0.5)
    # mouth: lips, then the opening
    lip = np.asarray(ident.lip_colour) * (1 - 0.15 * af["old"]) + skin * 0.15 * af["old"]
    outer = P[48:60]
    cv.put(cv.soft(cv.poly(outer), 0.3), lip)
    inner = P[60:68]
    if np.ptp(inner[:, 1]) > 0.01 * unit:
        mouth_in = cv.poly(inner)
        cv.put(mouth_in, np.array([0.25, 0.06, 0.08]))
        teeth = mouth_in * (cv.yy < (P[61, 1] + P[62, 1]) / 2 + 0.03 * unit)
        cv.put(teeth, np.array([0.88, 0.86, 0.8]), alpha=0.9 if af["child"] < 0.9 else 0.0)
    cv.put(cv.soft(cv.stroke(P[[60, 61, 62, 63, 64]], 0.012 * unit), 0.2), lip * 0.5, alpha=0.9)
    # glasses
    if ident.glasses:
        gc = np.asarray(ident.glasses_colour)
        for base in (36, 42):
            c = P[base:base + 6].mean(0)
            rx_, ry_ = 0.2 * unit, (0.14 if not ident.glasses_round else 0.18) * unit
            ring = cv.ellipse(c[0], c[1], rx_, ry_, -nz.roll) - cv.ellipse(c[0], c[1], rx_ - 0.02 * unit,
                                                                            ry_ - 0.02 * unit, -nz.roll)
            cv.put(np.clip(ring, 0, 1), gc)
            cv.put(cv.ellipse(c[0], c[1], rx_, ry_, -nz.roll), np.array([0.9, 0.95, 1.0]), alpha=0.08)
        bridge = np.array([P[39] + [0.05 * unit, -0.05 * unit], P[27] + [0, 0.02 * unit], P[42] - [0.05 * unit,
                                                                                                      0.05 * unit]])
        cv.put(cv.stroke(bridge, 0.02 * unit), gc)
    img = cv.result() * np.asarray(nz.tint, np.float32)
    if nz.blur > 0:
        img = ndimage.gaussian_filter(img, (nz.blur, nz.blur, 0))
    if nz.noise > 0:
        img = img + rng.normal(0, nz.noise, img.shape).astype(np.float32)
    # drawing coordinates put pixel i's centre at i + 0.5; landmarks use dlib's convention (centre at i)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), P - 0.5


# ------------------------------------------------------------------------------------ the dataset
def group_ages(rng: np.random.Generator) -> list[int]:
    """One age in each of the ten groups (80+: 81-95)."""
    return [int(rng.integers(lo, min(hi, 95) + 1)) for lo, hi in AGE_GROUPS]


def render_world_face(ident: Identity, age: float, *, seed: int, render: int, size: int, pose: float = 1.0
                      ) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """Render ``k`` of identity ``ident.index`` as :func:`write_dataset` draws it, at any ``age``.

    The pose, light, background and noise come from ``default_rng([seed, i, k])`` whatever the age,
    so with another age this is the *same photo* of that person at that age: the counterfactual
    target that the LDcGAN paired check compares each output with. Returns the image, its exact
    landmarks and the generator (the dataset draws the JPEG quality from it next).
    """
    rng = np.random.default_rng([seed, ident.index, render])
    img, pts = render_face(ident, age, size, nuisance=sample_nuisance(rng, pose), rng=rng)
    return img, pts, rng


def file_name(age: int, ident: Identity, render: int) -> str:
    """UTKFace's ``age_gender_race_date.jpg``, the date encoding identity and render."""
    return f"{age}_{ident.gender}_{ident.race}_2000{ident.index:07d}{render:06d}.jpg"


def _date_of(name: str) -> str:
    date = Path(name).name.split("_")[3].split(".")[0] if Path(name).name.count("_") >= 3 else ""
    if len(date) != 17 or not date.startswith("2000"):
        raise UserError(f"{name}: not a faces-world file name")
    return date


def identity_of(name: str) -> int:
    """The identity number in a world file name (see :func:`file_name`)."""
    return int(_date_of(name)[4:11])


def render_of(name: str) -> int:
    """The render number in a world file name (see :func:`file_name`)."""
    return int(_date_of(name)[11:])


@dataclass
class WorldPlan:
    n_train_ids: int
    n_test_ids: int
    ages_per_identity: int
    counts: dict = field(default_factory=dict)


def plan_counts(n: int, test_fraction: float, ages_per_identity: int) -> WorldPlan:
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    if not 0 <= test_fraction < 1:
        raise UserError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    if ages_per_identity < 1 or ages_per_identity > 10:
        raise UserError(f"--ages-per-identity must be 1..10, got {ages_per_identity}")
    n_test_ids = int(round(n * test_fraction / 10))
    n_train = max(n - 10 * n_test_ids, 0)
    n_train_ids = int(np.ceil(n_train / ages_per_identity))
    return WorldPlan(n_train_ids, n_test_ids, ages_per_identity,
                     {"train": n_train_ids * ages_per_identity, "test": 10 * n_test_ids})


def write_dataset(out: str | Path, n: int, *, size: int = 128, seed: int = 0, test_fraction: float = 0.2,
                  ages_per_identity: int = 1, pose: float = 1.0, overwrite: bool = False,
                  progress: bool | None = None) -> dict:
    """Write the world under ``out``: ``n`` images over train/ and test/; returns meta.json's dict."""
    from tqdm import tqdm

    from condsynth.io.atomic import atomic_dir, atomic_write_text
    from condsynth.io.landmarks import save_landmarks, write_landmark_cache
    out = Path(out)
    if size < 32:
        raise UserError(f"--size must be at least 32 for faces, got {size}")
    plan = plan_counts(n, test_fraction, ages_per_identity)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")
    total = plan.n_train_ids + plan.n_test_ids
    bar = tqdm(range(total), desc="faces", disable=(progress is False) or (progress is None and total < 500))
    identities = {}
    with atomic_dir(out) as tmp:
        cache: dict[str, dict[str, np.ndarray]] = {"train": {}, "test": {}}
        for i in bar:
            split = "train" if i < plan.n_train_ids else "test"
            ident = sample_identity(np.random.default_rng([seed, i]), i)
            ages_rng = np.random.default_rng([seed, i, 10 ** 6])
            ages = group_ages(ages_rng)
            if split == "train":
                chosen = ages_rng.choice(10, size=ages_per_identity, replace=False)
                ages = [ages[j] for j in sorted(chosen)]
            files = []
            (tmp / split).mkdir(exist_ok=True)
            for k, age in enumerate(ages):
                img, pts, rng = render_world_face(ident, age, seed=seed, render=k, size=size, pose=pose)
                name = file_name(age, ident, k)
                Image.fromarray(img).save(tmp / split / name, quality=int(rng.integers(80, 96)))
                save_landmarks(tmp / split / (name[:-4] + ".npy"), pts)
                cache[split][name] = pts
                files.append(name)
            identities[str(i)] = {"split": split, "files": files, "ages": ages, "params": ident.to_dict()}
        for split, items in cache.items():
            if items:
                write_landmark_cache(tmp / split / "landmarks.npz", items, failures=[])
        atomic_write_text(tmp / "identities.json", json.dumps(identities) + "\n")
        meta = {"world": WORLD_NAME, "world_version": WORLD_VERSION, "seed": int(seed), "size": int(size),
                "pose": float(pose), "ages_per_identity": ages_per_identity,
                "seed_rule": "identity i = default_rng([seed, i]); its ages default_rng([seed, i, 10**6]); "
                             "render k = default_rng([seed, i, k])",
                "layout": "UTKFace names (age_gender_race_date.jpg) in train/ and test/; date = 2000 + identity "
                          "(7 digits) + render (6 digits); landmarks NAME.npy beside and SPLIT/landmarks.npz",
                "age_groups": list(AGE_GROUP_NAMES), "identities": {"train": plan.n_train_ids,
                                                                     "test": plan.n_test_ids},
                "counts": plan.counts}
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta


def contact_sheet(n_identities: int = 6, size: int = 96, seed: int = 0) -> np.ndarray:
    """Rows of identities, columns the ten age groups (frontal, neutral): ``uint8`` grid."""
    rows = []
    for i in range(n_identities):
        ident = sample_identity(np.random.default_rng([seed, i]), i)
        ages = [int(np.mean((lo, min(hi, 90)))) for lo, hi in AGE_GROUPS]
        rows.append(np.concatenate([render_face(ident, a, size)[0] for a in ages], 1))
    return np.concatenate(rows, 0)
