"""Summary statistics from DDP-summable sums (sum, sum of squares, count)."""

from __future__ import annotations

import math


def mean_std_from_sums(total, total_sq, count) -> tuple[float, float]:
    """Mean and population std; NaN for both when ``count`` is 0."""
    n = int(count)
    if n == 0:
        return math.nan, math.nan
    mean = float(total) / n
    return mean, math.sqrt(max(float(total_sq) / n - mean * mean, 0.0))
