"""UTKFace (Zhang, Song & Qi, CVPR 2017) in its released filename layout.

Every file is named ``[age]_[gender]_[race]_[date&time].jpg`` -- in the "Aligned & Cropped"
release ``[age]_[gender]_[race]_[date&time].jpg.chip.jpg`` -- with

* age: integer 0..116,
* gender: 0 = male, 1 = female,
* race: 0 = White, 1 = Black, 2 = Asian, 3 = Indian, 4 = Others,
* date&time: ``yyyymmddHHMMSSFFF``, when the image was collected.

A handful of released files break the pattern (e.g. a missing race field); ``read_utkface``
raises a UserError naming the first such file, or skips and lists them with ``skip_invalid=True``.

Age groups (LDcGAN, thesis Table 4.1): 0-5, 6-10, 11-20, 21-30, 31-40, 41-50, 51-60, 61-70,
71-80, 80+ (81 and over). The train/test split is 90/10, stratified by age group, seeded, and the
file lists are written so the split can be reproduced exactly (spec-hfgan-ldcgan §4.8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from condsynth.config import bounded
from condsynth.data import rng_for, split_key
from condsynth.data.check import Report, plural, register_check, sizes_line
from condsynth.errors import UserError
from condsynth.io.atomic import atomic_write_text
from condsynth.io.images import list_images, read_image, uint8_to_tensor

AGE_GROUPS = ((0, 5), (6, 10), (11, 20), (21, 30), (31, 40), (41, 50), (51, 60), (61, 70), (71, 80), (81, 200))
AGE_GROUP_NAMES = ("0-5", "6-10", "11-20", "21-30", "31-40", "41-50", "51-60", "61-70", "71-80", "80+")
GENDERS = ("male", "female")
RACES = ("White", "Black", "Asian", "Indian", "Others")
MAX_AGE = 116

_NAME = re.compile(r"^(?P<age>\d{1,3})_(?P<gender>\d)_(?P<race>\d)_(?P<date>\d{8,17})\.jpg(\.chip\.jpg)?$",
                   re.IGNORECASE)


@dataclass(frozen=True)
class UTKFaceRecord:
    path: Path
    age: int
    gender: int
    race: int
    date: str

    @property
    def group(self) -> int:
        return age_group(self.age)


def age_group(age: float) -> int:
    """Index (0..9) of the LDcGAN age group holding ``age`` (Table 4.1)."""
    if age < 0:
        raise ValueError(f"age must be >= 0, got {age}")
    for i, (lo, hi) in enumerate(AGE_GROUPS):
        if age <= hi:
            return i
    return len(AGE_GROUPS) - 1


def parse_utkface_name(path: str | Path) -> UTKFaceRecord:
    """Parse one file name; a name outside the layout or a label out of range is a UserError."""
    path = Path(path)
    m = _NAME.match(path.name)
    if not m:
        raise UserError(f"{path}: not a UTKFace file name ([age]_[gender]_[race]_[date&time].jpg)")
    age, gender, race = int(m["age"]), int(m["gender"]), int(m["race"])
    if age > MAX_AGE:
        raise UserError(f"{path}: age {age} out of range 0..{MAX_AGE}")
    if gender not in (0, 1):
        raise UserError(f"{path}: gender {gender} out of range (0 = male, 1 = female)")
    if race not in range(len(RACES)):
        raise UserError(f"{path}: race {race} out of range 0..{len(RACES) - 1}")
    return UTKFaceRecord(path, age, gender, race, m["date"])


def read_named_files(root: str | Path, parse, layout: str, pattern: str, skip_invalid: bool = False
                     ) -> tuple[list, list[Path]]:
    """Records ``parse(path)`` of every image under ``root`` (recursively, sorted by path) and the
    files whose names ``parse`` refuses (an error unless ``skip_invalid``); none at all is an error."""
    records, skipped = [], []
    for p in list_images(root, recursive=True):
        try:
            records.append(parse(p))
        except UserError:
            if not skip_invalid:
                raise
            skipped.append(p)
    if not records:
        raise UserError(f"{root}: no files in the {layout} layout ({pattern})")
    return records, skipped


def read_utkface(root: str | Path, skip_invalid: bool = False) -> tuple[list[UTKFaceRecord], list[Path]]:
    """All records under ``root`` (searched recursively), sorted by path; and the skipped files."""
    return read_named_files(root, parse_utkface_name, "UTKFace", "[age]_[gender]_[race]_[date&time].jpg",
                            skip_invalid)


def split_utkface(records: list[UTKFaceRecord], test_fraction: float = 0.1, seed: int = 0
                  ) -> tuple[list[UTKFaceRecord], list[UTKFaceRecord]]:
    """Train/test split stratified by age group: each group gives round(test_fraction * n) to test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for g in range(len(AGE_GROUPS)):
        members = sorted((r for r in records if r.group == g), key=lambda r: r.path.name)
        order = rng.permutation(len(members))
        n_test = int(round(test_fraction * len(members)))
        test += [members[i] for i in order[:n_test]]
        train += [members[i] for i in order[n_test:]]
    return sorted(train, key=lambda r: r.path.name), sorted(test, key=lambda r: r.path.name)


