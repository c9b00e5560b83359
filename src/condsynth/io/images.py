"""Robust image reading and writing.

``read_image`` accepts what people actually have on disk: JPEGs rotated by their EXIF tag,
grayscale, RGBA and palette PNGs, 16-bit PNG/TIFF, CMYK JPEGs. It always returns an
``H x W x 3`` (or ``H x W x 1``) uint8 array, and a file that is missing, empty, truncated or
not an image raises a :class:`~condsynth.errors.UserError` that names the path.
"""

from __future__ import annotations

import contextlib
import logging
import stat
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from condsynth.errors import UserError
from condsynth.io.atomic import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")

# PIL refuses images above ~179 Mpx as a decompression-bomb guard; we keep a guard but say so.
MAX_PIXELS = 200_000_000


def _to_8bit(img: Image.Image) -> Image.Image:
    """Bring 16-bit and float modes to 8-bit luminance without clipping their range."""
    arr = np.asarray(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = arr.astype(np.float64) / 65535.0
    elif img.mode == "I":
        arr = arr.astype(np.float64) / (65535.0 if arr.max(initial=0) > 255 else 255.0)
    elif img.mode == "F":
        hi = float(arr.max(initial=0))
        arr = arr.astype(np.float64) / (1.0 if hi <= 1.0 else 255.0 if hi <= 255.0 else 65535.0)
    return Image.fromarray(np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")


def _flatten_alpha(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    rgba = img.convert("RGBA")
    base = Image.new("RGBA", rgba.size, background + (255,))
    return Image.alpha_composite(base, rgba).convert("RGB")


def _check_file(path: Path) -> None:
    """Refuse what is not a non-empty regular file before Pillow reads (a FIFO would block)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: is a folder, expected an image file")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise UserError(f"{path}: file is empty")


@contextlib.contextmanager
def _decoding(path: Path):
    """Pillow's failures on a hostile file, as one UserError naming it; its warnings and log
    lines (corrupt EXIF, odd TIFF tags) kept off the terminal."""
    pil_log = logging.getLogger("PIL")
    level = pil_log.level
    pil_log.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except UserError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        kind = "not a readable image" if isinstance(exc, UnidentifiedImageError) else \
            f"image too large to decode safely ({str(exc).rstrip('.')})"
        raise UserError(f"{path}: {kind}") from None
    except MemoryError:
        raise UserError(f"{path}: image too large to decode in the memory available") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise UserError(f"{path}: corrupt or truncated image ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - a plugin's own failure on a malformed file (DDS, TIFF...)
        raise UserError(f"{path}: cannot decode this image ({type(exc).__name__}: {exc})") from None
    finally:
        pil_log.setLevel(level)


def _check_size(path: Path, img: Image.Image) -> None:
    if img.width < 1 or img.height < 1:
        raise UserError(f"{path}: image has no pixels ({img.width}x{img.height})")
    if img.width * img.height > MAX_PIXELS:
        raise UserError(f"{path}: image is {img.width}x{img.height}, more than "
                        f"{MAX_PIXELS // 1_000_000} Mpx; downscale it first")


def probe_image(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` from the header alone (cheap): the checks ``read_image`` makes before
    decoding, so a batch of inputs can be vetted before the first is decoded."""
    path = Path(path)
    _check_file(path)
    with _decoding(path), Image.open(path) as img:
        _check_size(path, img)
        return img.size


def read_image(path: str | Path, mode: str = "RGB", background=(255, 255, 255)) -> np.ndarray:
    """Read ``path`` as uint8 ``H x W x C`` (C = 3 for ``mode='RGB'``, 1 for ``mode='L'``).

    Transparent pixels are composited over ``background`` (white by default).
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    path = Path(path)
    _check_file(path)
    with _decoding(path):
        with Image.open(path) as img:
            _check_size(path, img)
            img = ImageOps.exif_transpose(img)
            img.load()
        return _to_array(img, mode, background)


def _to_array(img: Image.Image, mode: str, background) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "RGB" and "transparency" in img.info):
        img = _flatten_alpha(img, tuple(background))
    if mode == "RGB":
        img = img.convert("RGB")  # also CMYK, YCbCr, 1-bit, L
        return np.asarray(img, dtype=np.uint8).copy()
    if mode == "L":
        return np.asarray(img.convert("L"), dtype=np.uint8)[..., None].copy()
    raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Sorted image files in ``folder``; a missing or image-less folder is a UserError."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern)
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise UserError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS[:4])}, ...) found")
    return files


def uint8_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """``H x W x C`` uint8 -> ``C x H x W`` float in [-1, 1]."""
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # arrays viewing PIL buffers are read-only; torch wants to own memory
        arr = arr.copy()
    return torch.from_numpy(arr).permute(2, 0, 1).float().div(127.5).sub(1.0)


def tensor_to_uint8(t: torch.Tensor, value_range=(-1.0, 1.0)) -> np.ndarray:
    """``C x H x W`` (or ``H x W``) float -> ``H x W x C`` uint8, clamping to ``value_range``."""
    t = t.detach().float().cpu()
    if t.dim() == 2:
        t = t[None]
    lo, hi = value_range
    t = ((t.clamp(lo, hi) - lo) / (hi - lo) * 255.0).round().to(torch.uint8)
    return t.permute(1, 2, 0).numpy()


def save_image(path: str | Path, image, value_range=(-1.0, 1.0)) -> Path:
    """Write a uint8 array or a float tensor atomically; the format follows the suffix."""
    path = Path(path)
    arr = tensor_to_uint8(image, value_range) if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower())
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=fmt or Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path
