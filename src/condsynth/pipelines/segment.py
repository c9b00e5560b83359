"""Semantic segmentation for end users: photo -> class-id map, at any image size.

    pipe = SegmentationPipeline.from_pretrained("segmenter-scenes")   # export, run, checkpoint or bundled name
    out = pipe(image)                 # path, H x W x 3 uint8 array or C x H x W tensor in [0, 1]
    out.labels                        # H x W uint8/int64 class ids, the input's size
    out.save("labels.png")            # a palette PNG whose pixels are the ids

The input is padded (reflect, or replicate for tiny images) to a multiple of the network's stride,
segmented and cropped back, as :class:`~condsynth.pipelines.translate.TranslationPipeline` does.

Task protocol (checked at load): the method has ``segment(x) -> logits`` (``N x K x H x W`` for
photos ``N x C x H x W`` in [-1, 1]) and a ``stride``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from condsynth.errors import UserError
from condsynth.io.images import save_label_map, to_rgb_uint8, uint8_to_tensor
from condsynth.pipelines.base import Pipeline
from condsynth.pipelines.translate import pad_to_multiple


@dataclass
class SegmentationOutput:
    labels: np.ndarray              # H x W class ids
    logits: torch.Tensor            # K x H x W, on the CPU

    def save(self, path) -> Path:
        return save_label_map(path, self.labels)


class SegmentationPipeline(Pipeline):
    def check_method(self, method) -> None:
        if not callable(getattr(method, "segment", None)):
            raise UserError(f"{self.source}: a '{method.name}' model is not a segmentation model")
        self.stride = int(getattr(method, "stride", 1))
        self.num_classes = int(self.config.model.num_classes)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``N x K x H x W`` of a batch ``N x C x H x W`` in [-1, 1] of any size (padded, cropped back)."""
        xp, (h, w) = pad_to_multiple(x.to(self.device), self.stride)
        return self.method.segment(xp)[..., :h, :w].float()

    @torch.no_grad()
    def __call__(self, image) -> SegmentationOutput:
        x = uint8_to_tensor(to_rgb_uint8(image))[None]
        logits = self.logits(x)[0].cpu()
        ids = logits.argmax(0).numpy()
        return SegmentationOutput(ids.astype(np.uint8 if self.num_classes <= 256 else np.int64), logits)


__all__ = ["SegmentationOutput", "SegmentationPipeline"]