def write_split_lists(train: list[UTKFaceRecord], test: list[UTKFaceRecord], out_dir: str | Path) -> None:
    """``train.txt`` / ``test.txt`` with one file name per line, written atomically."""
    out_dir = Path(out_dir)
    for name, recs in (("train.txt", train), ("test.txt", test)):
        atomic_write_text(out_dir / name, "".join(f"{r.path.name}\n" for r in recs))


def _select_split(records: list, root: Path, split_file: str | Path | None) -> list:
    if split_file is None:
        return records
    split_file = Path(split_file)
    if not split_file.is_file():
        raise UserError(f"{split_file}: split list not found")
    wanted = [ln.strip() for ln in split_file.read_text().splitlines() if ln.strip()]
    by_name = {r.path.name: r for r in records}
    missing = [w for w in wanted if w not in by_name]
    if missing:
        raise UserError(f"{split_file}: lists {missing[0]}, which is not under {root}")
    return [by_name[w] for w in wanted]


def _load_image(path: Path, size: int) -> torch.Tensor:
    img = uint8_to_tensor(read_image(path))
    if img.shape[-2:] != (size, size):
        # Bilinear resize of the 200x200 aligned crops to 128x128 (spec §4.8 [R]).
        img = torch.nn.functional.interpolate(img[None], size=(size, size), mode="bilinear",
                                              align_corners=False, antialias=True)[0]
    return img


class UTKFaceDataset(Dataset):
    """UTKFace images as ``3 x size x size`` tensors in [-1, 1] with age, gender, race and age group.

    ``split_file`` (a ``train.txt``/``test.txt`` from :func:`write_split_lists`) selects files;
    without it every valid file under ``root`` is used.

    ``landmarks``: also return ``"landmarks"`` (``68 x 2``, in [-1, 1] of the image: ``x / (w - 1) * 2
    - 1``) from the folder's landmark cache (``landmarks.npz``, :func:`condsynth.io.landmarks.
    write_landmark_cache`; ``condsynth data prepare`` or the faces world write it); files the
    cache lists as failures, or lacks, are dropped (``self.dropped``). ``flip``: a random
    horizontal flip per item (drawn from the sampler's seed), with the landmarks mirrored
    (:data:`condsynth.io.landmarks.MIRROR`). ``target_group``: also a random target age group
    ``"target"`` (never the item's own) and a ``"reference"`` image of that group (``I^GT`` of
    Eq. 4.6), chosen by the seed.
    """

    def __init__(self, root: str | Path, split_file: str | Path | None = None, size: int = 128,
                 skip_invalid: bool = True, landmarks: bool = False, flip: bool = False,
                 target_group: bool = False, cache: str | Path | None = None, reader=None,
                 identities: bool = False):
        self.root = Path(root)
        records, self.skipped = (reader or read_utkface)(self.root, skip_invalid=skip_invalid)
        self.records = _select_split(records, self.root, split_file)
        self.size = size
        self.flip = flip
        self.target_group = target_group
        self.points: dict[str, np.ndarray] | None = None
        self.dropped: list[str] = []
        if landmarks:
            from condsynth.io.landmarks import read_landmark_cache
            cache_file = Path(cache) if cache else self.root / "landmarks.npz"
            if not cache_file.is_file():
                raise UserError(f"{cache_file}: no landmark cache (write it with `condsynth data prepare "
                                f"utkface {self.root}`)")
            self.points, failures, _ = read_landmark_cache(cache_file)
            self.dropped = [r.path.name for r in self.records if r.path.name not in self.points]
            self.records = [r for r in self.records if r.path.name in self.points]
            if not self.records:
                raise UserError(f"{cache_file}: has landmarks for none of the images under {self.root}")
        self.by_group = [[i for i, r in enumerate(self.records) if r.group == g] for g in range(len(AGE_GROUPS))]
        # identities (faces world numbers, CACD names) as 0-based ints, in sorted order of their keys
        self.identity = None
        if identities:
            keys = [identity_key(r) for r in self.records]
            index = {k: i for i, k in enumerate(sorted(set(keys)))}
            self.identity = [index[k] for k in keys]
        if target_group and sum(1 for g in self.by_group if g) < 2:
            raise UserError(f"{self.root}: target-group sampling needs images of at least two age groups")

    def __len__(self) -> int:
        return len(self.records)

    def _item(self, index: int, flip: bool) -> dict:
        from condsynth.io.landmarks import mirror_landmarks
        r = self.records[index]
        img = read_image(r.path)
        h, w = img.shape[:2]
        x = _load_image(r.path, self.size)
        out = {"image": x.flip(-1) if flip else x, "age": torch.tensor(float(r.age)), "gender": r.gender,
               "race": r.race, "group": r.group, "path": str(r.path)}
        if self.identity is not None:
            out["identity"] = self.identity[index]
        if self.points is not None:
            p = self.points[r.path.name]
            p = mirror_landmarks(p, w) if flip else p
            out["landmarks"] = torch.from_numpy(p / np.array([w - 1, h - 1]) * 2 - 1).float()
        return out

    def __getitem__(self, key):
        index, seed = split_key(key)
        rng = rng_for(index, seed, salt=7)
        out = self._item(index, bool(self.flip and rng.random() < 0.5))
        if self.target_group:
            groups = [g for g in range(len(AGE_GROUPS)) if self.by_group[g] and g != out["group"]]
            t = int(groups[rng.integers(len(groups))])
            ref = self._item(int(self.by_group[t][rng.integers(len(self.by_group[t]))]), False)
            out["target"] = t
            out["reference"] = ref["image"]
        return out


