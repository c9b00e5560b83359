"""Training logs that need no server: TensorBoard event files, a JSONL of scalars, PNG grids."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from condsynth.io.images import save_image


def make_grid(columns: dict[str, torch.Tensor], max_rows: int = 8, pad: int = 2) -> torch.Tensor:
    """Images in [-1, 1]: one row per sample, one column per named visual -> ``3 x H x W``."""
    cols = []
    for t in columns.values():
        t = t[:max_rows].detach().float().cpu()
        if t.size(1) == 1:
            t = t.expand(-1, 3, -1, -1)
        elif t.size(1) > 3:
            t = t[:, :3]
        cols.append(t)
    n = min(c.size(0) for c in cols)
    h = max(c.size(2) for c in cols)
    w = max(c.size(3) for c in cols)
    grid = torch.full((3, n * (h + pad) + pad, len(cols) * (w + pad) + pad), 1.0)
    for j, c in enumerate(cols):
        for i in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, y:y + c.size(2), x:x + c.size(3)] = c[i]
    return grid


class RunLogger:
    """Rank-0 logger; every method is a no-op on other ranks. Files are opened at the first log,
    so a run that fails before its first step leaves no empty logs in the run folder."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        self.run_dir = run_dir
        self.writer = None
        self._jsonl = None

    def _open(self) -> None:
        if self._jsonl is not None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.run_dir / "tb"))
        except ImportError:  # tensorboard is a core dependency, but don't die for logs
            self.writer = None
        self._jsonl = open(self.run_dir / "log.jsonl", "a", encoding="utf-8")

    def scalars(self, step: int, values: dict[str, float], **extra) -> None:
        if not self.enabled:
            return
        self._open()
        for k, v in values.items():
            if self.writer is not None:
                self.writer.add_scalar(k, v, step)
        self._jsonl.write(json.dumps({"step": step, "time": round(time.time(), 3), **extra, **values}) + "\n")
        self._jsonl.flush()

    def images(self, step: int, columns: dict[str, torch.Tensor]) -> None:
        if not self.enabled or not columns:
            return
        self._open()
        grid = make_grid(columns)
        save_image(self.run_dir / "images" / f"step_{step:08d}.png", grid)
        if self.writer is not None:
            self.writer.add_image("visuals/" + "|".join(columns), (grid + 1) / 2, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._jsonl is not None:
            self._jsonl.close()
