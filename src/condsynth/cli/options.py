"""Options shared by the verbs, checked by argparse itself so a bad value never reaches the work.

    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--threads", type=THREADS, default=0)
    p.add_argument("--batch-size", type=int_in(1, 4096), default=16)
    add_overwrite(p)

A value out of range ends as one line, ``condsynth: error: --seed: must be between 0 and
9223372036854775807, got -1`` (see :func:`condsynth.cli.main.main`).
"""

from __future__ import annotations

import argparse
import math

from condsynth.config import SEED_MAX, max_threads, range_problem


def int_in(lo: int | None = None, hi=None):
    """An argparse type: an integer in ``[lo, hi]`` (``hi`` may be a callable)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got '{text}'") from None
        problem = range_problem(value, lo, hi)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    parse.__name__ = "integer"
    return parse


def float_in(lo: float | None = None, hi: float | None = None):
    """An argparse type: a finite number in ``[lo, hi]``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got '{text}'") from None
        problem = range_problem(value, lo, hi) if math.isfinite(value) else f"must be a finite number, got {text}"
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    parse.__name__ = "number"
    return parse


SEED = int_in(0, SEED_MAX)
THREADS = int_in(0, max_threads)       # 0: torch's default
WORKERS = int_in(1, max_threads)


def add_overwrite(p: argparse.ArgumentParser, what: str = "the output") -> None:
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {what} if it exists (only once the new one is complete)")


__all__ = ["SEED", "THREADS", "WORKERS", "add_overwrite", "float_in", "int_in"]
