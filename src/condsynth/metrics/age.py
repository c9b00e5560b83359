"""Aging accuracy (LDcGAN, thesis §4.5 / Table 4.2) with a pluggable age estimator.

Protocol: estimate the age of every generated face of target group g and of every real face of g;
report ``mean_est(fake_g)``, ``mean_est(real_g)`` and ``|mean_est(fake_g) - mean_est(real_g)|``
per group, as Table 4.2 does, plus a per-group Welch two-sample t-test p-value (the thesis' Fig.
4.12 test is unnamed; spec §2.5 [R]).

The thesis used the Face++ web API as estimator, which is not available offline. Any callable
``images -> ages`` can be plugged in; the toolkit's own is :class:`AgeRegressor`, trained with
:func:`train_age_regressor` on UTKFace-layout data (:mod:`condsynth.data.utkface`). Numbers from
it are **not comparable** with Table 4.2 and every record says which estimator produced them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric

from condsynth.data.utkface import AGE_GROUP_NAMES
from condsynth.errors import UserError
from condsynth.io.state import save_tensors
from condsynth.metrics.base import count, scalar

NUM_GROUPS = len(AGE_GROUP_NAMES)


# ----------------------------------------------------------------------------------------------
# The toolkit's age estimator

class AgeRegressor(nn.Module):
    """A small CNN regressing age from a face in [-1, 1] (any size >= 32; trained at 128x128).

    Five stride-2 conv-BN-ReLU stages (32..256 channels), global average pooling and a linear
    head predicting age / 100 (keeps the regression target near unit scale).
    """

    def __init__(self, width: int = 32):
        super().__init__()
        chans = [3, width, width * 2, width * 4, width * 8, width * 8]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], 1)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Ages in years, shape ``(N,)``."""
        h = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.head(h).squeeze(1) * 100.0


def train_age_regressor(model: AgeRegressor, loader, epochs: int = 1, lr: float = 1e-3,
                        device: str | torch.device = "cpu", log: Callable[[int, float], None] | None = None
                        ) -> list[float]:
    """Train on batches of ``{'image', 'age'}`` (e.g. a DataLoader over UTKFaceDataset) with L1 loss in years.

    Returns the per-step losses. L1 (mean absolute error) is the usual age-estimation loss and
    the metric people report for it.
    """
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    step = 0
    for _ in range(epochs):
        for batch in loader:
            x, age = batch["image"].to(device), batch["age"].to(device).float()
            loss = F.l1_loss(model(x) / 100.0, age / 100.0) * 100.0
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
            if log:
                log(step, float(loss))
            step += 1
    return losses


def save_age_regressor(model: AgeRegressor, path: str | Path, meta: dict | None = None) -> Path:
    """safetensors with the config and ``meta`` (training data, epochs, MAE...) in its header; atomic."""
    path = Path(path)
    save_tensors(path, model.state_dict(), metadata={"condsynth": json.dumps({"kind": "age_regressor",
                                                                               "width": model.width,
                                                                               "meta": meta or {}})})
    return path


