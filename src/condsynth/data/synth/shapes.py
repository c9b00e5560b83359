"""The "shapes" synthetic world: one or two coloured shapes on a neutral background, 10 captions each.

It stands in for CUB birds / Oxford flowers in text-to-image work (DAMSM pretraining, HfGAN): the
captions come from a small grammar, and every attribute a caption can mention is known exactly, so
"does the image follow its caption" is measurable (plans/thesis-methods.md §3.1).

An image holds ``count`` (one or two) copies of one object: a shape (circle, square, triangle,
star, diamond) in a colour (red, green, blue, yellow, orange, purple, white, black), a size (small,
large), a position (left, right, top, bottom, centre; two objects sit side by side or one above
the other) and a texture (plain, striped, dotted), on a neutral background (light grey, grey,
beige, dark slate) chosen to contrast with the object, so colour words always mean the object.

Captions: each of the 10 captions mentions a random subset of the attributes with paraphrases
("a red circle", "there is a small red circle on the left", "a circle, red, near the top",
"on the left, a big striped shape"), so short user captions are in distribution. The class is
(shape, colour), as CUB's species: DAMSM masks same-class pairs, and a few (shape, colour) pairs
never appear in training (:data:`HELD_OUT`): they form the ``compositional`` split.

Layout (AttnGAN's birds folder; JSON instead of pickles)::

    OUT/CUB_200_2011/images.txt, image_class_labels.txt, classes.txt, bounding_boxes.txt
    OUT/CUB_200_2011/images/NNN.shape_colour/shapes_IIIII.jpg
    OUT/text/NNN.shape_colour/shapes_IIIII.txt        10 captions, one a line
    OUT/masks/NNN.shape_colour/shapes_IIIII.png       0 background, k = object k (1, 2)
    OUT/{train,test,compositional}/filenames.json, class_info.json
    OUT/attributes.json                               per key: every attribute and object box
    OUT/vocab.json                                    built from the training captions
    OUT/meta.json

``bounding_boxes.txt`` holds the whole image (0 0 W H), so the CUB reader's bounding-box crop keeps
the full picture (positions stay meaningful); the objects' own boxes are in attributes.json.
Image ``i`` is drawn from ``default_rng([seed, i])``: any file can be regenerated.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from condsynth.errors import UserError
from condsynth.io.atomic import atomic_dir, atomic_write_text

WORLD_NAME = "shapes"
WORLD_VERSION = 1

SHAPES = ("circle", "square", "triangle", "star", "diamond")
COLOURS = {"red": (210, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 210, 40),
           "orange": (240, 135, 30), "purple": (140, 50, 170), "white": (245, 245, 245), "black": (20, 20, 20)}
BACKGROUNDS = {"light grey": (200, 200, 200), "grey": (128, 128, 128), "beige": (215, 205, 175),
               "dark": (55, 58, 66)}
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom", "centre")
TEXTURES = ("plain", "striped", "dotted")
# (shape, colour) pairs that never appear in train/test: the compositional split
HELD_OUT = (("circle", "purple"), ("square", "orange"), ("triangle", "white"), ("star", "green"),
            ("diamond", "red"))
CLASSES = tuple((s, c) for s in SHAPES for c in COLOURS)      # class id = index + 1 (CUB's ids are 1-based)

_CENTRES = {"left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27), "bottom": (0.5, 0.73),
            "centre": (0.5, 0.5)}
_RADIUS = {"small": 0.11, "large": 0.19}
_SS = 4                                     # supersampling factor for smooth edges


@dataclass(frozen=True)
class ShapeImage:
    shape: str
    colour: str
    size: str
    position: str          # one object: one of POSITIONS; two: "side by side" or "one above the other"
    texture: str
    count: int
    background: str
    centres: tuple          # per object (x, y) in [0, 1]
    radius: float           # in units of the image side


def class_dir(shape: str, colour: str) -> str:
    return f"{CLASSES.index((shape, colour)) + 1:03d}.{shape}_{colour}"


def _luma(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def draw_attributes(rng: np.random.Generator) -> ShapeImage:
    shape = SHAPES[rng.integers(len(SHAPES))]
    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    size = SIZES[rng.integers(2)]
    texture = TEXTURES[rng.integers(3)]
    count = 1 + int(rng.random() < 0.3)
    bgs = [b for b, v in BACKGROUNDS.items() if abs(_luma(v) - _luma(COLOURS[colour])) > 55]
    background = bgs[rng.integers(len(bgs))]
    r = _RADIUS[size] if count == 1 else _RADIUS[size] * 0.8
    jit = rng.uniform(-0.05, 0.05, size=4)
    if count == 1:
        position = POSITIONS[rng.integers(len(POSITIONS))]
        cx, cy = _CENTRES[position]
        centres = ((cx + jit[0], cy + jit[1]),)
    else:
        position = ("side by side", "one above the other")[rng.integers(2)]
        a, b = ((0.27, 0.5), (0.73, 0.5)) if position == "side by side" else ((0.5, 0.27), (0.5, 0.73))
        centres = ((a[0] + jit[0], a[1] + jit[1]), (b[0] + jit[2], b[1] + jit[3]))
    centres = tuple((float(np.clip(x, r, 1 - r)), float(np.clip(y, r, 1 - r))) for x, y in centres)
    return ShapeImage(shape, colour, size, position, texture, count, background, centres, float(r))


def _polygon(shape: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    if shape == "square":
        k, ang, rad = 4, np.pi / 4 + rot, [r * 1.0] * 4
    elif shape == "triangle":
        k, ang, rad = 3, -np.pi / 2 + rot, [r * 1.15] * 3
    elif shape == "diamond":
        k, ang, rad = 4, -np.pi / 2, [r * 1.15, r * 0.75] * 2
    elif shape == "star":
        k, ang, rad = 10, -np.pi / 2 + rot, [r * 1.15, r * 0.48] * 5
    else:
        raise ValueError(shape)
    return [(cx + rad[j] * np.cos(ang + 2 * np.pi * j / k), cy + rad[j] * np.sin(ang + 2 * np.pi * j / k))
            for j in range(k)]


def render(attrs: ShapeImage, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``size x size x 3`` uint8 image and ``size x size`` uint8 mask (0 background, k = object k)."""
    big = size * _SS
    mask_img = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask_img)
    rot = float(rng.uniform(-0.15, 0.15))
    for k, (x, y) in enumerate(attrs.centres, start=1):
        cx, cy, r = x * big, y * big, attrs.radius * big
        if attrs.shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=k)
        else:
            draw.polygon(_polygon(attrs.shape, cx, cy, r, rot), fill=k)
    ids = np.asarray(mask_img)
    inside = ids > 0
    colour = np.array(COLOURS[attrs.colour], dtype=np.float32) * rng.uniform(0.9, 1.05)
    bg = np.array(BACKGROUNDS[attrs.background], dtype=np.float32)
    yy, xx = np.mgrid[0:big, 0:big].astype(np.float32) / big
    canvas = bg[None, None] * (1.0 + 0.06 * (yy[..., None] - 0.5))        # a faint vertical gradient
    obj = np.broadcast_to(colour, canvas.shape).copy()
    shade = 0.55 if _luma(COLOURS[attrs.colour]) > 90 else 2.2          # pattern darker, or lighter on black
    pattern_colour = np.clip(colour * shade + (40 if shade > 1 else 0), 0, 255)
    if attrs.texture == "striped":
        period = 0.09 + 0.02 * rng.random()
        stripes = ((xx + yy) / period) % 1.0 < 0.45
        obj[stripes] = pattern_colour
    elif attrs.texture == "dotted":
        period = 0.075
        fx, fy = (xx / period) % 1.0 - 0.5, (yy / period) % 1.0 - 0.5
        obj[fx ** 2 + fy ** 2 < 0.22 ** 2] = pattern_colour
    canvas[inside] = obj[inside]
    small = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).resize((size, size), Image.BOX)
    arr = np.asarray(small).astype(np.float32) + rng.normal(0, 3.0, (size, size, 3))
    masks = np.asarray(mask_img.resize((size, size), Image.NEAREST))
    return np.clip(arr, 0, 255).astype(np.uint8), masks


