"""The label-map layouts of pix2pixHD and Cityscapes: file listing, the Cityscapes label table, checks.

pix2pixHD's folders (``layout: pix2pixhd``; SPLIT is ``train``, ``test``, or any name)::

    root/train_label/x.png     # class ids (8-bit grey or palette PNG)
    root/train_inst/x.png      # optional: 16-bit instance ids (class * 1000 + k for things)
    root/train_img/x.jpg       # the photo (png or jpg), matched to its label map by name stem
    root/train_A/x.png  root/train_B/x.png     # RGB mode (pix2pixHD's label_nc 0): two images

Cityscapes as downloaded (``layout: cityscapes``; SPLIT is ``train``, ``val``, ``test``)::

    root/leftImg8bit/SPLIT/CITY/CITY_SEQ_FRAME_leftImg8bit.png
    root/gtFine/SPLIT/CITY/CITY_SEQ_FRAME_gtFine_labelIds.png      # ids 0..33 (table below)
    root/gtFine/SPLIT/CITY/CITY_SEQ_FRAME_gtFine_instanceIds.png   # 16-bit, class * 1000 + k

Both are read by :class:`~condsynth.data.translation.PairedImageDataset` (A = the label map, B = the
photo, "inst" = the instance map), which finds the files through :func:`list_pairs`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from condsynth.data.check import LabelStats, Report, match_by_stem, plural, register_check, sizes_line
from condsynth.errors import UserError
from condsynth.io.images import list_images


@dataclass(frozen=True)
class CityscapesLabel:
    id: int               # the value in *_gtFine_labelIds.png
    name: str
    train_id: int         # the 19-class training id; 255 = ignored in training and evaluation
    category: str
    has_instances: bool   # a "thing": its pixels get id * 1000 + k in *_instanceIds.png
    color: tuple[int, int, int]   # its colour in *_gtFine_color.png


# The 34 labels of Cityscapes' labelIds (Cordts et al. 2016; the table of its devkit's labels.py).
# The devkit's 35th entry, "license plate" (id -1), never appears in labelIds files and is left out.
LABELS: tuple[CityscapesLabel, ...] = tuple(CityscapesLabel(*row) for row in (
    (0, "unlabeled", 255, "void", False, (0, 0, 0)),
    (1, "ego vehicle", 255, "void", False, (0, 0, 0)),
    (2, "rectification border", 255, "void", False, (0, 0, 0)),
    (3, "out of roi", 255, "void", False, (0, 0, 0)),
    (4, "static", 255, "void", False, (0, 0, 0)),
    (5, "dynamic", 255, "void", False, (111, 74, 0)),
    (6, "ground", 255, "void", False, (81, 0, 81)),
    (7, "road", 0, "flat", False, (128, 64, 128)),
    (8, "sidewalk", 1, "flat", False, (244, 35, 232)),
    (9, "parking", 255, "flat", False, (250, 170, 160)),
    (10, "rail track", 255, "flat", False, (230, 150, 140)),
    (11, "building", 2, "construction", False, (70, 70, 70)),
    (12, "wall", 3, "construction", False, (102, 102, 156)),
    (13, "fence", 4, "construction", False, (190, 153, 153)),
    (14, "guard rail", 255, "construction", False, (180, 165, 180)),
    (15, "bridge", 255, "construction", False, (150, 100, 100)),
    (16, "tunnel", 255, "construction", False, (150, 120, 90)),
    (17, "pole", 5, "object", False, (153, 153, 153)),
    (18, "polegroup", 255, "object", False, (153, 153, 153)),
    (19, "traffic light", 6, "object", False, (250, 170, 30)),
    (20, "traffic sign", 7, "object", False, (220, 220, 0)),
    (21, "vegetation", 8, "nature", False, (107, 142, 35)),
    (22, "terrain", 9, "nature", False, (152, 251, 152)),
    (23, "sky", 10, "sky", False, (70, 130, 180)),
    (24, "person", 11, "human", True, (220, 20, 60)),
    (25, "rider", 12, "human", True, (255, 0, 0)),
    (26, "car", 13, "vehicle", True, (0, 0, 142)),
    (27, "truck", 14, "vehicle", True, (0, 0, 70)),
    (28, "bus", 15, "vehicle", True, (0, 60, 100)),
    (29, "caravan", 255, "vehicle", True, (0, 0, 90)),
    (30, "trailer", 255, "vehicle", True, (0, 0, 110)),
    (31, "train", 16, "vehicle", True, (0, 80, 100)),
    (32, "motorcycle", 17, "vehicle", True, (0, 0, 230)),
    (33, "bicycle", 18, "vehicle", True, (119, 11, 32)),
))
NAMES: dict[int, str] = {lab.id: lab.name for lab in LABELS}
TRAIN_IDS: dict[int, int] = {lab.id: lab.train_id for lab in LABELS}      # id -> trainId (255 = ignore)
THING_IDS: tuple[int, ...] = tuple(lab.id for lab in LABELS if lab.has_instances)
IGNORE_TRAIN_ID = 255
# pix2pixHD trains Cityscapes with label_nc 35 (ids 0..33 and the devkit's 34 entries counted from -1).
NUM_CLASSES = 35


def train_id_lut():
    """A 256-entry uint8 lookup table: ``lut[label_ids]`` gives trainIds, 255 for ignored and unknown ids."""
    import numpy as np
    lut = np.full(256, IGNORE_TRAIN_ID, np.uint8)
    for lab in LABELS:
        lut[lab.id] = lab.train_id
    return lut


# ------------------------------------------------------------------------------- file listing
LEFT, LABEL_IDS, INSTANCE_IDS = "_leftImg8bit.png", "_gtFine_labelIds.png", "_gtFine_instanceIds.png"


@dataclass
class Pairs:
    """What one split of a layout holds: (A file, B file) pairs, their names, instance files or None
    where the layout has none for this split, and whether A holds class ids."""
    items: list[tuple[Path, Path]]
    names: list[str]
    instances: list[Path] | None
    instance_place: Path         # where instance maps would be (named in the warning when absent)
    label_ids: bool


def _present(root: Path) -> str:
    return ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "none"


def detect(root: Path) -> str | None:
    """'cityscapes', 'pix2pixhd' or None (a per-split pix2pix layout) from the folders under ``root``."""
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        return "cityscapes"
    if any(p.is_dir() and p.name.rsplit("_", 1)[-1] in ("label", "A") and "_" in p.name for p in root.iterdir()):
        return "pix2pixhd"
    return None


def list_pairs(root: Path, layout: str, split: str) -> Pairs:
    return (_cityscapes_pairs if layout == "cityscapes" else _pix2pixhd_pairs)(root, split)


def _pix2pixhd_pairs(root: Path, split: str) -> Pairs:
    label_dir, a_dir = root / f"{split}_label", root / f"{split}_A"
    if label_dir.is_dir():
        a_files, b_dir, label_ids = list_images(label_dir), root / f"{split}_img", True
    elif a_dir.is_dir():
        a_files, b_dir, label_ids = list_images(a_dir), root / f"{split}_B", False
    else:
        raise UserError(f"{root}: no {split}_label/ or {split}_A/ folder for split '{split}' (pix2pixhd layout; "
                        f"folders present: {_present(root)})")
    if not b_dir.is_dir():
        raise UserError(f"{b_dir}: folder not found (pix2pixhd layout: the photos of {a_files[0].parent.name}/)")
    b_files = match_by_stem(a_files, b_dir, "image")
    inst_dir = root / f"{split}_inst"
    instances = list(match_by_stem(a_files, inst_dir, "instance map").values()) if inst_dir.is_dir() else None
    return Pairs([(a, b_files[a]) for a in a_files], [a.stem for a in a_files], instances, inst_dir, label_ids)


def _cityscapes_pairs(root: Path, split: str) -> Pairs:
    img_dir, gt_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for d in (img_dir, gt_dir):
        if not d.is_dir():
            raise UserError(f"{d}: split folder not found (cityscapes layout; present: {_present(d.parent)})")
    photos = sorted(img_dir.glob(f"*/*{LEFT}"))
    if not photos:
        raise UserError(f"{img_dir}: no CITY/*{LEFT} files (cityscapes layout)")
    names = [p.name[: -len(LEFT)] for p in photos]
    labels = [gt_dir / p.parent.name / f"{n}{LABEL_IDS}" for p, n in zip(photos, names)]
    missing = [f for f in labels if not f.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: label map not found for {missing[0].name[: -len(LABEL_IDS)]}{LEFT} "
                        f"({len(missing)} of {len(labels)} missing)")
    inst = [gt_dir / p.parent.name / f"{n}{INSTANCE_IDS}" for p, n in zip(photos, names)]
    present = [f.is_file() for f in inst]
    if any(present) and not all(present):
        first = inst[present.index(False)]
        raise UserError(f"{first}: instance map not found ({present.count(False)} of {len(inst)} missing)")
    return Pairs(list(zip(labels, photos)), names, inst if all(present) else None, gt_dir / f"CITY/*{INSTANCE_IDS}",
                 True)


# ------------------------------------------------------------------------------- data check
def _class_names(root: Path, layout: str) -> dict[int, str] | None:
    """Class names for the report: a meta.json beside the data (scenes world) wins over Cityscapes'."""
    meta = root / "meta.json"
    if meta.is_file():
        try:
            classes = json.loads(meta.read_text(encoding="utf-8")).get("classes", [])
            return {int(c["id"]): str(c["name"]) for c in classes}
        except (ValueError, TypeError, KeyError, AttributeError):
            pass
    return NAMES if layout == "cityscapes" else None