# ---------------------------------------------------------------------------------------------
# Readers and the method's data section for face evaluators (identity, landmarks, age)

@dataclass
class FaceDataConfig:
    """Faces in UTKFace's layout (a faces world, UTKFace) or CACD2000's; ``train_split`` and
    ``eval_split`` are subfolders of ``root`` (the world's train/ and test/)."""
    root: str = ""
    layout: Literal["utkface", "cacd"] = "utkface"
    train_split: str = "train"
    eval_split: str = "test"
    image_size: int = bounded(64, 16, 1024)
    flip: bool = True                # random flips; landmarks are mirrored
    landmarks: bool = False          # read SPLIT/landmarks.npz
    pairs: bool = False              # items are two images of one identity (needs identities)


def identity_key(r) -> str:
    """The identity of a record: a CACD name, or the faces world's identity number."""
    if isinstance(r, CACDRecord):
        return r.name
    from condsynth.data.synth.faces import identity_of
    return str(identity_of(r.path.name))


class IdentityPairs(Dataset):
    """Two different images (ages) of one identity per item, for contrastive identity training:
    ``{"image", "image2", "identity"}``. Identities with one image are left out."""

    def __init__(self, base: Dataset):
        self.base = base
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(base.records):
            groups.setdefault(identity_key(r), []).append(i)
        self.ids = sorted(k for k, v in groups.items() if len(v) >= 2)
        if not self.ids:
            raise UserError(f"{base.root}: no identity has two images (write the world with --ages-per-identity 2+)")
        self.members = [groups[k] for k in self.ids]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, key):
        index, seed = split_key(key)
        rng = rng_for(index, seed, salt=11)
        a, b = rng.choice(self.members[index], size=2, replace=False)
        s1, s2 = (int(v) for v in rng.integers(0, 2 ** 31, 2))
        x1, x2 = self.base[(int(a), s1)], self.base[(int(b), s2)]
        return {"image": x1["image"], "image2": x2["image"], "identity": x1["identity"]}


