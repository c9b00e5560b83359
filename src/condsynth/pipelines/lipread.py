"""Lip readers for end users: aligned face clips -> word scores.

    pipe = LipReadingPipeline.from_pretrained("runs/talking-lipreader-eval")   # export, run or checkpoint
    out = pipe(clips)        # each: T x H x W x 3 uint8 aligned crops (data prepare's "crops"), or a prepared .npz
    out.words, out.log_probs # the best word per clip; N x n_words mean per-step log-probabilities

Each clip is turned into the reader's input as in training (:class:`~condsynth.data.talking.LipDataConfig`:
the ROI, luma, resized, the centred ``data.frames`` window, STAF's normalisation). Clips shorter
than the window are refused with one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from condsynth.errors import UserError
from condsynth.pipelines.base import Pipeline


@dataclass
class LipReadingOutput:
    log_probs: np.ndarray           # N x n_words
    labels: np.ndarray              # N best word indices
    words: list[str]                # their names (the indices as text when the model has no word list)


class LipReadingPipeline(Pipeline):
    def check_method(self, method) -> None:
        if not callable(getattr(method, "read", None)):
            raise UserError(f"{self.source}: a '{method.name}' model is not a lip reader")

    def _input(self, clip) -> torch.Tensor:
        from condsynth.data.talking import LipReadingDataset, _gray_rois
        if isinstance(clip, (str, Path)):
            with np.load(clip, allow_pickle=False) as z:
                clip = z["crops"]
        a = np.asarray(clip)
        if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
            raise UserError(f"a clip must be T x H x W x 3 uint8 aligned crops, got {a.shape} {a.dtype}")
        cfg = self.config.data
        if len(a) < cfg.frames:
            raise UserError(f"a clip has {len(a)} frames; this reader reads windows of {cfg.frames}")
        x = _gray_rois(a, cfg)
        s = (len(x) - cfg.frames) // 2
        x = torch.from_numpy(x[s:s + cfg.frames]).float() / 255
        return ((x - LipReadingDataset.MEAN) / LipReadingDataset.STD)[None]

    @torch.no_grad()
    def __call__(self, clips) -> LipReadingOutput:
        from condsynth.models.lipreader import word_log_probs
        if isinstance(clips, (str, Path)) or (isinstance(clips, np.ndarray) and clips.ndim == 4):
            clips = [clips]
        x = torch.stack([self._input(c) for c in clips]).to(self.device)
        lp = word_log_probs(self.method.read(x)).float().cpu().numpy()
        labels = lp.argmax(1)
        names = list(self.method.model_cfg.words)
        return LipReadingOutput(lp, labels, [names[i] if names else str(i) for i in labels])


__all__ = ["LipReadingOutput", "LipReadingPipeline"]
