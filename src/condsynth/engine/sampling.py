"""A resumable, distributed sampler with per-sample augmentation seeds.

Each epoch is a permutation drawn from (run seed, epoch); rank r of W takes every W-th index. The
sampler yields ``(index, sample_seed)`` pairs, the seed derived from (run seed, epoch, position),
so data order *and* random augmentation are a pure function of the position in training. A
resumed run sets ``start`` to the number of samples this rank already consumed in the epoch and
sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler):
    def __init__(self, num_items: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        self.num_items = num_items
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def per_rank(self) -> int:
        return self.num_items // self.world_size  # drop the tail so every rank has the same count

    def __len__(self) -> int:
        return max(self.per_rank() - self.start, 0)

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_items, generator=g).tolist()
        else:
            order = list(range(self.num_items))
        order = order[: self.per_rank() * self.world_size][self.rank::self.world_size]
        for pos in range(self.start, len(order)):
            global_pos = pos * self.world_size + self.rank
            seed = int(np.random.SeedSequence([self.seed, self.epoch, global_pos]).generate_state(1)[0])
            yield order[pos], seed
