"""Checked inputs for metric runs: folders of images, pairs of folders, videos.

A metric over a folder silently computed on the wrong files is worse than no number, so every
problem here is a :class:`~condsynth.errors.UserError` naming the file: a folder with fewer images
than the metric needs, images of different sizes in one folder, a file with an image suffix that
is not an image, a paired folder missing a counterpart. Videos are read by
:func:`condsynth.io.video.read_frames` (re-exported here as ``read_video_frames``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from condsynth.errors import UserError
from condsynth.io.images import IMAGE_EXTENSIONS, list_images, read_image
from condsynth.io.video import VIDEO_EXTENSIONS, is_video  # noqa: F401 - re-exported
from condsynth.io.video import read_frames as read_video_frames  # noqa: F401 - re-exported


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header, after EXIF rotation, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            orient = img.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        read_image(path)  # raises the precise UserError (empty, not an image, truncated)
        raise UserError(f"{path}: not a readable image") from None
    return (h, w) if orient in (5, 6, 7, 8) else (w, h)


class ImageFolder:
    """The image files of a folder, checked: at least ``min_count`` of them, all of one size."""

    def __init__(self, folder: str | Path, min_count: int = 2, same_size: bool = True, recursive: bool = False):
        self.folder = Path(folder)
        self.files = list_images(self.folder, recursive=recursive)
        if len(self.files) < min_count:
            raise UserError(f"{self.folder}: found {len(self.files)} image(s), this metric needs at least {min_count}")
        sizes = {}
        for f in self.files:
            sizes.setdefault(_image_size(f), f)
            if same_size and len(sizes) > 1:
                (s0, f0), (s1, f1) = list(sizes.items())[:2]
                raise UserError(f"{f1}: image is {s1[0]}x{s1[1]} but {f0.name} is {s0[0]}x{s0[1]}; "
                                f"all images in {self.folder} must have the same size")
        self.size = next(iter(sizes))  # (width, height) of the first image
        others = sorted(p.name for p in self.folder.iterdir()
                        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in IMAGE_EXTENSIONS)
        self.skipped = others

    def __len__(self) -> int:
        return len(self.files)

    def batches(self, batch_size: int = 16) -> Iterator[torch.Tensor]:
        """uint8 ``B x 3 x H x W`` batches in file order."""
        for i in range(0, len(self.files), batch_size):
            arrs = [read_image(f) for f in self.files[i:i + batch_size]]
            yield torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()


def paired_files(dir_a: str | Path, dir_b: str | Path, min_count: int = 1) -> list[tuple[Path, Path]]:
    """Files of two folders paired by name (stem); a file without a counterpart is an error."""
    a = ImageFolder(dir_a, min_count=min_count, same_size=False)
    b = ImageFolder(dir_b, min_count=min_count, same_size=False)
    by_stem_b = {p.stem: p for p in b.files}
    pairs = []
    for p in a.files:
        if p.stem not in by_stem_b:
            raise UserError(f"{p}: no file named {p.stem}.* in {b.folder} to compare with")
        pairs.append((p, by_stem_b.pop(p.stem)))
    if by_stem_b:
        extra = sorted(by_stem_b)[0]
        raise UserError(f"{by_stem_b[extra]}: no file named {extra}.* in {a.folder} to compare with")
    return pairs


def read_pair(pa: Path, pb: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_image(pa), read_image(pb)
    if x.shape != y.shape:
        raise UserError(f"{pa}: image is {x.shape[1]}x{x.shape[0]} but {pb} is {y.shape[1]}x{y.shape[0]}; "
                        "paired images must have the same size")
    return x, y
