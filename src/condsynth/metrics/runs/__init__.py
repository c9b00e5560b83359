"""The file-level metric runs behind ``condsynth eval``: files in, a :class:`~condsynth.metrics.record.MetricRecord` out.

They are plain functions, so notebooks and benchmarks call them as the command line does
(``cli/eval.py`` only parses arguments and prints):

=================  ====================================================  ===========================
module             runs                                                  ``condsynth eval``
=================  ====================================================  ===========================
``inception``      :func:`run_fid` (+ KID), :func:`run_fid_stats`,       ``fid``, ``kid``,
                   :func:`run_inception_score`                           ``fid-stats``, ``is``
``paired``         :func:`run_paired`                                    ``ssim``, ``psnr``, ``msssim``
``faces``          :func:`run_lmd`, :func:`run_verification`             ``lmd``, ``verify``
``age``            :func:`run_age_accuracy`, :func:`run_age_train`       ``age``, ``age-train``
``painting``       :func:`run_painting`                                  ``painting``
``segmentation``   :func:`run_segmentation`                              ``segmentation``
=================  ====================================================  ===========================

Names are imported on first use, so ``from condsynth.metrics.runs import run_paired`` does not
load scipy or dlib.
"""

from __future__ import annotations

import importlib

_RUNS = {"run_fid": "inception", "run_fid_stats": "inception", "run_inception_score": "inception",
         "extract_features": "inception", "run_paired": "paired", "run_lmd": "faces",
         "run_verification": "faces", "run_age_accuracy": "age", "run_age_train": "age",
         "run_painting": "painting", "run_segmentation": "segmentation"}


def __getattr__(name: str):
    if name in _RUNS:
        return getattr(importlib.import_module(f"condsynth.metrics.runs.{_RUNS[name]}"), name)
    raise AttributeError(f"module 'condsynth.metrics.runs' has no attribute {name!r}")


__all__ = list(_RUNS)
