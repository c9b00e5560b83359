"""SegmentationScores against a confusion matrix worked out by hand, and its edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from condsynth.metrics.segmentation import SegmentationScores, confusion_matrix


def _hand_example():
    # 3 classes, one 3x4 image; the last row's first pixel is void (255)
    target = torch.tensor([[[0, 0, 0, 1],
                            [0, 1, 1, 1],
                            [255, 2, 2, 0]]])
    pred = torch.tensor([[[0, 0, 1, 1],
                          [0, 1, 1, 2],
                          [1, 2, 0, 0]]])
    return pred, target


def test_hand_computed_example():
    pred, target = _hand_example()
    # counted pixels (11): truth 0 -> pred 0,0,1,0,0 ; truth 1 -> 1,1,1,2 ; truth 2 -> 2,0
    want = torch.tensor([[4, 1, 0],
                         [0, 3, 1],
                         [1, 0, 1]])
    assert torch.equal(confusion_matrix(pred, target, 3), want)
    m = SegmentationScores(3, class_names=["a", "b", "c"])
    m.update(pred[:, :2], target[:, :2])         # two batches give the same as one
    m.update(pred[:, 2:], target[:, 2:])
    out = {k: float(v) for k, v in m.compute().items()}
    assert out["pixel_accuracy"] == pytest.approx(8 / 11)
    assert out["mean_class_accuracy"] == pytest.approx((4 / 5 + 3 / 4 + 1 / 2) / 3)
    # IoU: a = 4 / (5 + 5 - 4), b = 3 / (4 + 4 - 3), c = 1 / (2 + 2 - 1)
    assert out["iou_a"] == pytest.approx(4 / 6)
    assert out["iou_b"] == pytest.approx(3 / 5)
    assert out["iou_c"] == pytest.approx(1 / 3)
    assert out["miou"] == pytest.approx((4 / 6 + 3 / 5 + 1 / 3) / 3)
    assert out["pixels"] == 11


def test_logits_are_argmaxed():
    pred, target = _hand_example()
    logits = torch.nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    a, b = SegmentationScores(3), SegmentationScores(3)
    a.update(logits, target)
    b.update(pred, target)
    assert torch.equal(a.confmat, b.confmat)


def test_absent_classes_are_excluded_and_predicted_only_classes_count_zero():
    target = torch.tensor([[[0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 0, 1, 2]]])           # class 2: predicted, never true; class 3: nowhere
    m = SegmentationScores(4)
    m.update(pred, target)
    out = {k: float(v) for k, v in m.compute().items()}
    assert out["iou_2"] == 0.0 and math.isnan(out["iou_3"])
    assert out["miou"] == pytest.approx((1 + 0.5 + 0) / 3)            # class 3 left out
    assert out["mean_class_accuracy"] == pytest.approx((1 + 0.5) / 2)  # only classes present in the truth
    assert out["classes_in_truth"] == 2 and out["classes_scored"] == 3


def test_out_of_range_ids_are_refused():
    m = SegmentationScores(3)
    with pytest.raises(ValueError, match="target holds class id 7"):
        m.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 7))
    with pytest.raises(ValueError, match="differs from target shape"):
        m.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 3, dtype=torch.long))
