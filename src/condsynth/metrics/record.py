"""The JSON record every metric run writes next to its numbers.

A metric value without its protocol (which Inception weights, which resize, how many samples,
which split) cannot be compared with anything, so :class:`MetricRecord` keeps both together and
:func:`write_record` writes them atomically (a crash never leaves half a JSON file).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from condsynth.io.atomic import atomic_write_text


@dataclass
class MetricRecord:
    """One metric result: ``values`` (e.g. ``{"fid": 12.3}`` or ``{"is_mean": .., "is_std": ..}``;
    a metric's ``compute()`` dict of tensors can be given as it is) plus the protocol that produced them."""

    metric: str
    values: dict[str, Any]
    num_samples: int | dict[str, int]
    backend: str = ""
    weights_file: str | None = None
    weights_sha256: str | None = None
    resolution: Any = None            # input resolution(s) as found, e.g. [256, 256] or {"a": .., "b": ..}
    resize: str | None = None         # how inputs were brought to the network's size, or None
    split: str | None = None          # dataset split / protocol splits ("10 splits"), or None
    seed: int | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from condsynth import __version__
        d = asdict(self)
        d["values"] = {k: _jsonable(v) for k, v in self.values.items()}
        d["extra"] = {k: _jsonable(v) for k, v in self.extra.items()}
        d["condsynth_version"] = __version__
        d["created_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        d["host"] = {"python": platform.python_version()}
        try:
            import torch
            d["host"]["torch"] = torch.__version__
        except ImportError:  # pragma: no cover - torch is a hard dependency
            pass
        return d

    def summary(self) -> str:
        """One human line: ``fid = 12.3456 (backend ..., N=..., resize ...)``."""
        values = {k: _jsonable(v) for k, v in self.values.items()}  # compute()'s tensors print as numbers
        vals = ", ".join(f"{k} = {_fmt(v)}" for k, v in values.items() if not isinstance(v, (list, dict)))
        proto = [f"backend {self.backend}" if self.backend else "",
                 f"N={self.num_samples}",
                 f"resize {self.resize}" if self.resize else "",
                 f"split {self.split}" if self.split else ""]
        return f"{self.metric}: {vals}  ({'; '.join(p for p in proto if p)})"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    return str(v)


def _jsonable(v):
    """Plain-JSON version of numbers / arrays / tensors; inf and nan become strings, since JSON has neither."""
    try:
        import numpy as np
        import torch
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().double().numpy()
        if isinstance(v, np.ndarray):
            return [_jsonable(x) for x in v.tolist()] if v.ndim else _jsonable(v.item())
        if isinstance(v, np.generic):
            v = v.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def write_record(record: MetricRecord, path: str | Path) -> Path:
    """Write ``record`` as indented JSON to ``path`` atomically and return the path."""
    path = Path(path)
    atomic_write_text(path, json.dumps(record.to_dict(), indent=2, sort_keys=False) + "\n")
    return path
