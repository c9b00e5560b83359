"""The synthetic world of painting targets (data/synth/paint_targets.py)."""

from __future__ import annotations

import numpy as np
import torch

from condsynth.data.synth.paint_targets import SyntheticPaintWorld, synthetic_scene


def test_synthetic_world_is_deterministic_with_exact_masks():
    a, m = synthetic_scene(5, 0, 64)
    b, m2 = synthetic_scene(5, 0, 64)
    assert np.array_equal(a, b) and np.array_equal(m, m2) and 0.02 < m.mean() < 0.9
    item = SyntheticPaintWorld(10, 0, 64)[(5, 123)]
    assert item["image"].shape == (3, 64, 64) and item["has_mask"] == 1
    assert torch.equal(item["mask"][0] > 0.5, torch.from_numpy(m))


def test_synthetic_world_flips_with_the_sampler_seed():
    world = SyntheticPaintWorld(10, 0, 32, flip=True)
    plain = torch.from_numpy(synthetic_scene(3, 0, 32)[0]).permute(2, 0, 1).float() / 255
    flipped = [bool(torch.equal(world[(3, s)]["image"], plain.flip(-1))) for s in range(16)]
    assert any(flipped) and not all(flipped)                       # the same image, mirrored in some epochs
    for s in range(16):                                            # ... and never anything else
        assert flipped[s] or torch.equal(world[(3, s)]["image"], plain)
    assert all(torch.equal(world[(3, s)]["image"], world[(3, s)]["image"]) for s in range(4))   # reproducible
