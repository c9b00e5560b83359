"""The mean/std-from-sums metric that SSIM, PSNR, LMD, verification, VS and the painting errors share.

Each metric here scores every item (an image pair, a frame, a face pair) and reports the mean
and the population std of those scores. The state is, per named score, the sum, the sum of
squares and two counts, all reduced with ``sum`` under DDP, so a 2-process run gives the same
numbers as one process (up to float64 rounding). ``+inf`` scores (PSNR of identical images) are
counted in ``n_inf`` and left out of the mean; NaN scores (an undefined ratio) are left out and
not counted.

Every ``compute()`` in :mod:`condsynth.metrics` returns ``dict[str, Tensor]``: 0-dim float64
tensors for values, int64 for counts. :func:`to_python` turns such a dict into floats and ints
for JSON records.

Example (a subclass scores a batch; the base keeps the sums):

>>> import torch
>>> class Brightness(MeanStdMetric):
...     def scores(self, images):
...         return images.flatten(1).mean(1)
>>> m = Brightness()
>>> m.update(torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
>>> {k: round(v, 4) for k, v in to_python(m.compute()).items()}
{'mean': 0.75, 'std': 0.25, 'n': 2, 'n_inf': 0}
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics import Metric

_STATS = ("sum", "sq", "n", "inf")


def mean_std_from_sums(total, total_sq, count) -> tuple[float, float]:
    """Mean and population std from a sum, a sum of squares and a count; NaN for both when ``count`` is 0."""
    n = int(count)
    if n == 0:
        return math.nan, math.nan
    mean = float(total) / n
    return mean, math.sqrt(max(float(total_sq) / n - mean * mean, 0.0))


def to_python(values: dict) -> dict:
    """``{name: 0-dim tensor}`` -> ``{name: float or int}`` (integer tensors become ints)."""
    out = {}
    for k, v in values.items():
        if isinstance(v, torch.Tensor):
            v = v.item() if v.numel() == 1 else v.tolist()
        out[k] = v
    return out


def scalar(value: float) -> torch.Tensor:
    """A 0-dim float64 tensor: what every ``compute()`` returns for a value."""
    return torch.tensor(float(value), dtype=torch.float64)


def count(value: int) -> torch.Tensor:
    """A 0-dim int64 tensor: what every ``compute()`` returns for a count."""
    return torch.tensor(int(value), dtype=torch.long)


class MeanStdMetric(Metric):
    """Mean and population std of named per-item scores, from DDP-summable sums.

    ``score_names`` lists the scores; a subclass implements :meth:`scores`, which scores a batch
    without touching the state. ``update(*inputs)`` scores and adds them;
    ``update(scores=...)`` adds scores computed before (a run that also keeps them per item).
    ``compute()`` gives ``{'mean', 'std', 'n', 'n_inf'}`` for a single score and
    ``{'<score>_mean', '<score>_std', '<score>_n', '<score>_n_inf'}`` for several; subclasses
    that keep other key names build them from :meth:`summary`.
    """

    score_names: tuple[str, ...] = ("score",)
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in self.score_names:
            for stat in _STATS:
                dtype = torch.long if stat in ("n", "inf") else torch.float64
                self.add_state(f"{name}_{stat}", torch.tensor(0, dtype=dtype), dist_reduce_fx="sum")

    def scores(self, *inputs, **kwargs):  # pragma: no cover - abstract
        """Per-item scores of a batch: ``{score name: 1-D values}``, or the values alone for one score."""
        raise NotImplementedError

    def update(self, *inputs, scores=None, **kwargs) -> None:
        """Add the scores of a batch of ``inputs`` (see :meth:`scores`), or precomputed ``scores``.

        ``scores`` is what :meth:`scores` returns (values may be 1-D tensors, arrays, lists or
        single numbers); keys that are not among ``score_names`` are ignored.
        """
        if scores is None:
            scores = self.scores(*inputs, **kwargs)
        elif inputs or kwargs:
            raise TypeError(f"{type(self).__name__}.update: pass inputs or scores=..., not both")
        if not isinstance(scores, dict):
            if len(self.score_names) != 1:
                raise TypeError(f"{type(self).__name__} has several scores; pass a dict of them")
            scores = {self.score_names[0]: scores}
        for name in self.score_names:
            if name not in scores:
                continue
            v = scores[name]
            v = v.detach() if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v, dtype=np.float64))
            v = v.to(self.device, torch.float64).reshape(-1)  # (lists through NumPy: torch would make float32)
            finite = torch.isfinite(v)
            self._add(name, "sum", v[finite].sum())
            self._add(name, "sq", v[finite].pow(2).sum())
            self._add(name, "n", finite.sum())
            self._add(name, "inf", (v == math.inf).sum())

    def _add(self, name: str, stat: str, value: torch.Tensor) -> None:
        key = f"{name}_{stat}"
        cur = getattr(self, key)
        setattr(self, key, cur + value.to(cur.dtype))

    def summary(self, name: str) -> dict[str, torch.Tensor]:
        """``{'mean', 'std', 'n', 'n_inf'}`` of one score; mean +inf (std 0) if every score was +inf."""
        n, n_inf = int(getattr(self, f"{name}_n")), int(getattr(self, f"{name}_inf"))
        if n == 0:
            mean, std = (math.inf, 0.0) if n_inf else (math.nan, math.nan)
        else:
            mean, std = mean_std_from_sums(getattr(self, f"{name}_sum"), getattr(self, f"{name}_sq"), n)
        return {"mean": scalar(mean), "std": scalar(std), "n": count(n), "n_inf": count(n_inf)}

    def compute(self) -> dict[str, torch.Tensor]:
        if len(self.score_names) == 1:
            return self.summary(self.score_names[0])
        return {f"{name}_{k}": v for name in self.score_names for k, v in self.summary(name).items()}