# ----------------------------------------------------------------------------------- captions
_SHAPE_WORDS = {"circle": ["circle", "circle", "disc", "round shape"], "square": ["square", "square", "box"],
                "triangle": ["triangle"], "star": ["star"], "diamond": ["diamond", "diamond", "rhombus"]}
_PLURAL = {"circle": "circles", "disc": "discs", "round shape": "round shapes", "square": "squares",
           "box": "boxes", "triangle": "triangles", "star": "stars", "diamond": "diamonds",
           "rhombus": "rhombuses", "shape": "shapes", "object": "objects"}
_COLOUR_WORDS = {"purple": ["purple", "violet"], "white": ["white"], "black": ["black"], "red": ["red"],
                 "green": ["green"], "blue": ["blue"], "yellow": ["yellow"], "orange": ["orange"]}
_SIZE_WORDS = {"small": ["small", "little", "tiny"], "large": ["large", "big", "huge"]}
_TEXTURE_WORDS = {"plain": ["plain", "solid"], "striped": ["striped"], "dotted": ["dotted", "spotted"]}
_TEXTURE_WITH = {"plain": "of a single colour", "striped": "with stripes", "dotted": "with dots"}
_POS_WORDS = {"left": ["on the left", "at the left", "to the left", "on the left side"],
              "right": ["on the right", "at the right", "to the right", "on the right side"],
              "top": ["at the top", "near the top", "in the upper part"],
              "bottom": ["at the bottom", "near the bottom", "in the lower part"],
              "centre": ["in the middle", "in the centre", "at the center"],
              "side by side": ["side by side", "next to each other"],
              "one above the other": ["one above the other", "stacked vertically"]}
