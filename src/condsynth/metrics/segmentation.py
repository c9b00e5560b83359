"""Segmentation scores from a confusion matrix: pixel accuracy, mean class accuracy, per-class IoU, mIoU.

This is how the label->photo papers score a generator (pix2pix Table 2, CycleGAN Table 2,
pix2pixHD Table 1): a fixed, pretrained segmenter labels the generated photos and these scores
compare its labels with the input label maps (the "FCN-score"). The state is one
``num_classes x num_classes`` int64 confusion matrix (rows: truth, columns: prediction), summed
over batches and, under DDP, over processes, so any split of the pixels gives the same numbers.

With ``C[t, p]`` the pixel counts, ``T_k = sum_p C[k, p]`` (truth pixels of class k) and
``P_k = sum_t C[t, k]`` (predicted pixels of class k):

* pixel accuracy = ``trace(C) / sum(C)``;
* class accuracy of k = ``C[k, k] / T_k``; the mean is over classes *present in the truth*
  (``T_k > 0``): a class no pixel truly has has no recall to measure;
* IoU of k = ``C[k, k] / (T_k + P_k - C[k, k])``; the mean (mIoU) is over classes present in the
  truth *or* the prediction: a class absent from both is excluded (its IoU is 0/0, reported NaN),
  while a class only predicted counts with IoU 0.

Pixels whose truth is ``ignore_index`` (255 by default, Cityscapes' "void") are not counted.

Example (two 2x2 maps, 3 classes):

>>> import torch
>>> m = SegmentationScores(num_classes=3)
>>> m.update(torch.tensor([[[0, 0], [1, 2]]]), torch.tensor([[[0, 1], [1, 255]]]))
>>> {k: round(float(v), 4) for k, v in m.compute().items() if k in ("pixel_accuracy", "miou")}
{'pixel_accuracy': 0.6667, 'miou': 0.5}
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchmetrics import Metric

from condsynth.metrics.base import count, scalar


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int | None = 255) -> torch.Tensor:
    """``num_classes x num_classes`` int64 counts (rows: truth, columns: prediction) of two id maps
    of the same shape; truth pixels equal to ``ignore_index`` are left out. A truth or predicted
    id outside ``[0, num_classes)`` (other than ``ignore_index`` in the truth) is a ValueError."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    for what, ids in (("target", target), ("prediction", pred)):
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_classes):
            bad = int(ids.max()) if int(ids.max()) >= num_classes else int(ids.min())
            raise ValueError(f"{what} holds class id {bad}, outside 0..{num_classes - 1}"
                             + (f" (and not ignore_index {ignore_index})" if what == "target" else ""))
    flat = target * num_classes + pred
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores_from_confusion(conf: torch.Tensor) -> dict[str, torch.Tensor]:
    """The scores of the module docstring from a confusion matrix, plus the per-class vectors
    ``class_accuracy`` and ``iou`` (NaN where a class is excluded)."""
    c = conf.double()
    diag, truth, predicted = c.diagonal(), c.sum(1), c.sum(0)
    union = truth + predicted - diag
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    acc = torch.where(truth > 0, diag / truth.clamp_min(1), nan)
    iou = torch.where(union > 0, diag / union.clamp_min(1), nan)
    total = c.sum()
    present = truth > 0

    def nanmean(v):
        ok = ~torch.isnan(v)
        return v[ok].mean() if ok.any() else nan

    return {"pixel_accuracy": diag.sum() / total if total > 0 else nan, "mean_class_accuracy": nanmean(acc),
            "miou": nanmean(iou), "class_accuracy": acc, "iou": iou,
            "classes_in_truth": present.sum(), "classes_scored": (union > 0).sum(), "pixels": total.long()}


class SegmentationScores(Metric):
    """Pixel accuracy, mean class accuracy, per-class IoU and mIoU, accumulated over batches.

    ``update(preds, target)``: ``preds`` ``N x K x H x W`` scores (logits, argmax taken over K)
    or ``N x H x W`` class ids; ``target`` ``N x H x W`` class ids (``ignore_index`` for void).
    ``compute()`` gives 0-dim tensors: ``pixel_accuracy``, ``mean_class_accuracy``, ``miou``,
    ``classes_in_truth``, ``classes_scored``, ``pixels``, and ``iou_<name>`` for every class (NaN for a
    class absent from both truth and prediction); ``class_names`` default to the ids.
    :meth:`per_class` returns the two per-class vectors.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, ignore_index: int | None = 255, class_names: Sequence[str] | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.class_names = tuple(class_names) if class_names is not None else tuple(str(k) for k in range(num_classes))
        self.add_state("confmat", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.dim() == target.dim() + 1:
            if preds.shape[1] != self.num_classes:
                raise ValueError(f"scores have {preds.shape[1]} channels for {self.num_classes} classes")
            preds = preds.argmax(1)
        self.confmat += confusion_matrix(preds.to(self.confmat.device), target.to(self.confmat.device),
                                         self.num_classes, self.ignore_index)

    def per_class(self) -> dict[str, list[float]]:
        s = scores_from_confusion(self.confmat)
        return {"class_accuracy": s["class_accuracy"].tolist(), "iou": s["iou"].tolist()}

    def compute(self) -> dict[str, torch.Tensor]:
        s = scores_from_confusion(self.confmat)
        out = {k: scalar(s[k]) for k in ("pixel_accuracy", "mean_class_accuracy", "miou")}
        out.update({k: count(s[k]) for k in ("classes_in_truth", "classes_scored", "pixels")})
        out.update({f"iou_{name}": scalar(v) for name, v in zip(self.class_names, s["iou"])})
        return out


__all__ = ["SegmentationScores", "confusion_matrix", "scores_from_confusion"]
