"""Colour-coded segmentations -> class-id maps, and instance maps from connected components.

``condsynth data labels-from-colors IN_DIR OUT_DIR --palette scenes|cityscapes|FILE.json`` turns the
colour images many datasets ship (pix2pix's A halves, Cityscapes' ``*_gtFine_color.png``, a scenes
world's colour label maps) into what :func:`~condsynth.io.images.read_label_map` expects: 8-bit
palette PNGs whose pixels are class ids (viewers still show the colours).

Colours match exactly. A colour that is not in the palette is an error naming the file, the colour
and its pixel count, because a silent snap hides a wrong palette; ``--nearest`` snaps such pixels
to the nearest palette colour (squared RGB distance), for maps that were resized or saved as JPEG.
Where a palette gives one colour to several ids (Cityscapes' five black void classes; pole and
polegroup), the colour decodes to the lowest of them.

``--instances-from-components CLASSES`` also writes ``OUT_DIR/instance/NAME.png``: 16-bit instance
ids in the Cityscapes convention, ``class * 1000 + k`` for each 4-connected component of a listed
("thing") class, k counting that class's components from 0 in scan order, and the class id for every
other pixel. Touching objects of one class become one instance: the best a colour map allows.

A palette file is JSON: a list of ``{"id": 0, "name": "sky", "color": [70, 130, 180]}`` or an object
whose ``"classes"`` holds that list (a scenes dataset's meta.json is one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from condsynth.errors import UserError
from condsynth.io.images import label_map_image, list_images, read_image

MAX_INSTANCES_PER_CLASS = 1000       # class * 1000 + k: k must stay below 1000
MAX_INSTANCE_ID = 65535              # 16-bit PNG


@dataclass(frozen=True)
class Palette:
    name: str
    ids: np.ndarray            # (N,) int64 class ids
    colors: np.ndarray         # (N, 3) uint8, colors[i] shows ids[i]
    names: dict[int, str]

    def display(self) -> np.ndarray | None:
        """256 x 3 colours indexed by id, for the palette PNG (None if an id is >= 256)."""
        if self.ids.max() >= 256:
            return None
        table = np.zeros((256, 3), np.uint8)
        for i, c in zip(self.ids[::-1], self.colors[::-1]):   # the first id of a shared colour wins
            table[i] = c
        return table


def _key(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def load_palette(spec: str) -> Palette:
    """``scenes``, ``cityscapes`` or a JSON file (module docstring)."""
    if spec == "scenes":
        from condsynth.data.synth.scenes import CLASSES, PALETTE
        return Palette("scenes", np.arange(len(CLASSES)), PALETTE.copy(), dict(enumerate(CLASSES)))
    if spec == "cityscapes":
        from condsynth.data.cityscapes import LABELS
        return Palette("cityscapes", np.array([lab.id for lab in LABELS]),
                       np.array([lab.color for lab in LABELS], np.uint8), {lab.id: lab.name for lab in LABELS})
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"{path}: palette not found (--palette is scenes, cityscapes or a JSON file)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{path}: not valid JSON") from None
    entries = data.get("classes") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: a palette is a list of {{\"id\", \"name\", \"color\"}} entries (or an object "
                        f"with such a list under \"classes\")")
    ids, colors, names = [], [], {}
    for n, e in enumerate(entries):
        try:
            cid, color = int(e["id"]), [int(c) for c in e["color"]]
        except (TypeError, KeyError, ValueError):
            raise UserError(f"{path}: entry {n} needs an integer \"id\" and a \"color\" [r, g, b]") from None
        if len(color) != 3 or not all(0 <= c <= 255 for c in color) or not 0 <= cid <= MAX_INSTANCE_ID:
            raise UserError(f"{path}: entry {n}: color must be 3 values in 0..255 and id in 0..{MAX_INSTANCE_ID}")
        ids.append(cid)
        colors.append(color)
        names[cid] = str(e.get("name", cid))
    return Palette(path.name, np.array(ids), np.array(colors, np.uint8), names)


def colors_to_ids(rgb: np.ndarray, palette: Palette, nearest: bool = False, where: str = "image") -> np.ndarray:
    """``H x W x 3`` uint8 colours -> ``H x W`` class ids (uint8 when they fit, else int32)."""
    keys = _key(rgb[..., :3])
    uniq, inverse, counts = np.unique(keys.ravel(), return_inverse=True, return_counts=True)
    pal_keys = _key(palette.colors)
    order = np.argsort(pal_keys, kind="stable")       # stable: the first id of a shared colour wins
    sorted_keys = pal_keys[order]
    pos = np.clip(np.searchsorted(sorted_keys, uniq, side="left"), 0, len(sorted_keys) - 1)
    known = sorted_keys[pos] == uniq
    ids_of_uniq = palette.ids[order[pos]]
    if not known.all():
        unknown = np.flatnonzero(~known)
        if not nearest:
            worst = unknown[np.argmax(counts[unknown])]
            colour = tuple(int(v) for v in ((uniq[worst] >> 16) & 255, (uniq[worst] >> 8) & 255, uniq[worst] & 255))
            more = (f" (and {len(unknown) - 1} other unknown colours at {int(counts[unknown].sum() - counts[worst]):,}"
                    f" pixels)" if len(unknown) > 1 else "")
            raise UserError(f"{where}: colour {colour} at {int(counts[worst]):,} pixels is not in the {palette.name} "
                            f"palette{more}; pass --nearest to snap to the nearest palette colour")
        u = np.stack([(uniq[unknown] >> 16) & 255, (uniq[unknown] >> 8) & 255, uniq[unknown] & 255], 1)
        dist = ((u[:, None, :] - palette.colors[None].astype(np.int64)) ** 2).sum(-1)
        ids_of_uniq[unknown] = palette.ids[dist.argmin(1)]    # argmin takes the first (lowest index) of ties
    out = ids_of_uniq[inverse].reshape(keys.shape)
    return out.astype(np.uint8 if out.max(initial=0) < 256 else np.int32)


def instances_from_components(ids: np.ndarray, things) -> np.ndarray:
    """Cityscapes-style instance ids (module docstring) from a class-id map; ``things`` are class ids."""
    from scipy import ndimage
    out = ids.astype(np.int32)
    for c in things:
        components, n = ndimage.label(ids == c)      # 4-connectivity (scipy's default cross)
        if n > MAX_INSTANCES_PER_CLASS:
            raise UserError(f"class {c} has {n} connected components, more than the {MAX_INSTANCES_PER_CLASS} "
                            f"that class * 1000 + k can number")
        mine = components > 0
        out[mine] = c * 1000 + components[mine] - 1
    return out


def parse_classes(text: str, palette: Palette) -> list[int]:
    """``"building,tree"`` or ``"5,8"`` (names or ids of ``palette``) -> class ids."""
    by_name = {name.lower(): cid for cid, name in palette.names.items()}
    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if item.isdigit() and int(item) in palette.names:
            cid = int(item)
        elif item.lower() in by_name:
            cid = by_name[item.lower()]
        else:
            raise UserError(f"--instances-from-components: '{item}' is no class of the {palette.name} palette "
                            f"(known: {', '.join(sorted(palette.names.values()))})")
        if cid == 0:
            raise UserError("--instances-from-components: class id 0 cannot be a thing class (its ids 0*1000+k "
                            "would be read as stuff classes k)")
        if cid * 1000 + MAX_INSTANCES_PER_CLASS - 1 > MAX_INSTANCE_ID:
            raise UserError(f"--instances-from-components: class id {cid} is too large for 16-bit ids "
                            f"(class * 1000 + k <= {MAX_INSTANCE_ID})")
        out.append(cid)
    if not out:
        raise UserError("--instances-from-components: no class given")
    return sorted(set(out))


def convert_folder(in_dir: str | Path, out_dir: str | Path, palette: Palette, *, nearest: bool = False,
                   things: list[int] | None = None) -> dict:
    """Convert every image of ``in_dir`` into ``out_dir/NAME.png`` (+ ``instance/NAME.png``), atomically:
    the folder appears complete or not at all. Returns counts for the report line."""
    from condsynth.io.atomic import atomic_dir
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    files = list_images(in_dir)
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise UserError(f"{f}: same name as {stems[f.stem].name}; both would be written as {f.stem}.png")
        stems[f.stem] = f
    display = palette.display()
    pixels: dict[int, int] = {}
    n_instances = 0
    with atomic_dir(out_dir) as tmp:
        if things is not None:
            (tmp / "instance").mkdir()
        for f in files:
            ids = colors_to_ids(read_image(f), palette, nearest, where=str(f))
            values, counts = np.unique(ids, return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist()):
                pixels[v] = pixels.get(v, 0) + c
            label_map_image(ids, display if display is not None and ids.max() < 256 else None).save(
                tmp / f"{f.stem}.png")
            if things is not None:
                inst = instances_from_components(ids, things)
                n_instances += int(len(np.unique(inst[inst >= 1000])))
                label_map_image(inst, bits=16).save(tmp / "instance" / f"{f.stem}.png")
    return {"maps": len(files), "pixels": pixels, "instances": n_instances}


__all__ = ["Palette", "colors_to_ids", "convert_folder", "instances_from_components", "load_palette",
           "parse_classes"]
