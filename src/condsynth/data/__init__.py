"""Dataset readers for real on-disk layouts, synthetic worlds, and transforms.

Datasets here accept either an integer index or an ``(index, seed)`` pair: the engine's sampler
passes the pair so that random augmentation depends only on (run seed, epoch, position), which
makes interrupted-and-resumed training see exactly the same crops and flips.
"""
