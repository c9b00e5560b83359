"""Evaluation metrics: metric objects for training-time evaluation and file-level runs for ``condsynth eval``.

Metric objects follow torchmetrics' ``update`` / ``compute`` / ``reset`` contract (and are
torchmetrics ``Metric`` subclasses, so their states are all-reduced correctly under DDP).
Every ``compute()`` returns ``dict[str, Tensor]`` (``{'fid': ...}``, ``{'kid_mean', 'kid_std'}``,
``{'mean', 'std', 'n', 'n_inf'}``, ...); :func:`~condsynth.metrics.base.to_python` makes floats of it.

* image quality: :class:`SSIM`, :class:`MSSSIM`, :class:`PSNR` (:mod:`.image_quality`)
* distribution: :class:`FID`, :class:`KID` (:mod:`.fid`), :class:`InceptionScore` (:mod:`.inception_score`)
  with Inception backends from :mod:`.features` (``get_backend(...).features_fn()``)
* text-image: :class:`VSSimilarity`, :class:`RPrecision` (:mod:`.text_image`)
* faces: :class:`LMD` (:mod:`.lmd`), :class:`FaceVerification` (:mod:`.verification`),
  :class:`AgeAccuracy` (:mod:`.age`); the face analyzer is :mod:`condsynth.io.faces`
* painting: :class:`PaintingErrors` and functions (:mod:`.painting`)
* segmentation: :class:`SegmentationScores` (pixel/class accuracy, IoU; :mod:`.segmentation`)
* the shared base for per-item means: :class:`~condsynth.metrics.base.MeanStdMetric` (:mod:`.base`)

``make_metric(name, **kwargs)`` builds one by name, for configs that list metrics.
Every file-level run (:mod:`condsynth.metrics.runs`) writes a
:class:`~condsynth.metrics.record.MetricRecord` (values + protocol) as JSON. Modules needing scipy
or dlib are imported only when one of their names is used.
"""

from __future__ import annotations

import importlib

from condsynth.metrics.base import MeanStdMetric, to_python
from condsynth.metrics.image_quality import MSSSIM, PSNR, SSIM, ms_ssim, psnr, ssim
from condsynth.metrics.record import MetricRecord, write_record

_LAZY = {
    "FID": "fid", "KID": "fid", "InceptionScore": "inception_score", "VSSimilarity": "text_image",
    "RPrecision": "text_image", "LMD": "lmd", "FaceVerification": "verification", "AgeAccuracy": "age",
    "get_backend": "features", "PaintingErrors": "painting", "SegmentationScores": "segmentation",
}

# name in configs -> class name
METRICS = {"ssim": "SSIM", "msssim": "MSSSIM", "psnr": "PSNR", "fid": "FID", "kid": "KID",
           "is": "InceptionScore", "vs": "VSSimilarity", "r_precision": "RPrecision", "lmd": "LMD",
           "verification": "FaceVerification", "age_accuracy": "AgeAccuracy", "painting": "PaintingErrors",
           "segmentation": "SegmentationScores"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"condsynth.metrics.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'condsynth.metrics' has no attribute {name!r}")


def make_metric(name: str, **kwargs):
    """A metric object by its config name (``ssim``, ``fid``, ``lmd``, ...).

    Example: ``make_metric('psnr', data_range=2.0)``.
    """
    from condsynth.errors import ConfigError
    if name not in METRICS:
        raise ConfigError(f"unknown metric '{name}'; choose one of {', '.join(METRICS)}")
    cls = globals().get(METRICS[name]) or __getattr__(METRICS[name])
    return cls(**kwargs)


__all__ = ["SSIM", "MSSSIM", "PSNR", "ssim", "ms_ssim", "psnr", "MeanStdMetric", "to_python", "MetricRecord",
           "write_record", "make_metric", "METRICS", *_LAZY]
