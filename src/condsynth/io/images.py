"""Robust image reading and writing.

``read_image`` accepts what people actually have on disk: JPEGs rotated by their EXIF tag,
grayscale, RGBA and palette PNGs, 16-bit PNG/TIFF, CMYK JPEGs. It always returns an
``H x W x 3`` (or ``H x W x 1``) uint8 array, and a file that is missing, empty, truncated or
not an image raises a :class:`~condsynth.errors.UserError` that names the path.

Label and instance maps are read by ``read_label_map`` / ``read_instance_map`` instead, which keep
palette indices and 16/32-bit ids exactly, and written by ``save_label_map``. ``to_rgb_uint8`` turns
any image input of a pipeline (path, array, tensor) into ``H x W x 3`` uint8.
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


# ------------------------------------------------------------------------ label and instance maps
# ``read_image`` makes every file look like a photo: palette PNGs become RGB and 16-bit images are
# scaled to 8 bits. Label maps (one class id per pixel) and instance maps (Cityscapes'
# ``*_instanceIds.png``: 16-bit, id = class * 1000 + k for "things", the class id for "stuff") must
# keep their values, so they are read here without any conversion.

_ID_MODES = ("1", "L", "P", "LA", "PA", "I;16", "I;16B", "I;16L", "I;16N", "I")


def _open_unconverted(path: Path) -> Image.Image:
    """Decode ``path`` keeping its mode. Any failure is reported by ``read_image``, so that
    missing, empty, truncated and oversized files get the same one-line messages everywhere."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ValueError("too large")
                img = ImageOps.exif_transpose(img)
                img.load()
                return img
    except Exception:
        read_image(path)      # raises the UserError that names the problem
        raise


def _read_ids(path: str | Path, what: str) -> np.ndarray:
    """The stored integer ids of ``path``; ``what`` ("label map", "instance map") names it in errors."""
    path = Path(path)
    img = _open_unconverted(path)
    if img.mode not in _ID_MODES:
        kind = {"F": "a floating-point image"}.get(img.mode, "a colour image" if len(img.getbands()) >= 3
                                                    else "an image")
        if what == "label map" and img.mode in ("RGB", "RGBA"):
            rgb = np.asarray(img)[..., :3]
            if (rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any():
                # A colour-coded segmentation (Cityscapes' *_color.png, pix2pix's A halves): its
                # colours stand for classes through a palette this reader does not know.
                raise UserError(f"{path}: a colour image ({img.mode}) whose channels differ, so it looks like a "
                                f"colour-coded label map; convert it to class ids first with `condsynth data "
                                f"labels-from-colors IN_DIR OUT_DIR --palette scenes|cityscapes|FILE.json`")
        raise UserError(f"{path}: {kind} ({img.mode}), not {'an' if what[0] in 'aeiou' else 'a'} {what}; {what}s hold one integer id per "
                        f"pixel (a grey or palette PNG): convert colour-coded maps to ids first")
    if img.mode in ("LA", "PA"):
        img = img.getchannel(0)            # the id band; alpha is not part of the map
    arr = np.asarray(img)
    return arr.astype(np.uint8) if arr.dtype == np.bool_ else arr


def read_label_map(path: str | Path) -> np.ndarray:
    """Read a class-id map as an ``H x W`` integer array, values exactly as stored.

    Palette ("P") PNGs give their palette *indices* (not the colours they display); 8-bit grey gives
    its values; 16- and 32-bit grey give their values unscaled. The result is uint8 for 8-bit and
    palette files and int32 for wider ones. A colour (RGB) image is refused with a UserError naming
    the file: colour-coded labels need a palette to be decoded into ids.
    """
    arr = _read_ids(path, "label map")
    return arr if arr.dtype == np.uint8 else arr.astype(np.int32)


def read_instance_map(path: str | Path) -> np.ndarray:
    """Read an instance-id map (16-bit PNG, 32-bit TIFF, or 8-bit) as an ``H x W`` int32 array.

    Ids are kept exactly, e.g. Cityscapes' ``26001`` (class 26, instance 1); the class of an
    instance is ``id // 1000`` when ``id >= 1000``, else ``id`` itself (a "stuff" region).
    """
    return _read_ids(path, "instance map").astype(np.int32)


def default_palette(n: int = 256) -> np.ndarray:
    """``n x 3`` uint8 colours for label ids: PASCAL VOC's bit-interleaved map (0 is black)."""
    ids = np.arange(n)
    palette = np.zeros((n, 3), np.int64)
    for shift in range(8):
        for channel in range(3):
            palette[:, channel] |= ((ids >> (3 * shift + channel)) & 1) << (7 - shift)
    return palette.astype(np.uint8)


def label_map_image(array, palette=None, bits: int | None = None) -> Image.Image:
    """An ``H x W`` map of non-negative integer ids as a PIL image that stores every id exactly.

    ``bits`` None picks the smallest that fits: 8 (palette image: each pixel holds its id, and
    ``palette``, ``N x 3`` uint8 colours with N <= 256, default :func:`default_palette`, only decides
    how viewers display it), 16 (grey) or 32 (grey, TIFF only). Instance maps ask for ``bits=16``.
    """
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.dtype.kind not in "biu":
        raise ValueError(f"a label map is an H x W integer array, got {arr.dtype} of shape {arr.shape}")
    lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    if lo < 0:
        raise UserError(f"label ids must be >= 0, got {lo}")
    if bits is None:
        bits = 8 if hi < 256 else 16 if hi < 65536 else 32
    if bits not in (8, 16, 32) or hi >= 2 ** min(bits, 31):
        raise UserError(f"label ids up to {hi} do not fit {bits} bits")
    if palette is not None and bits != 8:
        raise ValueError(f"a palette needs 8-bit ids (below 256); this map's ids reach {hi}")
    if bits == 8:
        img = Image.fromarray(arr.astype(np.uint8))
        colours = default_palette() if palette is None else np.asarray(palette, np.uint8).reshape(-1, 3)
        if len(colours) > 256:
            raise ValueError(f"a palette has at most 256 colours, got {len(colours)}")
        img.putpalette(colours.ravel().tolist())       # L -> P, pixel values (the ids) unchanged
        return img
    return Image.fromarray(arr.astype(np.uint16 if bits == 16 else np.int32))


def save_label_map(path: str | Path, array, palette=None, bits: int | None = None) -> Path:
    """Write an ``H x W`` map of non-negative integer ids atomically, without losing any id.

    Ids below 256 are stored as an 8-bit palette PNG, so :func:`read_label_map` gives back the ids and
    :func:`read_image` (and any viewer) the ``palette`` colours; larger ids (instance maps) as 16-bit
    grey PNGs, and ids of 65536 and more as 32-bit TIFF (``.tif``), since PNG has no 32-bit grey.
    See :func:`label_map_image` for ``palette`` and ``bits``.
    """
    path = Path(path)
    fmt = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: label maps are saved as .png (or .tif), a lossless format that keeps ids")
    try:
        img = label_map_image(array, palette, bits)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    if img.mode == "I" and fmt != "TIFF":
        raise UserError(f"{path}: ids of 65536 and more need 32 bits; save as .tif (PNG stores at most 16)")
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt)
    return path


# ------------------------------------------------------------------------------ input normaliser
def to_rgb_uint8(x) -> np.ndarray:
    """Any image input a pipeline accepts, as ``H x W x 3`` uint8.

    - a path: read with :func:`read_image` (EXIF rotation, alpha over white, 16-bit scaled);
    - a PIL image;
    - a NumPy array ``H x W`` or ``H x W x 1/3/4``: uint8 as is, float in [0, 1] scaled by 255,
      other integers clipped to 0..255, bool as 0/255; alpha is dropped, grey repeated;
    - a tensor ``C x H x W`` or ``1 x C x H x W`` (C = 1, 3 or 4) in [0, 1], or uint8 in 0..255.
      (Model outputs in [-1, 1] go through :func:`tensor_to_uint8`.)
    """
    name = "image"
    if isinstance(x, (str, Path)):
        name = str(x)
        arr = read_image(x)
    elif isinstance(x, Image.Image):
        arr = np.asarray(x.convert("RGB"))
    elif isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        t = t.float() if t.is_floating_point() else t
        if t.dim() not in (3, 4) or (t.dim() == 4 and t.shape[0] != 1) or t.shape[-3] not in (1, 3, 4):
            raise UserError(f"image tensor must be C x H x W or 1 x C x H x W with C = 1, 3 or 4, "
                            f"got {tuple(x.shape)}")
        arr = _channels_to_uint8(t.reshape(t.shape[-3:]).permute(1, 2, 0).numpy(), name)
    else:
        arr = np.asarray(x)
        arr = arr[..., None] if arr.ndim == 2 else arr
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
            raise UserError(f"image array must be H x W or H x W x 1/3/4, got shape {arr.shape}")
        arr = _channels_to_uint8(arr, name)
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise UserError(f"{name}: image has no pixels")
    return np.ascontiguousarray(arr)


def _channels_to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """``H x W x C`` of any dtype -> ``H x W x 3`` uint8 (the array branch of to_rgb_uint8)."""
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind == "f":
        arr = (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype != np.uint8:
        if arr.dtype.kind not in "iu":
            raise UserError(f"{name}: image values must be numbers, got {arr.dtype}")
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr[..., :3] if arr.shape[2] >= 3 else np.repeat(arr, 3, axis=2)


def luma(rgb) -> np.ndarray:
    """ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of ``H x W x 3`` (or 4), as ``H x W x 1``.

    uint8 in gives uint8 out (rounded to nearest); any other dtype gives float32 in the input's range.
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"luma needs an H x W x 3 array, got shape {arr.shape}")
    y = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if arr.dtype != np.uint8:
        return y[..., None]
    return np.clip(y + 0.5, 0, 255).astype(np.uint8)[..., None]