def face_dataset(cfg: FaceDataConfig, split: str) -> Dataset:
    """The dataset of one split (``"train"`` or ``"eval"``) of a :class:`FaceDataConfig`."""
    if not cfg.root:
        raise UserError("data.root: the face dataset folder is not set")
    sub = cfg.train_split if split == "train" else cfg.eval_split
    folder = Path(cfg.root) / sub if sub else Path(cfg.root)
    if not folder.is_dir():
        raise UserError(f"{folder}: split folder not found (data.{'train' if split == 'train' else 'eval'}_split)")
    train = split == "train"
    cls = CACDDataset if cfg.layout == "cacd" else UTKFaceDataset
    base = cls(folder, size=cfg.image_size, flip=cfg.flip and train, landmarks=cfg.landmarks, identities=cfg.pairs)
    return IdentityPairs(base) if cfg.pairs and train else base


# ---------------------------------------------------------------------------------------------
# CACD2000 (Chen, Chen & Hsu, ECCV 2014): AGE_First_Last_NNNN.jpg; the celebrity is the identity

_CACD_NAME = re.compile(r"^(?P<age>\d{1,3})_(?P<name>.+)_(?P<n>\d{4})\.jpg$", re.IGNORECASE)


@dataclass(frozen=True)
class CACDRecord:
    path: Path
    age: int
    name: str                # "Emma_Watson": the identity
    number: int

    @property
    def group(self) -> int:
        return age_group(self.age)

    gender = -1              # CACD has no gender or race labels
    race = -1


def parse_cacd_name(path: str | Path) -> CACDRecord:
    path = Path(path)
    m = _CACD_NAME.match(path.name)
    if not m:
        raise UserError(f"{path}: not a CACD2000 file name ([age]_[First]_[Last]_[nnnn].jpg)")
    age = int(m["age"])
    if age > MAX_AGE:
        raise UserError(f"{path}: age {age} out of range 0..{MAX_AGE}")
    return CACDRecord(path, age, m["name"], int(m["n"]))


def read_cacd(root: str | Path, skip_invalid: bool = False) -> tuple[list[CACDRecord], list[Path]]:
    """All CACD2000 records under ``root`` (searched recursively), sorted by file name; and the skipped files."""
    records, skipped = read_named_files(root, parse_cacd_name, "CACD2000", "[age]_[First]_[Last]_[nnnn].jpg",
                                        skip_invalid)
    return sorted(records, key=lambda r: r.path.name), skipped


class CACDDataset(UTKFaceDataset):
    """CACD2000 images with ages, groups and the celebrity ``"identity"`` name; landmarks, flips and
    target groups as :class:`UTKFaceDataset`."""

    def __init__(self, root: str | Path, size: int = 128, skip_invalid: bool = True, **kwargs):
        super().__init__(root, size=size, skip_invalid=skip_invalid, reader=read_cacd, **kwargs)


@register_check("utkface", "UTKFace: [age]_[gender]_[race]_[date&time].jpg files, searched recursively: images "
                           "per age group, gender and race; names outside the pattern")
def check_utkface(root: Path) -> Report:
    records, skipped = read_utkface(root, skip_invalid=True)
    sizes = [read_image(r.path).shape[:2] for r in records]      # every image decodes
    groups = np.bincount([r.group for r in records], minlength=len(AGE_GROUPS)).tolist()
    genders = np.bincount([r.gender for r in records], minlength=len(GENDERS)).tolist()
    races = np.bincount([r.race for r in records], minlength=len(RACES)).tolist()
    report = Report("utkface", root, counts={"images": len(records), "skipped": len(skipped),
                                              "age_groups": dict(zip(AGE_GROUP_NAMES, groups))})
    report.lines += [
        f"{plural(len(records), 'image')}, {sizes_line(sizes)}",
        "age groups: " + ", ".join(f"{name} {n}" for name, n in zip(AGE_GROUP_NAMES, groups)),
        "gender: " + ", ".join(f"{name} {n}" for name, n in zip(GENDERS, genders)),
        "race: " + ", ".join(f"{name} {n}" for name, n in zip(RACES, races)),
    ]
    if skipped:
        report.warnings.append(f"{plural(len(skipped), 'file')} outside the naming pattern, skipped by the reader "
                               f"(first: {skipped[0]})")
    empty = [name for name, n in zip(AGE_GROUP_NAMES, groups) if n == 0]
    if empty:
        report.warnings.append(f"no images in age group{'s' if len(empty) > 1 else ''} {', '.join(empty)}")
    _cache_lines(root, records, report)
    return report