def _splits(root: Path, layout: str) -> list[str]:
    if layout == "cityscapes":
        return [s for s in ("train", "val", "test") if (root / "leftImg8bit" / s).is_dir()]
    found = {p.name.rsplit("_", 1)[0] for p in root.iterdir() if p.is_dir() and p.name.endswith(("_label", "_A"))}
    order = {"train": 0, "val": 1, "test": 2}
    return sorted(found, key=lambda s: (order.get(s, 3), s))


def check_layout(root: Path, layout: str) -> Report:
    """Read every pair (and instance map) of every split through the dataset class; report counts."""
    from condsynth.data.translation import PairedDataConfig, PairedImageDataset
    report = Report(layout, root)
    if detect(root) != layout:
        what = ("leftImg8bit/ and gtFine/" if layout == "cityscapes" else "SPLIT_label/ + SPLIT_img/ or "
                "SPLIT_A/ + SPLIT_B/")
        raise UserError(f"{root}: not a {layout} dataset: no {what} folders (present: {_present(root)})")
    names = _class_names(root, layout)
    for split in _splits(root, layout):
        pairs = list_pairs(root, layout, split)
        cfg = PairedDataConfig(root=str(root), layout=layout, instances=pairs.instances is not None)
        ds = PairedImageDataset(cfg, split, train=False)
        stats, inst_stats, sizes = LabelStats(), LabelStats(), []
        for i in range(len(ds)):
            a, b, inst, _ = ds.read_arrays(i)
            sizes.append(a.shape[:2])
            if pairs.label_ids:
                stats.add(a[..., 0])
            if inst is not None:
                inst_stats.add(inst[..., 0])
        report.counts[split] = len(ds)
        kind = "label maps + photos" if pairs.label_ids else "A/B image pairs (RGB mode)"
        inst_text = ", with instance maps" if pairs.instances is not None else ", no instance maps"
        report.lines.append(f"{split}: {plural(len(ds), 'pair')} ({kind}{inst_text}), {sizes_line(sizes)}")
        if pairs.label_ids:
            report.counts[f"{split}_range"] = list(stats.range)
            report.counts[f"{split}_pixels"] = dict(stats.pixels)
            report.lines += [f"  {line}" for line in stats.lines(names=names)]
        if inst is not None or inst_stats.n_maps:
            things = sum(n for v, n in inst_stats.maps.items() if v >= 1000)
            report.counts[f"{split}_things"] = things
            report.lines.append(f"  {plural(inst_stats.n_maps, 'instance map')}: {things} thing instances "
                                f"(id = class * 1000 + k), ids {inst_stats.range[0]}..{inst_stats.range[1]}")
    if not report.counts:
        raise UserError(f"{root}: no split found ({layout} layout)")
    return report


@register_check("pix2pixhd", "pix2pixHD's folders: SPLIT_label/ (class ids), SPLIT_inst/ (16-bit instance ids, "
                             "optional), SPLIT_img/ (photos); or SPLIT_A/ + SPLIT_B/ (RGB mode)")
def check_pix2pixhd(root: Path) -> Report:
    return check_layout(root, "pix2pixhd")


@register_check("cityscapes", "Cityscapes as downloaded: leftImg8bit/SPLIT/CITY/*_leftImg8bit.png and "
                              "gtFine/SPLIT/CITY/*_gtFine_labelIds.png (+ _instanceIds.png)")
def check_cityscapes(root: Path) -> Report:
    return check_layout(root, "cityscapes")


__all__ = ["IGNORE_TRAIN_ID", "LABELS", "NAMES", "NUM_CLASSES", "THING_IDS", "TRAIN_IDS", "CityscapesLabel",
           "Pairs", "detect", "list_pairs", "train_id_lut"]
