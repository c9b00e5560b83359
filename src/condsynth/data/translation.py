"""Image-translation datasets in the layouts of pix2pix and CycleGAN.

Paired, layout ``ab`` (pix2pix's datasets: facades, maps, cityscapes, edges2shoes)::

    root/train/1.jpg      # one image, A on the left half, B on the right half
    root/val/...  root/test/...

Paired, layout ``folders``::

    root/train/A/x.png    root/train/B/x.png    # matching file names
    root/train/instance/x.png                   # optional (data.instances): 16-bit instance ids

pix2pixHD's folders (``layout: pix2pixhd``) and Cityscapes as downloaded (``layout: cityscapes``), both
detected by ``layout: auto``; :mod:`condsynth.data.cityscapes` lists their files::

    root/train_label/x.png  root/train_inst/x.png  root/train_img/x.jpg    (or train_A/ train_B/)
    root/leftImg8bit/train/CITY/*_leftImg8bit.png  root/gtFine/train/CITY/*_gtFine_{labelIds,instanceIds}.png

Their A side is a class-id map: it is read as one (``label_a``) whatever the config says.

Unpaired (CycleGAN's horse2zebra etc.)::

    root/trainA/*.jpg     root/trainB/*.jpg     (also testA/testB)

Images come out as float tensors in [-1, 1], ``C x H x W`` (C = 3, or 1 with ``grayscale_a/b``).
A side read as a label map (``label_a/b``) comes out as an ``H x W`` int64 tensor of class ids,
read exactly (palette indices, 16-bit ids) and resized with nearest neighbour; the method one-hot
encodes it with its ``num_classes``. Instance maps (``instances``) come out the same way under
``"inst"``, cropped and flipped with A and B. With ``instances: true`` and no instance maps in the
split (no ``instance/``, ``SPLIT_inst/`` or ``*_instanceIds.png``) the reader warns once and the
samples have no ``"inst"``: a method that needs them says so itself.

``num_classes`` > 0 checks every label map read: an id at or above it is an error naming the file,
the id and its pixel count (instead of a one-hot index error deep inside a training step).

Sizes (``load_size``, ``crop_size``) are an int for a square or ``[h, w]``, e.g. ``crop_size:
[256, 512]`` for pix2pixHD's 2:1 crops.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from condsynth.config import bounded
from condsynth.data import cityscapes, split_key, transforms as T
from condsynth.data.check import Report, plural, register_check, sizes_line
from condsynth.errors import UserError
from condsynth.io.images import (IMAGE_EXTENSIONS, list_images, luma, read_image, read_instance_map, read_label_map,
                                 uint8_to_tensor)

Preprocess = Literal["resize_and_crop", "resize", "crop", "none"]


@dataclass(frozen=True)
class Side:
    """How one side of a sample (A, B or the instance map) is read, resampled and made a tensor."""
    kind: Literal["rgb", "gray", "label", "instance"] = "rgb"
    interp: T.Interp = "bicubic"

    @property
    def ids(self) -> bool:
        return self.kind in ("label", "instance")

    def read(self, path: Path) -> np.ndarray:
        """``H x W x C`` uint8 for images; ``H x W x 1`` uint8/int32 ids for label and instance maps."""
        if self.kind == "instance":
            return read_instance_map(path)[..., None]
        if self.kind == "label":
            return read_label_map(path)[..., None]
        return self.from_rgb(read_image(path))

    def from_rgb(self, rgb: np.ndarray) -> np.ndarray:
        return luma(rgb) if self.kind == "gray" else rgb

    def resize(self, arr: np.ndarray, size) -> np.ndarray:
        return T.resize(arr, size, "nearest" if self.ids else self.interp)    # ids are never blended

    def to_tensor(self, arr: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(arr[..., 0].astype(np.int64)) if self.ids else uint8_to_tensor(arr)


_INSTANCE = Side("instance", "nearest")

MAX_SIDE = 16384                        # image sides in pixels: a 16k x 16k RGB float is 3 GB


@dataclass
class ImageDataConfig:
    """What the paired and unpaired readers share. ``_a`` / ``_b`` settings describe the sample's
    ``"A"`` / ``"B"``, i.e. the model's input and target (after ``direction``, for paired data)."""
    root: str = ""                      # dataset root
    preprocess: Preprocess = "resize_and_crop"
    load_size: int | tuple[int, int] = bounded(286, 1, MAX_SIDE)  # pix2pix §6.2: resize to 286 ... ([h, w] too)
    crop_size: int | tuple[int, int] = bounded(256, 1, MAX_SIDE)  # ... random crop 256 (e.g. [256, 512] for 2:1)
    flip: bool = True
    interp_a: T.Interp = "bicubic"      # 'nearest' when A is a colour-coded label map
    interp_b: T.Interp = "bicubic"
    grayscale_a: bool = False           # one channel (BT.601 luma) instead of RGB
    grayscale_b: bool = False
    label_a: bool = False               # A holds class ids: read exactly, nearest resize, an H x W int64 tensor
    label_b: bool = False
    max_items: int = bounded(0, 0, None)  # 0 = all; >0 keeps the first N (quick experiments)

    def __post_init__(self):
        for name in ("load_size", "crop_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)):
                if not isinstance(value, (list, tuple)) or len(value) != 2:
                    raise ValueError(f"{name} must be an int or [h, w], got {value!r}")
                value = tuple(int(v) for v in value)
                setattr(self, name, value)
            if min(T.as_hw(value)) < 1:
                raise ValueError(f"{name} must be positive, got {value!r}")
        (lh, lw), (ch, cw) = T.as_hw(self.load_size), T.as_hw(self.crop_size)
        if self.preprocess == "resize_and_crop" and (ch > lh or cw > lw):
            raise ValueError(f"crop_size {self.crop_size} is larger than load_size {self.load_size}")
        for s in ("a", "b"):
            if getattr(self, f"label_{s}") and getattr(self, f"grayscale_{s}"):
                raise ValueError(f"label_{s} and grayscale_{s} exclude each other: a label map has no colours")

    def side(self, which: Literal["A", "B"]) -> Side:
        label, gray, interp = ((self.label_a, self.grayscale_a, self.interp_a) if which == "A"
                               else (self.label_b, self.grayscale_b, self.interp_b))
        return Side("label" if label else "gray" if gray else "rgb", interp)

    def geometry(self, train: bool):
        """(resize to, then resize again to, random crop): pix2pix's preprocess modes. Evaluation
        sees the whole image at crop size, as pix2pix's test mode does."""
        load = self.load_size if self.preprocess in ("resize_and_crop", "resize") else None
        crop = self.crop_size if (train and self.preprocess in ("resize_and_crop", "crop")) else None
        final = self.crop_size if (not train and self.preprocess == "resize_and_crop") else None
        return load, final, crop


def _jitter(cfg: ImageDataConfig, train: bool, rng: np.random.Generator, arrays: list[np.ndarray],
            sides: list[Side], path: Path) -> list[torch.Tensor]:
    """Resize, then one random crop and flip for all ``arrays`` (they share a pixel grid)."""
    load, final, crop = cfg.geometry(train)
    arrays = [side.resize(side.resize(a, load), final) for a, side in zip(arrays, sides)]
    h, w = arrays[0].shape[:2]
    if crop is not None and (T.as_hw(crop)[0] > h or T.as_hw(crop)[1] > w):
        raise UserError(f"{path}: image is {w}x{h}, smaller than data.crop_size {crop} "
                        f"(resize it with data.preprocess=resize_and_crop)")
    params = T.sample_params(rng, (h, w), crop, cfg.flip and train)
    return [side.to_tensor(T.apply(a, params, crop)) for a, side in zip(arrays, sides)]


@dataclass
class PairedDataConfig(ImageDataConfig):
    layout: Literal["auto", "ab", "folders", "pix2pixhd", "cityscapes"] = "auto"
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    instances: bool = False             # also read instance ids (SPLIT/instance/, SPLIT_inst/, *_instanceIds) as "inst"
    num_classes: int = bounded(0, 0, 65536)   # > 0: a label id >= num_classes is an error naming the file
    train_split: str = "train"
    eval_split: str = "val"


def detect_layout(split_dir: Path) -> str:
    """The layout of a pix2pix split folder (``folders`` or ``ab``); see :func:`cityscapes.detect` for the
    layouts recognised at the dataset root."""
    if (split_dir / "A").is_dir() and (split_dir / "B").is_dir():
        return "folders"
    return "ab"


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """A Python warning, once per message and process (every split and evaluation re-creates datasets)."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, UserWarning, stacklevel=3)


def check_label_range(labels: np.ndarray, num_classes: int, path: Path) -> None:
    """A UserError naming ``path``, the largest id >= ``num_classes`` and its pixels, if there is one."""
    if num_classes <= 0 or labels.size == 0 or int(labels.max()) < num_classes:
        return
    values, counts = np.unique(labels[labels >= num_classes], return_counts=True)
    more = (f" (and {len(values) - 1} other ids >= {num_classes} at {int(counts[:-1].sum()):,} pixels)"
            if len(values) > 1 else "")
    raise UserError(f"{path}: label {int(values[-1])} >= data.num_classes {num_classes} at "
                    f"{int(counts[-1]):,} pixels{more}")


class PairedImageDataset(Dataset):
    def __init__(self, cfg: PairedDataConfig, split: str, train: bool):
        if not cfg.root:
            raise UserError("data.root is not set: point it at a dataset folder (e.g. data.root=path/to/facades)")
        root = Path(cfg.root)
        if not root.is_dir():
            raise UserError(f"{root}: dataset folder not found")
        self.cfg = cfg
        self.train = train
        self.names: list[str] | None = None
        self.instance_files: list[Path] = []
        split_dir = root / split
        self.layout = (cityscapes.detect(root) if cfg.layout == "auto" else None) or cfg.layout
        if self.layout in ("pix2pixhd", "cityscapes"):
            self._init_label_layout(root, split)
            return
        if not split_dir.is_dir():
            found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "none"
            raise UserError(f"{split_dir}: split folder not found (sub-folders present: {found})")
        self.layout = detect_layout(split_dir) if cfg.layout == "auto" else cfg.layout
        if self.layout == "folders":
            a_files = list_images(split_dir / "A")
            b_names = {p.name: p for p in list_images(split_dir / "B")}
            missing = [p.name for p in a_files if p.name not in b_names]
            if missing:
                raise UserError(f"{split_dir / 'B'}: no image matching '{missing[0]}' from A/ "
                                f"({len(missing)} of {len(a_files)} unmatched)")
            self.items = [(a, b_names[a.name]) for a in a_files]
        else:
            if cfg.label_a or cfg.label_b:
                raise UserError(f"{split_dir}: data.label_a/label_b need the folders layout (SPLIT/A, SPLIT/B): "
                                f"an A|B image cannot hold class ids beside a photo")
            self.items = [(p, None) for p in list_images(split_dir)]
        if cfg.max_items > 0:
            self.items = self.items[: cfg.max_items]
        if cfg.instances:
            from condsynth.data.check import match_by_stem
            folder = split_dir / "instance"
            if not folder.is_dir():
                self._no_instances(folder)
            else:
                self.instance_files = list(match_by_stem([a for a, _ in self.items], folder,
                                                         "instance map").values())

    def _no_instances(self, where: Path) -> None:
        _warn_once(f"{where}: not found, but data.instances is true; continuing without instance maps "
                   f"(the samples have no 'inst')")

    def _init_label_layout(self, root: Path, split: str) -> None:
        """pix2pixHD's and Cityscapes' layouts: files listed by :mod:`condsynth.data.cityscapes`."""
        pairs = cityscapes.list_pairs(root, self.layout, split)
        n = pairs.items[: self.cfg.max_items] if self.cfg.max_items > 0 else pairs.items
        self.items, self.names = list(n), pairs.names[: len(n)]
        if pairs.label_ids:            # the A side on disk holds class ids
            side = "label_a" if self.cfg.direction == "AtoB" else "label_b"
            self.cfg = replace(self.cfg, **{side: True, ("grayscale_a" if side == "label_a" else "grayscale_b"):
                                            False})
        if self.cfg.instances:
            if pairs.instances is None:
                self._no_instances(pairs.instance_place)
            else:
                self.instance_files = pairs.instances[: len(n)]

    def __len__(self) -> int:
        return len(self.items)

    def read_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
        """Sample ``index`` as read from disk, before any resize: (A, B, instance ids or None, name).
        A and B are already swapped for ``direction=BtoA``."""
        a_path, b_path = self.items[index]
        in_side, out_side = self.cfg.side("A"), self.cfg.side("B")
        disk_a, disk_b = (in_side, out_side) if self.cfg.direction == "AtoB" else (out_side, in_side)
        if b_path is None:
            ab = read_image(a_path)
            w = ab.shape[1]
            if w % 2:
                raise UserError(f"{a_path}: width {w} is odd; an AB image holds A and B side by side")
            a, b = disk_a.from_rgb(ab[:, : w // 2]), disk_b.from_rgb(ab[:, w // 2:])
        else:
            a, b = disk_a.read(a_path), disk_b.read(b_path)
            if a.shape[:2] != b.shape[:2]:
                raise UserError(f"{b_path}: size {b.shape[1]}x{b.shape[0]} differs from its A image "
                                f"{a_path} ({a.shape[1]}x{a.shape[0]})")
        for arr, side, path in ((a, disk_a, a_path), (b, disk_b, b_path)):
            if side.kind == "label":
                check_label_range(arr, self.cfg.num_classes, path)
        inst = None
        if self.instance_files:
            inst = _INSTANCE.read(self.instance_files[index])
            if inst.shape[:2] != a.shape[:2]:
                what = "label map" if disk_a.kind == "label" else "A image"
                raise UserError(f"{self.instance_files[index]}: size {inst.shape[1]}x{inst.shape[0]} differs "
                                f"from its {what} {a_path} ({a.shape[1]}x{a.shape[0]})")
        if self.cfg.direction == "BtoA":
            a, b = b, a
        return a, b, inst, self.names[index] if self.names is not None else a_path.stem

    def __getitem__(self, key) -> dict:
        index, seed = split_key(key)
        a, b, inst, name = self.read_arrays(index)
        arrays, sides = [a, b], [self.cfg.side("A"), self.cfg.side("B")]
        if inst is not None:
            arrays.append(inst)
            sides.append(_INSTANCE)
        rng = np.random.default_rng(seed if seed is not None else None)
        out = _jitter(self.cfg, self.train, rng, arrays, sides, self.items[index][0])
        item = {"A": out[0], "B": out[1], "name": name}
        if inst is not None:
            item["inst"] = out[2]
        return item


@dataclass
class UnpairedDataConfig(ImageDataConfig):
    """CycleGAN's layout (root holds trainA/ trainB/, testA/ testB/); A and B are read independently,
    each with its own channels, interpolation and label setting, e.g. ``label_a: true`` for a
    labels <-> photos world."""
    train_split: str = "train"
    eval_split: str = "test"


def _domain_images(root: Path, split: str, domain: str) -> list[Path]:
    """The images of ``root/{split}{domain}``; an empty or missing folder is named as such."""
    folder = root / f"{split}{domain}"
    if folder.is_dir() and not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir()):
        raise UserError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS[:4])}, ...) found, the folder is "
                        f"empty; the unpaired layout needs images in both {split}A/ and {split}B/")
    if not folder.exists():
        present = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "none"
        raise UserError(f"{folder}: folder not found (the unpaired layout has {split}A/ and {split}B/; "
                        f"present: {present})")
    return list_images(folder)


class UnpairedImageDataset(Dataset):
    """Independent A and B folders; item i takes A[i % |A|] and a B chosen by the sample's seed."""

    def __init__(self, cfg: UnpairedDataConfig, split: str, train: bool):
        root = Path(cfg.root)
        if not cfg.root or not root.is_dir():
            raise UserError(f"{root}: dataset folder not found (set data.root)")
        self.cfg, self.train = cfg, train
        self.a_files, self.b_files = (_domain_images(root, split, d) for d in "AB")
        if cfg.max_items > 0:
            self.a_files, self.b_files = self.a_files[: cfg.max_items], self.b_files[: cfg.max_items]

    def __len__(self) -> int:
        return max(len(self.a_files), len(self.b_files))

    def _prep(self, path: Path, side: Side, rng: np.random.Generator) -> torch.Tensor:
        return _jitter(self.cfg, self.train, rng, [side.read(path)], [side], path)[0]

    def __getitem__(self, key) -> dict:
        index, seed = split_key(key)
        rng = np.random.default_rng(seed)
        a_path = self.a_files[index % len(self.a_files)]
        b_path = self.b_files[int(rng.integers(len(self.b_files)))] if self.train else \
            self.b_files[index % len(self.b_files)]
        return {"A": self._prep(a_path, self.cfg.side("A"), rng), "B": self._prep(b_path, self.cfg.side("B"), rng),
                "name": a_path.stem}


# ------------------------------------------------------------------------------- data check
_SPLITS = ("train", "val", "test")


@register_check("pix2pix", "paired images: SPLIT/*.jpg with A|B side by side, or SPLIT/A/ and SPLIT/B/ with "
                           "matching names (SPLIT = train, val, test); SPLIT/instance/ if present")
def check_paired(root: Path) -> Report:
    report = Report("pix2pix", root)
    splits = [s for s in _SPLITS if (root / s).is_dir()]
    if "train" not in splits:
        PairedImageDataset(PairedDataConfig(root=str(root)), "train", train=True)    # raises, naming what is there
    for split in splits:
        cfg = PairedDataConfig(root=str(root), instances=(root / split / "instance").is_dir())
        ds = PairedImageDataset(cfg, split, train=False)
        sizes = [ds.read_arrays(i)[0].shape[:2] for i in range(len(ds))]
        report.counts[split] = len(ds)
        inst = ", with instance maps" if cfg.instances else ""
        report.lines.append(f"{split}: {plural(len(ds), 'pair')} ({ds.layout} layout{inst}), {sizes_line(sizes)}")
        if ds.layout == "folders":
            used = {a.name for a, _ in ds.items}
            extra = sorted(p.name for p in list_images(root / split / "B") if p.name not in used)
            if extra:
                report.warnings.append(f"{root / split / 'B'}: {len(extra)} images with no partner in A/ "
                                       f"(first: {extra[0]}); they are not used")
    return report


@register_check("unpaired", "two independent image folders: trainA/ and trainB/ (also testA/ testB/)")
def check_unpaired(root: Path) -> Report:
    report = Report("unpaired", root)
    for split in ("train", "test"):
        if split == "test" and not ((root / "testA").is_dir() or (root / "testB").is_dir()):
            continue
        cfg = UnpairedDataConfig(root=str(root))
        ds = UnpairedImageDataset(cfg, split, train=True)    # a missing or empty folder is an error
        for files, which in ((ds.a_files, "A"), (ds.b_files, "B")):
            sizes = [cfg.side(which).read(f).shape[:2] for f in files]
            report.counts[f"{split}{which}"] = len(files)
            report.lines.append(f"{split}{which}: {plural(len(files), 'image')}, {sizes_line(sizes)}")
    return report


def paired_dataset(cfg: PairedDataConfig, split: str) -> PairedImageDataset:
    """The engine's ``"train"``/``"eval"`` split of a paired dataset (augmented for training only),
    for ``Method.build_dataset`` of every paired method."""
    name = cfg.train_split if split == "train" else cfg.eval_split
    return PairedImageDataset(cfg, name, train=split == "train")


__all__ = ["IMAGE_EXTENSIONS", "ImageDataConfig", "PairedDataConfig", "PairedImageDataset", "Side",
           "UnpairedDataConfig", "UnpairedImageDataset", "paired_dataset", "split_key"]
