"""Inference for end users: one :class:`~condsynth.pipelines.base.Pipeline` per task.

``load_pipeline(path)`` picks the right one for whatever a checkpoint or export holds."""

from condsynth.pipelines.base import Pipeline, load_pipeline

__all__ = ["Pipeline", "load_pipeline"]
