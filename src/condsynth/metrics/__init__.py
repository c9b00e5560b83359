"""Evaluation metrics: metric objects for training-time evaluation and file-level runs for ``condsynth eval``.

Metric objects follow torchmetrics' ``update`` / ``compute`` / ``reset`` contract (and are
torchmetrics ``Metric`` subclasses, so their states are all-reduced correctly under DDP):

* image quality: :class:`SSIM`, :class:`MSSSIM`, :class:`PSNR` (:mod:`.image_quality`)
* distribution: :class:`FID`, :class:`KID` (:mod:`.fid`), :class:`InceptionScore` (:mod:`.inception_score`)
  with Inception backends from :mod:`.features`
* text-image: VS similarity and R-precision (:mod:`.text_image`)
* faces: LMD (:mod:`.lmd`), verification (:mod:`.verification`), age accuracy (:mod:`.age`)

Every run writes a :class:`~condsynth.metrics.record.MetricRecord` (values + protocol) as JSON.
Heavy modules (dlib, scipy) are imported only when used.
"""

from condsynth.metrics.image_quality import MSSSIM, PSNR, SSIM, ms_ssim, psnr, ssim
from condsynth.metrics.record import MetricRecord, write_record

__all__ = ["SSIM", "MSSSIM", "PSNR", "ssim", "ms_ssim", "psnr", "MetricRecord", "write_record"]