def _cache_lines(root: Path, records, report: Report) -> None:
    """The landmark cache (``landmarks.npz``) of the folder, if there is one: coverage and failures."""
    from condsynth.io.landmarks import read_landmark_cache
    cache = root / "landmarks.npz"
    if not cache.is_file():
        report.lines.append("no landmark cache (landmarks.npz)")
        return
    points, failures, _ = read_landmark_cache(cache)
    have = sum(1 for r in records if r.path.name in points)
    report.counts["landmarks"] = have
    report.lines.append(f"landmark cache: {have} of {len(records)} images, {len(failures)} detection failures")
    if have < len(records):
        report.warnings.append(f"{len(records) - have} images have no cached landmarks (dropped when data.landmarks)")


@register_check("cacd", "CACD2000: [age]_[First]_[Last]_[nnnn].jpg files, searched recursively: images, "
                        "celebrities (identities), images per age group and per identity")
def check_cacd(root: Path) -> Report:
    records, skipped = read_cacd(root, skip_invalid=True)
    sizes = [read_image(r.path).shape[:2] for r in records]
    groups = np.bincount([r.group for r in records], minlength=len(AGE_GROUPS)).tolist()
    per_id: dict[str, int] = {}
    for r in records:
        per_id[r.name] = per_id.get(r.name, 0) + 1
    counts = sorted(per_id.values())
    report = Report("cacd", root, counts={"images": len(records), "identities": len(per_id),
                                           "skipped": len(skipped), "age_groups": dict(zip(AGE_GROUP_NAMES, groups))})
    report.lines += [
        f"{plural(len(records), 'image')} of {plural(len(per_id), 'identity')}, {sizes_line(sizes)}",
        f"images per identity: min {counts[0]}, median {counts[len(counts) // 2]}, max {counts[-1]}",
        "age groups: " + ", ".join(f"{name} {n}" for name, n in zip(AGE_GROUP_NAMES, groups)),
    ]
    if skipped:
        report.warnings.append(f"{plural(len(skipped), 'file')} outside the naming pattern, skipped (first: "
                               f"{skipped[0]})")
    single = sum(1 for n in counts if n == 1)
    if single:
        report.warnings.append(f"{plural(single, 'identity')} with a single image (no identity pairs)")
    _cache_lines(root, records, report)
    return report


# ---------------------------------------------------------------------------------------------
# Landmarks alone (LDcGAN's landmark predictor G_L trains on the cache, not on the images)

class FaceLandmarksDataset(Dataset):
    """The cached 68 points of a face folder with their age groups: ``{"landmarks": 68 x 2 in [-1, 1] of the
    image, "group", "age"}``; images without cached landmarks are dropped. ``flip``: random mirror (the seed)."""

    def __init__(self, root: str | Path, flip: bool = False, reader=None):
        from PIL import Image

        from condsynth.io.landmarks import read_landmark_cache
        self.root = Path(root)
        records, _ = (reader or read_utkface)(self.root, skip_invalid=True)
        cache_file = self.root / "landmarks.npz"
        if not cache_file.is_file():
            raise UserError(f"{cache_file}: no landmark cache (write it with `condsynth data prepare utkface "
                            f"{self.root}`)")
        points, _, _ = read_landmark_cache(cache_file)
        self.records = [r for r in records if r.path.name in points]
        if not self.records:
            raise UserError(f"{cache_file}: has landmarks for none of the images under {self.root}")
        self.flip = flip
        self.points, self.sizes = [], []
        for r in self.records:
            with Image.open(r.path) as im:       # the header only: the image size for the [-1, 1] scale
                self.sizes.append(im.size)
            self.points.append(np.asarray(points[r.path.name], np.float64))

    def __len__(self) -> int:
        return len(self.records)

    def normalised(self, index: int, flip: bool = False) -> np.ndarray:
        from condsynth.io.landmarks import mirror_landmarks
        w, h = self.sizes[index]
        p = mirror_landmarks(self.points[index], w) if flip else self.points[index]
        return p / np.array([w - 1, h - 1]) * 2 - 1

    def __getitem__(self, key):
        index, seed = split_key(key)
        flip = bool(self.flip and rng_for(index, seed, salt=13).random() < 0.5)
        r = self.records[index]
        return {"landmarks": torch.from_numpy(self.normalised(index, flip)).float(), "group": r.group,
                "age": torch.tensor(float(r.age))}
