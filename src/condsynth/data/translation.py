"""Image-translation datasets in the layouts of pix2pix and CycleGAN.

Paired, layout ``ab`` (pix2pix's datasets: facades, maps, cityscapes, edges2shoes)::

    root/train/1.jpg      # one image, A on the left half, B on the right half
    root/val/...  root/test/...

Paired, layout ``folders``::

    root/train/A/x.png    root/train/B/x.png    # matching file names

Unpaired (CycleGAN's horse2zebra etc.)::

    root/trainA/*.jpg     root/trainB/*.jpg     (also testA/testB)

Images come out as float tensors in [-1, 1], ``C x H x W``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from condsynth.config import bounded
from condsynth.data import split_key, transforms as T
from condsynth.errors import UserError
from condsynth.io.images import IMAGE_EXTENSIONS, list_images, read_image, uint8_to_tensor

MAX_SIDE = 16384                        # image sides in pixels: a 16k x 16k RGB float is 3 GB


@dataclass
class PairedDataConfig:
    root: str = ""                      # dataset root holding train/ val/ test/
    layout: Literal["auto", "ab", "folders"] = "auto"
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    preprocess: Literal["resize_and_crop", "resize", "crop", "none"] = "resize_and_crop"
    load_size: int = bounded(286, 1, MAX_SIDE)   # pix2pix §6.2: resize to 286 ...
    crop_size: int = bounded(256, 1, MAX_SIDE)   # ... random crop 256
    flip: bool = True
    interp_a: T.Interp = "bicubic"      # use 'nearest' when A is a label map
    interp_b: T.Interp = "bicubic"
    grayscale_a: bool = False
    grayscale_b: bool = False
    train_split: str = "train"
    eval_split: str = "val"
    max_items: int = bounded(0, 0, None)  # 0 = all; >0 keeps the first N (quick experiments)


def detect_layout(split_dir: Path) -> str:
    if (split_dir / "A").is_dir() and (split_dir / "B").is_dir():
        return "folders"
    return "ab"


class PairedImageDataset(Dataset):
    def __init__(self, cfg: PairedDataConfig, split: str, train: bool):
        if not cfg.root:
            raise UserError("data.root is not set: point it at a dataset folder (e.g. data.root=path/to/facades)")
        root = Path(cfg.root)
        if not root.is_dir():
            raise UserError(f"{root}: dataset folder not found")
        self.cfg = cfg
        self.train = train
        split_dir = root / split
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
            self.items = [(p, None) for p in list_images(split_dir)]
        if cfg.max_items > 0:
            self.items = self.items[: cfg.max_items]

    def __len__(self) -> int:
        return len(self.items)

    def _read_pair(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        a_path, b_path = self.items[index]
        if b_path is None:
            ab = read_image(a_path)
            w = ab.shape[1]
            if w % 2:
                raise UserError(f"{a_path}: width {w} is odd; an AB image holds A and B side by side")
            a, b = ab[:, : w // 2], ab[:, w // 2:]
        else:
            a, b = read_image(a_path), read_image(b_path)
            if a.shape[:2] != b.shape[:2]:
                raise UserError(f"{b_path}: size {b.shape[1]}x{b.shape[0]} differs from its A image "
                                f"{a.shape[1]}x{a.shape[0]}")
        if self.cfg.grayscale_a:
            a = read_gray(a)
        if self.cfg.grayscale_b:
            b = read_gray(b)
        if self.cfg.direction == "BtoA":
            a, b = b, a
        return a, b, a_path.stem

    def __getitem__(self, key) -> dict:
        index, seed = split_key(key)
        a, b, name = self._read_pair(index)
        cfg = self.cfg
        load = cfg.load_size if cfg.preprocess in ("resize_and_crop", "resize") else None
        crop = cfg.crop_size if (self.train and cfg.preprocess in ("resize_and_crop", "crop")) else None
        a = T.resize(a, load, cfg.interp_a)
        b = T.resize(b, load, cfg.interp_b)
        if not self.train and cfg.preprocess == "resize_and_crop":
            # evaluation sees the whole image at crop size, as pix2pix's test mode does
            a = T.resize(a, cfg.crop_size, cfg.interp_a)
            b = T.resize(b, cfg.crop_size, cfg.interp_b)
        rng = np.random.default_rng(seed if seed is not None else None)
        params = T.sample_params(rng, a.shape[:2], crop, cfg.flip and self.train)
        a, b = T.apply(a, params, crop), T.apply(b, params, crop)
        return {"A": uint8_to_tensor(a), "B": uint8_to_tensor(b), "name": name}


def read_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, kept as one channel."""
    y = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(y + 0.5, 0, 255).astype(np.uint8)[..., None]


@dataclass
class UnpairedDataConfig:
    root: str = ""                      # holds trainA/ trainB/ (and testA/ testB/)
    preprocess: Literal["resize_and_crop", "resize", "crop", "none"] = "resize_and_crop"
    load_size: int = bounded(286, 1, MAX_SIDE)
    crop_size: int = bounded(256, 1, MAX_SIDE)
    flip: bool = True
    train_split: str = "train"
    eval_split: str = "test"
    max_items: int = bounded(0, 0, None)


class UnpairedImageDataset(Dataset):
    """Independent A and B folders; item i takes A[i % |A|] and a B chosen by the sample's seed."""

    def __init__(self, cfg: UnpairedDataConfig, split: str, train: bool):
        root = Path(cfg.root)
        if not cfg.root or not root.is_dir():
            raise UserError(f"{root}: dataset folder not found (set data.root)")
        self.cfg, self.train = cfg, train
        self.a_files = list_images(root / f"{split}A")
        self.b_files = list_images(root / f"{split}B")
        if cfg.max_items > 0:
            self.a_files, self.b_files = self.a_files[: cfg.max_items], self.b_files[: cfg.max_items]

    def __len__(self) -> int:
        return max(len(self.a_files), len(self.b_files))

    def _prep(self, arr: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        cfg = self.cfg
        load = cfg.load_size if cfg.preprocess in ("resize_and_crop", "resize") else None
        crop = cfg.crop_size if (self.train and cfg.preprocess in ("resize_and_crop", "crop")) else None
        arr = T.resize(arr, load)
        params = T.sample_params(rng, arr.shape[:2], crop, cfg.flip and self.train)
        return uint8_to_tensor(T.apply(arr, params, crop))

    def __getitem__(self, key) -> dict:
        index, seed = split_key(key)
        rng = np.random.default_rng(seed)
        a_path = self.a_files[index % len(self.a_files)]
        b_path = self.b_files[int(rng.integers(len(self.b_files)))] if self.train else \
            self.b_files[index % len(self.b_files)]
        return {"A": self._prep(read_image(a_path), rng), "B": self._prep(read_image(b_path), rng),
                "name": a_path.stem}


__all__ = ["IMAGE_EXTENSIONS", "PairedDataConfig", "PairedImageDataset", "UnpairedDataConfig",
           "UnpairedImageDataset", "split_key"]
