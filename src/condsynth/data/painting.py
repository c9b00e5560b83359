"""Target images for neural painting (thesis Sec. 6.4.1), with foreground masks where they exist.

Every dataset here returns items ``{"image": 3xSxS float in [0, 1], "mask": 1xSxS float in {0, 1},
"has_mask": 0-dim float}``. Images are resized to ``S x S`` ignoring the aspect ratio, as the
thesis and LearningToPaint do. ``has_mask = 0`` means the mask is unknown (all ones).

Readers:

* :class:`ImageFolderTargets`: any folder of images (recursively), no masks.
* :class:`CelebAMaskHQ`: ``ROOT/CelebA-HQ-img/<i>.jpg`` and the CelebAMask-HQ part masks
  ``ROOT/CelebAMask-HQ-mask-anno/<i // 2000>/<i:05d>_<part>.png``; the foreground is the union
  of the non-background parts (or ``face_hair_only``). Split: first 28,000 train, last 2,000 test.
* :class:`CUBTargets`: ``ROOT/CUB_200_2011/{images.txt, train_test_split.txt, images/...}`` and
  ``ROOT/segmentations/<same relative path>.png`` binarised at 0.5; the official split.
* :class:`~condsynth.data.synth.paint_targets.SyntheticPaintWorld`: procedural images of objects on
  textured backgrounds with exact foreground masks, generated from ``(seed, index)``.
* :func:`skimage_photos`: the photographs bundled with scikit-image (used for the bundled
  checkpoints); random crops and flips make many targets of them.

The horizontal flip (``flip``, LearningToPaint's augmentation) is drawn from the seed the engine's
sampler hands out with each key, so an image is mirrored in about half of the epochs;
a plain integer key gives the same flip every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from condsynth.config import bounded
from condsynth.data import rng_for, split_key
from condsynth.data.synth.strokes import paint_strokes_cpu
from condsynth.data.transforms import resize
from condsynth.errors import UserError
from condsynth.io.images import list_images, read_image

CELEBA_PARTS = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
                "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
CELEBA_FACE_HAIR = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
                    "mouth", "u_lip", "l_lip", "hair")

# The scikit-image photographs used for the bundled agent (colour, natural scenes). Keep
# matplotlib's and scikit-learn's sample photos out: they are the held-out test photos.
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
                  "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "cat",
                  "logo")


def random_flip(enabled: bool, index: int, seed: Optional[int]) -> bool:
    """Mirror with probability 1/2, drawn from the sampler's ``seed`` (a new draw every epoch)."""
    return enabled and bool(rng_for(index, seed, salt=7).random() < 0.5)


def target_item(img: np.ndarray, mask: Optional[np.ndarray], size: int, flip: bool = False) -> dict:
    """An ``H x W x 3`` uint8 image and an optional ``H x W`` bool mask -> the dataset item."""
    img = resize(img, size, "bilinear")
    if mask is None:
        m = np.ones((size, size), np.float32)
        has = 0.0
    else:
        m = (resize(mask.astype(np.uint8)[..., None] * 255, size, "nearest")[..., 0] > 127)
        m = m.astype(np.float32)
        has = 1.0
    x = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).float() / 255.0
    mt = torch.from_numpy(np.ascontiguousarray(m))[None]
    if flip:
        x, mt = x.flip(-1), mt.flip(-1)
    return {"image": x, "mask": mt, "has_mask": torch.tensor(has)}


class ImageFolderTargets(torch.utils.data.Dataset):
    def __init__(self, root, size: int = 128, flip: bool = False):
        self.files = list_images(root, recursive=True)
        self.size, self.flip = size, flip

    def __len__(self):
        return len(self.files)

    def __getitem__(self, key):
        i, seed = split_key(key)
        return target_item(read_image(self.files[i]), None, self.size, random_flip(self.flip, i, seed))


