"""Dataset readers for real on-disk layouts, synthetic worlds, and transforms.

Datasets here accept either an integer index or an ``(index, seed)`` pair: the engine's sampler
passes the pair so that random augmentation depends only on (run seed, epoch, position), which
makes interrupted-and-resumed training see exactly the same crops and flips.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:        # NumPy is imported when used: `condsynth --help` reads data.synth.WORLDS
    import numpy as np


def split_key(key) -> tuple[int, int | None]:
    """The engine's dataset key, ``index`` or ``(index, seed)``, as ``(index, seed or None)``.

    Every reader parses keys through this one function, so that augmentation is driven by the
    seed the sampler hands out (different every epoch, identical after a resume)."""
    if isinstance(key, (tuple, list)):
        return int(key[0]), int(key[1])
    return int(key), None


def rng_for(index: int, seed: int | None, salt: int = 0) -> np.random.Generator:
    """A NumPy generator for one item's augmentation: from the sampler's ``seed`` when given,
    else from the index alone (a plain ``dataset[i]`` is then reproducible too)."""
    import numpy as np
    return np.random.default_rng([salt, index] if seed is None else [salt, index, seed])
