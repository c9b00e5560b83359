"""The faces-world evaluators for end users: face crop -> age, 68 landmarks or identity embedding.

    pipe = FaceProbePipeline.from_pretrained("runs/faces/age")     # export, run or checkpoint
    out = pipe(images)               # paths, H x W x 3 uint8 arrays or tensors: aligned face crops
    out.values                       # (N,) ages, N x 68 x 2 landmarks in pixels of each input, or N x D

Inputs are face crops framed as the training renders (the faces world, or photos aligned by
:func:`condsynth.io.faces.align_faces` with the bundled template); each is resized to the model's
``data.image_size``. Task protocol (checked at load): the method has ``predict(x)`` and
``model_cfg.task``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from condsynth.errors import UserError
from condsynth.io.images import to_rgb_uint8, uint8_to_tensor
from condsynth.pipelines.base import Pipeline


@dataclass
class FaceProbeOutput:
    task: str
    values: np.ndarray


class FaceProbePipeline(Pipeline):
    def check_method(self, method) -> None:
        if not callable(getattr(method, "predict", None)) or not hasattr(method.model_cfg, "task"):
            raise UserError(f"{self.source}: a '{method.name}' model is not a face evaluator")
        self.task = method.model_cfg.task
        self.size = int(self.config.data.image_size)

    @torch.no_grad()
    def __call__(self, images) -> FaceProbeOutput:
        if not isinstance(images, (list, tuple)):
            images = [images]
        arrays = [to_rgb_uint8(im) for im in images]
        x = torch.stack([F.interpolate(uint8_to_tensor(a)[None], size=(self.size, self.size), mode="bilinear",
                                       align_corners=False, antialias=True)[0] for a in arrays])
        out = self.method.predict(x.to(self.device)).float().cpu().numpy()
        if self.task == "landmarks":                          # [-1, 1] -> pixels of each input
            wh = np.array([[a.shape[1] - 1, a.shape[0] - 1] for a in arrays], np.float64)[:, None, :]
            out = (out + 1) / 2 * wh
        return FaceProbeOutput(self.task, out)


__all__ = ["FaceProbeOutput", "FaceProbePipeline"]
