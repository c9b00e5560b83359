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

import numpy as np
import torch
from torch.utils.data import Dataset

from condsynth.data import split_key
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


def read_utkface(root: str | Path, skip_invalid: bool = False) -> tuple[list[UTKFaceRecord], list[Path]]:
    """All records under ``root`` (searched recursively), sorted by path; and the skipped files."""
    records, skipped = [], []
    for p in list_images(root, recursive=True):
        try:
            records.append(parse_utkface_name(p))
        except UserError:
            if not skip_invalid:
                raise
            skipped.append(p)
    if not records:
        raise UserError(f"{root}: no files in the UTKFace layout ([age]_[gender]_[race]_[date&time].jpg)")
    return records, skipped


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


class UTKFaceDataset(Dataset):
    """UTKFace images as ``3 x size x size`` tensors in [-1, 1] with age, gender, race and age group.

    ``split_file`` (a ``train.txt``/``test.txt`` from :func:`write_split_lists`) selects files;
    without it every valid file under ``root`` is used.
    """

    def __init__(self, root: str | Path, split_file: str | Path | None = None, size: int = 128,
                 skip_invalid: bool = True):
        self.root = Path(root)
        records, self.skipped = read_utkface(self.root, skip_invalid=skip_invalid)
        if split_file is not None:
            split_file = Path(split_file)
            if not split_file.is_file():
                raise UserError(f"{split_file}: split list not found")
            wanted = [ln.strip() for ln in split_file.read_text().splitlines() if ln.strip()]
            by_name = {r.path.name: r for r in records}
            missing = [w for w in wanted if w not in by_name]
            if missing:
                raise UserError(f"{split_file}: lists {missing[0]}, which is not under {self.root}")
            records = [by_name[w] for w in wanted]
        self.records = records
        self.size = size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key):
        index, _ = split_key(key)          # no random augmentation: the seed is not needed
        r = self.records[index]
        img = uint8_to_tensor(read_image(r.path))
        if img.shape[-2:] != (self.size, self.size):
            # Bilinear resize of the 200x200 aligned crops to 128x128 (spec §4.8 [R]).
            img = torch.nn.functional.interpolate(img[None], size=(self.size, self.size), mode="bilinear",
                                                  align_corners=False, antialias=True)[0]
        return {"image": img, "age": torch.tensor(float(r.age)), "gender": r.gender, "race": r.race,
                "group": r.group, "path": str(r.path)}


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
    return report