class CelebAMaskHQ(torch.utils.data.Dataset):
    def __init__(self, root, split: str = "train", size: int = 128, flip: bool = False,
                 face_hair_only: bool = False, n_train: int = 28_000, n_total: int = 30_000):
        self.root = Path(root)
        self.img_dir = self.root / "CelebA-HQ-img"
        self.mask_dir = self.root / "CelebAMask-HQ-mask-anno"
        for d in (self.img_dir, self.mask_dir):
            if not d.is_dir():
                raise UserError(f"{d}: folder not found (expected the CelebAMask-HQ layout)")
        n = min(n_total, len(list(self.img_dir.glob("*.jpg"))))
        self.ids = list(range(0, min(n, n_train))) if split == "train" else list(range(n_train, n))
        if not self.ids:
            raise UserError(f"{self.img_dir}: no images for split '{split}'")
        self.parts = CELEBA_FACE_HAIR if face_hair_only else CELEBA_PARTS
        self.size, self.flip = size, flip

    def __len__(self):
        return len(self.ids)

    def mask(self, i: int) -> np.ndarray:
        folder = self.mask_dir / str(i // 2000)
        m = None
        for part in self.parts:
            p = folder / f"{i:05d}_{part}.png"
            if p.exists():
                a = read_image(p, mode="L")[..., 0] > 127
                m = a if m is None else (m | a)
        if m is None:
            raise UserError(f"{folder}: no part masks for image {i}")
        return m

    def __getitem__(self, key):
        k, seed = split_key(key)
        i = self.ids[k]
        img = read_image(self.img_dir / f"{i}.jpg")
        return target_item(img, self.mask(i), self.size, random_flip(self.flip, k, seed))


class CUBTargets(torch.utils.data.Dataset):
    def __init__(self, root, split: str = "train", size: int = 128, flip: bool = False,
                 seg_root=None):
        self.root = Path(root) / "CUB_200_2011" if (Path(root) / "CUB_200_2011").is_dir() else Path(root)
        self.seg = Path(seg_root) if seg_root else (self.root.parent / "segmentations")
        lst, spl = self.root / "images.txt", self.root / "train_test_split.txt"
        for f in (lst, spl):
            if not f.is_file():
                raise UserError(f"{f}: file not found (expected the CUB_200_2011 layout)")
        if not self.seg.is_dir():
            raise UserError(f"{self.seg}: segmentation folder not found")
        names = dict(line.split() for line in lst.read_text().splitlines() if line.strip())
        is_train = dict(line.split() for line in spl.read_text().splitlines() if line.strip())
        want = "1" if split == "train" else "0"
        self.items = [names[k] for k in sorted(names, key=int) if is_train.get(k) == want]
        self.size, self.flip = size, flip

    def __len__(self):
        return len(self.items)

    def __getitem__(self, key):
        k, seed = split_key(key)
        rel = self.items[k]
        img = read_image(self.root / "images" / rel)
        m = read_image(self.seg / Path(rel).with_suffix(".png"), mode="L")[..., 0] > 127   # 0.5
        return target_item(img, m, self.size, random_flip(self.flip, k, seed))


def skimage_photos(names=SKIMAGE_PHOTOS) -> list[np.ndarray]:
    import skimage.data as skd
    out = []
    for n in names:
        fn = getattr(skd, n, None)
        if fn is None:
            continue
        try:
            a = np.asarray(fn())
        except Exception:  # noqa: BLE001 - a photo that needs a download is skipped
            continue
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, 2)
        if a.shape[2] == 4:
            a = a[..., :3]
        if a.dtype != np.uint8:
            a = (np.clip(a, 0, 1) * 255).astype(np.uint8) if a.dtype.kind == "f" else a.astype(np.uint8)
        out.append(a)
    return out


class PhotoCrops(torch.utils.data.Dataset):
    """Random square crops (30-100% of the short side) and flips of a few photos, from ``(seed, i)``."""

    def __init__(self, photos: list[np.ndarray], length: int = 100_000, seed: int = 0, size: int = 128):
        if not photos:
            raise UserError("no photos to crop")
        self.photos, self.length, self.seed, self.size = photos, length, seed, size

    def __len__(self):
        return self.length

    def __getitem__(self, key):
        i = split_key(key)[0]
        rng = np.random.default_rng([self.seed, i, 99])
        p = self.photos[int(rng.integers(len(self.photos)))]
        h, w = p.shape[:2]
        s = int(min(h, w) * rng.uniform(0.3, 1.0))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        crop = p[y:y + s, x:x + s]
        return target_item(crop, None, self.size, bool(rng.random() < 0.5))