def load_age_regressor(path: str | Path) -> tuple[AgeRegressor, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: age estimator file not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = json.loads((fh.metadata() or {}).get("condsynth", "{}"))
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{path}: not a readable safetensors file ({type(exc).__name__})") from None
    if header.get("kind") != "age_regressor":
        raise UserError(f"{path}: not a condsynth age estimator (saved by save_age_regressor)")
    model = AgeRegressor(width=int(header["width"]))
    model.load_state_dict(state, strict=True)
    return model.eval(), header.get("meta", {})


# ----------------------------------------------------------------------------------------------
# The metric

def _welch_p(m1, v1, n1, m2, v2, n2) -> float:
    from scipy.stats import ttest_ind_from_stats
    if n1 < 2 or n2 < 2:
        return math.nan
    return float(ttest_ind_from_stats(m1, math.sqrt(v1), n1, m2, math.sqrt(v2), n2, equal_var=False).pvalue)


ROW_STATS = ("mean_fake", "mean_real", "abs_diff", "n_fake", "n_real", "welch_p")


class AgeAccuracy(Metric):
    """Per-group estimated-age statistics of generated and real faces (sums, all-reduced under DDP).

    ``update(ages, groups, real)`` takes estimated ages and the (target) group index of each face.
    ``compute()`` returns a flat dict: for every group index ``g`` (``AGE_GROUP_NAMES[g]``) that
    has both real and generated faces, ``mean_fake_g<g>``, ``mean_real_g<g>``, ``abs_diff_g<g>``,
    ``n_fake_g<g>``, ``n_real_g<g>`` and ``welch_p_g<g>``; plus ``mean_abs_diff`` over those
    groups. :func:`age_rows` turns it back into one row per group (Table 4.2).

    >>> m = AgeAccuracy()
    >>> m.update([24.0, 26.0], [3], real=True)      # group 3 is 21-30
    >>> m.update([27.0, 29.0], [3], real=False)
    >>> out = m.compute()
    >>> float(out["mean_real_g3"]), float(out["abs_diff_g3"]), int(out["n_fake_g3"])
    (25.0, 3.0, 2)
    >>> [r["group"] for r in age_rows(out)]
    ['21-30']
    """

    higher_is_better = False
    full_state_update = False

    def __init__(self, estimator: Callable[[torch.Tensor], torch.Tensor] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.estimator = estimator
        for side in ("real", "fake"):
            for stat in ("sum", "sq", "n"):
                dtype = torch.long if stat == "n" else torch.float64
                self.add_state(f"{side}_{stat}", torch.zeros(NUM_GROUPS, dtype=dtype), dist_reduce_fx="sum")

    def update(self, ages=None, groups=None, real: bool = False, *, images: torch.Tensor | None = None) -> None:
        if ages is None:
            if self.estimator is None or images is None:
                raise RuntimeError("pass estimated ages, or images with an estimator")
            with torch.no_grad():
                ages = self.estimator(images)
        a = torch.as_tensor(np.asarray(ages, dtype=np.float64) if not torch.is_tensor(ages) else ages).double().cpu()
        g = torch.as_tensor(groups).long().cpu().reshape(-1)
        if len(g) == 1 and len(a) > 1:
            g = g.expand(len(a))
        if g.min() < 0 or g.max() >= NUM_GROUPS:
            raise ValueError(f"age group index out of range 0..{NUM_GROUPS - 1}")
        side = "real" if real else "fake"
        for stat, val in (("sum", a), ("sq", a ** 2), ("n", torch.ones_like(a))):
            buf = getattr(self, f"{side}_{stat}")
            setattr(self, f"{side}_{stat}", buf.index_add(0, g.to(buf.device), val.to(buf.device, buf.dtype)))

    def compute(self) -> dict[str, torch.Tensor]:
        out, diffs = {}, []
        for gi in range(NUM_GROUPS):
            nf, nr = int(self.fake_n[gi]), int(self.real_n[gi])
            if nf == 0 or nr == 0:
                continue
            mf, mr = float(self.fake_sum[gi]) / nf, float(self.real_sum[gi]) / nr
            # Unbiased sample variances for the t-test.
            vf = max(float(self.fake_sq[gi]) - nf * mf ** 2, 0.0) / max(nf - 1, 1)
            vr = max(float(self.real_sq[gi]) - nr * mr ** 2, 0.0) / max(nr - 1, 1)
            out.update({f"mean_fake_g{gi}": scalar(mf), f"mean_real_g{gi}": scalar(mr),
                        f"abs_diff_g{gi}": scalar(abs(mf - mr)), f"n_fake_g{gi}": count(nf),
                        f"n_real_g{gi}": count(nr), f"welch_p_g{gi}": scalar(_welch_p(mf, vf, nf, mr, vr, nr))})
            diffs.append(abs(mf - mr))
        out["mean_abs_diff"] = scalar(float(np.mean(diffs)) if diffs else math.nan)
        return out


def age_rows(values: dict) -> list[dict]:
    """One row per group from :meth:`AgeAccuracy.compute`'s flat dict, in group order:
    ``{'group': '21-30', 'mean_fake', 'mean_real', 'abs_diff', 'n_fake', 'n_real', 'welch_p'}``."""
    rows = []
    for gi, name in enumerate(AGE_GROUP_NAMES):
        if f"abs_diff_g{gi}" not in values:
            continue
        row: dict = {"group": name}
        for stat in ROW_STATS:
            v = values[f"{stat}_g{gi}"]
            v = v.item() if isinstance(v, torch.Tensor) else v
            row[stat] = int(v) if stat.startswith("n_") else float(v)
        rows.append(row)
    return rows


def format_age_table(rows: list[dict], method: str = "ours") -> str:
    """Table 4.2 layout: a 'Real' row and a method row with |difference| in brackets."""
    head = "| Age group | " + " | ".join(r["group"] for r in rows) + " |"
    sep = "|---" * (len(rows) + 1) + "|"
    real = "| Real | " + " | ".join(f"{r['mean_real']:.2f}" for r in rows) + " |"
    ours = f"| {method} | " + " | ".join(f"{r['mean_fake']:.2f} ({r['abs_diff']:.2f})" for r in rows) + " |"
    return "\n".join([head, sep, real, ours])
