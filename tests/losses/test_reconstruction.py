"""Per-sample, truncated and mask-weighted reconstruction (losses/reconstruction.py)."""

from __future__ import annotations

import pytest
import torch

from condsynth.losses.reconstruction import MaskedRecon


def test_per_sample_reduction_is_the_mean_of_each_sample():
    x, y = torch.rand(3, 2, 4, 4), torch.rand(3, 2, 4, 4)
    per = MaskedRecon("l1", "per_sample")(x, y)
    assert per.shape == (3,)
    torch.testing.assert_close(per, torch.stack([(a - b).abs().mean() for a, b in zip(x, y)]))
    torch.testing.assert_close(per.mean(), MaskedRecon("l1")(x, y))
    mask = torch.zeros(3, 1, 4, 4)
    mask[0, :, :2] = 1
    mask[1:, :, :, :1] = 1
    masked = MaskedRecon("l2", "per_sample")(x, y, mask)            # divided by each sample's mask weight
    torch.testing.assert_close(masked[0], (x[0] - y[0])[:, :2].pow(2).mean())
    torch.testing.assert_close(masked[2], (x[2] - y[2])[..., :1].pow(2).mean())


def test_truncation_and_element_normalisation():
    x, y = torch.zeros(1, 1, 2, 2), torch.tensor([[[[0.1, 0.5], [2.0, 3.0]]]])
    trunc = MaskedRecon("l1", "per_sample", truncate=1.0)(x, y)
    torch.testing.assert_close(trunc, torch.tensor([(0.1 + 0.5 + 1.0 + 1.0) / 4]))   # min(|x - y|, 1)
    weight = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]]]])
    by_mask = MaskedRecon("l1", "per_sample", truncate=1.0)(x, y, weight)
    by_elements = MaskedRecon("l1", "per_sample", truncate=1.0, normalize="elements")(x, y, weight)
    torch.testing.assert_close(by_mask, torch.tensor([(0.1 + 0.5) / 1.5]))
    torch.testing.assert_close(by_elements, torch.tensor([(0.1 + 0.5) / 4]))   # the mask weights, not selects
    torch.testing.assert_close(MaskedRecon("l1", truncate=1.0, normalize="elements")(x, y, weight),
                               by_elements[0])


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="reduction"):
        MaskedRecon("l1", "batch")
    with pytest.raises(ValueError, match="normalize"):
        MaskedRecon("l1", normalize="pixels")