_BG_WORDS = {"light grey": "light grey", "grey": "grey", "beige": "beige", "dark": "dark"}


def captions_for(a: ShapeImage, rng: np.random.Generator, n: int = 10) -> list[str]:
    """``n`` captions, each mentioning a random subset of the attributes (the shape or the colour always)."""
    pick = lambda xs: xs[rng.integers(len(xs))]     # noqa: E731
    out: list[str] = []
    while len(out) < n:
        say_shape, say_colour = rng.random() < 0.85, rng.random() < 0.8
        if not (say_shape or say_colour):
            say_shape = True
        say_size, say_pos, say_tex, say_bg = (rng.random() < p for p in (0.5, 0.5, 0.45, 0.15))
        noun = pick(_SHAPE_WORDS[a.shape]) if say_shape else pick(["shape", "object"])
        colour = pick(_COLOUR_WORDS[a.colour]) if say_colour else ""
        size = pick(_SIZE_WORDS[a.size]) if say_size else ""
        tex = a.texture if say_tex else None
        pos = pick(_POS_WORDS[a.position]) if say_pos else ""
        two = a.count == 2
        det = "two" if two else pick(["a", "a", "one"])
        noun_n = _PLURAL.get(noun, noun + "s") if two else noun
        form = rng.integers(5)
        tex_adj = pick(_TEXTURE_WORDS[tex]) if tex else ""
        if form == 0 or (form == 2 and not colour):      # adjectives before the noun
            words = [det, size, colour, tex_adj, noun_n, pos]
        elif form == 1:                                   # "there is / there are ..."
            words = ["there are" if two else "there is", det, size, colour, noun_n,
                     _TEXTURE_WITH[tex] if tex else "", pos]
        elif form == 2:                                   # "a circle, red, near the top"
            words = [det, size, noun_n + ",", colour + ("," if pos or tex else ""),
                     (_TEXTURE_WITH[tex] + ("," if pos else "")) if tex else "", pos]
        elif form == 3 and pos:                           # "on the left, a red circle"
            words = [pos + ",", det, size, colour, tex_adj, noun_n]
        else:                                             # "a circle that is red ..."
            rel = "that are" if two else "that is"
            attrs = [w for w in (size, colour) if w]
            words = [det, noun_n] + ([rel, " and ".join(attrs)] if attrs else []) + \
                    [_TEXTURE_WITH[tex] if tex else "", pos]
        text = " ".join(w for w in words if w)
        # re-pick the article for the word that actually follows it
        parts = text.split(" ")
        for j, w in enumerate(parts[:-1]):
            if w in ("a", "an"):
                parts[j] = "an" if parts[j + 1][0] in "aeiou" else "a"
        text = " ".join(parts)
        if say_bg:
            text += f" on a {_BG_WORDS[a.background]} background"
        out.append(text)
    return out