class RandomStrokeTargets(torch.utils.data.Dataset):
    """Targets made of strokes (Paint Transformer's trick: exactly paintable, no dataset): item
    ``i`` draws from ``(seed, i)`` a flat background colour and 5-50 random strokes, thick to thin,
    with random colours, rasterised at ``size``."""

    def __init__(self, length: int = 100_000, seed: int = 0, size: int = 128):
        self.length, self.seed, self.size = length, seed, size

    def __len__(self):
        return self.length

    def __getitem__(self, key):
        i = split_key(key)[0]
        rng = np.random.default_rng([self.seed, i, 313])
        n = int(rng.integers(5, 51))
        st = rng.random((n, 13))
        z = np.sort(rng.uniform(0.0, 0.45, n))[::-1]               # coarse to fine
        st[:, 6] = z * rng.uniform(0.6, 1.0, n)
        st[:, 8] = z * rng.uniform(0.6, 1.0, n)
        st[:, 7] = rng.uniform(0.5, 1.0, n)
        st[:, 9] = rng.uniform(0.5, 1.0, n)
        mid = 0.5 * (st[:, 0:2] + st[:, 4:6])                      # shorter strokes: P2 near P0
        st[:, 4:6] = np.clip(st[:, 0:2] + (st[:, 4:6] - st[:, 0:2]) * rng.uniform(0.1, 0.6, (n, 1)), 0, 1)
        st[:, 2:4] = np.clip(mid + rng.normal(0, 0.1, (n, 2)), 0, 1)
        bg = np.ones((self.size, self.size, 3), np.float32) * rng.random(3).astype(np.float32)
        img = paint_strokes_cpu(st, bg, self.size)
        return target_item((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), None, self.size)


@dataclass
class PaintingDataConfig:
    """Where episode targets come from. ``sources`` mixes datasets item by item (round robin)."""

    sources: list[str] = field(default_factory=lambda: ["synthetic"])  # synthetic|skimage|strokes|folder|celebahq|cub
    root: Optional[str] = None          # folder / CelebAMask-HQ root / CUB root
    seg_root: Optional[str] = None      # CUB segmentations (default ROOT/../segmentations)
    size: int = bounded(128, 8, 4096)
    length: int = bounded(100_000, 1, 1000000000000)
    seed: int = 0
    flip: bool = True                   # LTP: random horizontal flip of targets
    face_hair_only: bool = False        # CelebAMask-HQ foreground = face + hair only


class Mixture(torch.utils.data.Dataset):
    def __init__(self, parts: list, length: int):
        self.parts, self.length = parts, length

    def __len__(self):
        return self.length

    def __getitem__(self, key):
        i, seed = split_key(key)
        part = self.parts[i % len(self.parts)]
        j = (i // len(self.parts)) % len(part)
        return part[j if seed is None else (j, seed)]     # the sampler's seed reaches the part


def build_painting_dataset(cfg: PaintingDataConfig, split: str = "train") -> torch.utils.data.Dataset:
    # imported here: the synthetic world builds its items with target_item above
    from condsynth.data.synth.paint_targets import SyntheticPaintWorld

    seed = cfg.seed if split == "train" else cfg.seed + 1_000_003
    parts = []
    for src in cfg.sources:
        if src == "synthetic":
            parts.append(SyntheticPaintWorld(cfg.length, seed, cfg.size, cfg.flip and split == "train"))
        elif src == "skimage":
            parts.append(PhotoCrops(skimage_photos(), cfg.length, seed, cfg.size))
        elif src == "strokes":
            parts.append(RandomStrokeTargets(cfg.length, seed, cfg.size))
        elif src == "folder":
            if not cfg.root:
                raise UserError("data.root is required for source 'folder'")
            parts.append(ImageFolderTargets(cfg.root, cfg.size, cfg.flip and split == "train"))
        elif src == "celebahq":
            parts.append(CelebAMaskHQ(cfg.root, split, cfg.size, cfg.flip and split == "train",
                                      cfg.face_hair_only))
        elif src == "cub":
            parts.append(CUBTargets(cfg.root, split, cfg.size, cfg.flip and split == "train", cfg.seg_root))
        else:
            raise UserError(f"data.sources: unknown source '{src}' (synthetic, skimage, strokes, folder, celebahq, cub)")
    if not parts:
        raise UserError("data.sources is empty")
    length = cfg.length if any(isinstance(p, (SyntheticPaintWorld, PhotoCrops, RandomStrokeTargets)) for p in parts) \
        else sum(len(p) for p in parts)
    return parts[0] if len(parts) == 1 else Mixture(parts, length)
