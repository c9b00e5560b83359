"""File-level painting run: ``condsynth eval painting CANVASES TARGETS [--masks M]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from condsynth.errors import UserError
from condsynth.io.images import read_image
from condsynth.metrics.inputs import paired_files, read_pair
from condsynth.metrics.painting import PaintingErrors, painting_scores
from condsynth.metrics.record import MetricRecord


def _mask_for(masks: Path, canvas_path: Path, shape) -> np.ndarray:
    cand = sorted(masks.glob(canvas_path.stem + ".*"))
    if not cand:
        raise UserError(f"{masks}: no mask named {canvas_path.stem}.* for {canvas_path}")
    m = read_image(cand[0], mode="L")
    if m.shape[:2] != shape[:2]:
        raise UserError(f"{cand[0]}: mask is {m.shape[1]}x{m.shape[0]}, canvas is {shape[1]}x{shape[0]}")
    return m


def run_painting(canvases, targets, *, masks=None, split: str | None = None) -> MetricRecord:
    """L1, L2, PSNR (and with ``masks`` the fg/bg L2 and their ratio) between same-named canvases and
    targets, values in [0, 1]; mean and std over images, non-finite values left out of each mean."""
    masks = Path(masks) if masks else None
    metric = PaintingErrors(masks=masks is not None)
    rows = {}
    for pc, pt in paired_files(canvases, targets):
        c, t = read_pair(pc, pt)
        c, t = c / 255.0, t / 255.0
        m = None if masks is None else _mask_for(masks, pc, c.shape) / 255.0
        rows[pc.name] = painting_scores(c, t, m)
        metric.update(scores=rows[pc.name])
    out = metric.compute()
    values = {k: float(v) for k, v in out.items() if k != "n"}
    return MetricRecord(metric="painting", values=values, num_samples=int(out["n"]),
                        backend="condsynth.metrics.painting",
                        inputs={"canvases": str(canvases), "targets": str(targets),
                                **({"masks": str(masks)} if masks else {})},
                        split=split, extra={"per_item": rows, "value_range": "[0, 1]"})