# ------------------------------------------------------------------------------------- writer
def split_of(shape: str, colour: str, rng_value: float, test_fraction: float) -> str:
    if (shape, colour) in HELD_OUT:
        return "compositional"
    return "test" if rng_value < test_fraction else "train"


def write_dataset(out: str | Path, n: int, *, size: int = 64, seed: int = 0, test_fraction: float = 0.15,
                  overwrite: bool = False, progress: bool | None = None) -> dict:
    """Write ``n`` images (all splits) under ``out`` in the AttnGAN birds layout; returns meta.json's dict."""
    from condsynth.data.text import Vocabulary
    out = Path(out)
    if not isinstance(size, int) or size < 16:
        raise UserError(f"--size must be a square side of at least 16 for shapes, got {size}")
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    if not 0 <= test_fraction < 1:
        raise UserError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")
    splits: dict[str, list[str]] = {"train": [], "test": [], "compositional": []}
    class_info: dict[str, list[int]] = {k: [] for k in splits}
    attributes: dict[str, dict] = {}
    captions_of: dict[str, list[str]] = {}
    from tqdm import tqdm
    bar = tqdm(range(n), desc="shapes", disable=(progress is False) or (progress is None and n < 2000))
    with atomic_dir(out) as tmp:
        cub = tmp / "CUB_200_2011"
        rows_images, rows_labels, rows_boxes = [], [], []
        for i in bar:
            rng = np.random.default_rng([seed, i])
            a = draw_attributes(rng)
            img, masks = render(a, size, rng)
            caps = captions_for(a, rng)
            cdir = class_dir(a.shape, a.colour)
            key = f"{cdir}/shapes_{i:05d}"
            for sub, suffix in (("CUB_200_2011/images", ".jpg"), ("text", ".txt"), ("masks", ".png")):
                (tmp / sub / cdir).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(cub / "images" / f"{key}.jpg", quality=95)
            Image.fromarray(masks).save(tmp / "masks" / f"{key}.png")
            (tmp / "text" / f"{key}.txt").write_text("\n".join(caps) + "\n", encoding="utf-8")
            split = split_of(a.shape, a.colour, rng.random(), test_fraction)
            cls = CLASSES.index((a.shape, a.colour)) + 1
            splits[split].append(key)
            class_info[split].append(cls)
            boxes = []
            for k in range(1, a.count + 1):
                ys, xs = np.nonzero(masks == k)
                boxes.append([int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
                             if len(xs) else [0, 0, 0, 0])
            attributes[key] = {**asdict(a), "class_id": cls, "split": split, "object_boxes": boxes}
            captions_of[key] = caps
            rows_images.append(f"{i + 1} {key}.jpg")
            rows_labels.append(f"{i + 1} {cls}")
            rows_boxes.append(f"{i + 1} 0.0 0.0 {float(size)} {float(size)}")
        (cub / "images.txt").write_text("\n".join(rows_images) + "\n")
        (cub / "image_class_labels.txt").write_text("\n".join(rows_labels) + "\n")
        (cub / "bounding_boxes.txt").write_text("\n".join(rows_boxes) + "\n")
        (cub / "classes.txt").write_text("\n".join(f"{j + 1} {class_dir(*c)}" for j, c in enumerate(CLASSES)) + "\n")
        for split, keys in splits.items():
            (tmp / split).mkdir()
            (tmp / split / "filenames.json").write_text(json.dumps(keys) + "\n")
            (tmp / split / "class_info.json").write_text(json.dumps(class_info[split]) + "\n")
        (tmp / "attributes.json").write_text(json.dumps(attributes) + "\n")
        vocab = Vocabulary.build(c for k in splits["train"] for c in captions_of[k])
        vocab.save(tmp / "vocab.json")
        meta = {"world": WORLD_NAME, "world_version": WORLD_VERSION, "seed": int(seed), "size": size,
                "seed_rule": "image i = default_rng([seed, i]): attributes, then render, then captions",
                "layout": "AttnGAN birds (CUB_200_2011/, text/, SPLIT/filenames.json, class_info.json)",
                "classes": [class_dir(*c) for c in CLASSES], "held_out": [list(p) for p in HELD_OUT],
                "captions_per_image": 10, "vocab_size": len(vocab),
                "counts": {k: len(v) for k, v in splits.items()}}
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta
