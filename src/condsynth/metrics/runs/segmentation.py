"""File-level segmentation scores: ``condsynth eval segmentation`` (the "FCN-score" of pix2pix and CycleGAN).

A segmenter trained on real photos labels each image of a folder (typically a generator's outputs
for some label maps), and :class:`~condsynth.metrics.segmentation.SegmentationScores` compares
its labels with the label maps the images were generated from. The segmenter arrives as a
``predict`` callable (``H x W x 3`` uint8 -> ``H x W`` class ids), so this module loads no
checkpoint: ``cli/eval.py`` loads it with the segmentation pipeline and records where it came from.

Images and label maps are matched by file stem. Label maps are class ids (palette or grey PNGs,
read exactly) or, with ``label_format='colors'``, palette colours matched exactly to a named
palette (a colour outside it is an error naming the file: a resized or JPEG-compressed colour
map cannot be scored honestly). An image whose size differs from its label map is an error unless
``resize``: the *image* is then resized to the label map's size (bilinear); labels are never
resampled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from condsynth.errors import UserError
from condsynth.io.images import read_image, read_label_map
from condsynth.metrics.inputs import ImageFolder
from condsynth.metrics.record import MetricRecord
from condsynth.metrics.segmentation import SegmentationScores


def palette_by_name(name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """(``K x 3`` uint8 colours, class names) of a named palette: ``scenes`` (the scenes world)."""
    if name == "scenes":
        from condsynth.data.synth.scenes import CLASSES, PALETTE
        return PALETTE, CLASSES
    raise UserError(f"unknown palette '{name}' (known: scenes)")


def colors_to_ids(rgb: np.ndarray, palette: np.ndarray, path: Path, palette_name: str) -> np.ndarray:
    """``H x W x 3`` palette colours -> ``H x W`` ids by exact match; any other colour is a UserError."""
    code = lambda a: (a[..., 0].astype(np.int64) << 16) | (a[..., 1].astype(np.int64) << 8) | a[..., 2]  # noqa: E731
    keys = code(palette)
    order = np.argsort(keys)
    flat = code(rgb)
    pos = np.clip(np.searchsorted(keys[order], flat), 0, len(keys) - 1)
    ids = order[pos]
    bad = keys[ids] != flat
    if bad.any():
        y, x = map(int, np.argwhere(bad)[0])
        raise UserError(f"{path}: colour {tuple(int(v) for v in rgb[y, x])} at x={x}, y={y} is not in the "
                        f"{palette_name} palette ({int(bad.sum())} such pixels); colour label maps must hold "
                        f"exact palette colours (not resized or JPEG-compressed)")
    return ids.astype(np.int64)


def read_labels(path: Path, label_format: str, palette: np.ndarray | None, palette_name: str) -> np.ndarray:
    if label_format == "colors":
        return colors_to_ids(read_image(path), palette, path, palette_name)
    try:
        return read_label_map(path).astype(np.int64)
    except UserError as exc:
        raise UserError(f"{exc} (for colour-coded label maps pass --label-format colors --palette scenes)") from None


def _resize_image(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    y = torch.nn.functional.interpolate(x, size=hw, mode="bilinear", align_corners=False)
    return y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def match_labels(images: ImageFolder, labels_dir: Path) -> list[tuple[Path, Path]]:
    labels = ImageFolder(labels_dir, min_count=1, same_size=False)
    by_stem = {p.stem: p for p in labels.files}
    missing = [p for p in images.files if p.stem not in by_stem]
    if missing:
        raise UserError(f"{missing[0]}: no label map named {missing[0].stem}.* in {labels_dir} "
                        f"({len(missing)} of {len(images)} images have none)")
    return [(p, by_stem[p.stem]) for p in images.files]


def run_segmentation(predict: Callable[[np.ndarray], np.ndarray], images_dir, labels_dir, *, num_classes: int,
                     class_names: Sequence[str] | None = None, label_format: str = "ids", palette: str | None = None,
                     resize: bool = False, ignore_index: int = 255, split: str | None = None,
                     segmenter: dict | None = None) -> MetricRecord:
    """Score ``predict``'s labels of every image in ``images_dir`` against the same-stem label map
    in ``labels_dir``; returns the record (values + protocol). ``segmenter``: what the record says
    about the network (path, sha256, its own held-out scores)."""
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    if label_format not in ("ids", "colors"):
        raise UserError(f"--label-format must be ids or colors, got '{label_format}'")
    if label_format == "colors" and not palette:
        raise UserError("--label-format colors needs --palette (e.g. --palette scenes)")
    colours = palette_by_name(palette)[0] if palette else None
    images = ImageFolder(images_dir, min_count=1, same_size=False)
    pairs = match_labels(images, labels_dir)
    metric = SegmentationScores(num_classes, ignore_index, class_names)
    sizes, resized, per_item = set(), 0, {}
    for img_path, lab_path in pairs:
        lab = read_labels(lab_path, label_format, colours, palette or "")
        bad = (lab >= num_classes) & (lab != ignore_index)
        if bad.any():
            raise UserError(f"{lab_path}: holds class id {int(lab[bad].max())}, but the segmenter knows "
                            f"{num_classes} classes (0..{num_classes - 1}; {ignore_index} = void)")
        img = read_image(img_path)
        if img.shape[:2] != lab.shape:
            if not resize:
                raise UserError(f"{img_path}: image is {img.shape[1]}x{img.shape[0]} but its label map {lab_path.name} "
                                f"is {lab.shape[1]}x{lab.shape[0]} (pass --resize to resize images to their labels)")
            img = _resize_image(img, lab.shape)
            resized += 1
        pred = np.asarray(predict(img))
        if pred.shape != lab.shape:
            raise UserError(f"{img_path}: the segmenter returned {pred.shape[1]}x{pred.shape[0]} labels "
                            f"for a {lab.shape[1]}x{lab.shape[0]} map")
        p, t = torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(lab)
        metric.update(p[None], t[None])
        keep = t != ignore_index
        per_item[img_path.name] = float((p[keep] == t[keep]).double().mean()) if keep.any() else float("nan")
        sizes.add((lab.shape[0], lab.shape[1]))
    out = metric.compute()
    per_class = metric.per_class()
    names = metric.class_names
    values = {k: out[k] for k in ("miou", "mean_class_accuracy", "pixel_accuracy")}
    notes = ["mIoU averages the classes present in the labels or the predictions (a class absent from both "
             "is left out); mean class accuracy averages the classes present in the labels; pixels labelled "
             f"{ignore_index} are not counted"]
    if resized:
        notes.append(f"{resized} image(s) resized (bilinear) to their label map's size")
    return MetricRecord(
        metric="segmentation", values=values, num_samples=len(pairs), backend="segmenter",
        weights_file=(segmenter or {}).get("weights_file"), weights_sha256=(segmenter or {}).get("sha256"),
        resolution=[list(s) for s in sorted(sizes)], resize="image to label size, bilinear" if resize else None,
        split=split, inputs={"images": str(images_dir), "labels": str(labels_dir)}, notes=notes,
        extra={"segmenter": segmenter or {}, "label_format": label_format, "palette": palette,
               "ignore_index": ignore_index, "num_classes": num_classes,
               "pixels": int(out["pixels"]), "classes_in_truth": int(out["classes_in_truth"]),
               "classes_scored": int(out["classes_scored"]),
               "iou": dict(zip(names, per_class["iou"])), "class_accuracy": dict(zip(names, per_class["class_accuracy"])),
               "confusion_matrix": metric.confmat.tolist(), "per_item_pixel_accuracy": per_item})


__all__ = ["colors_to_ids", "palette_by_name", "read_labels", "run_segmentation"]
