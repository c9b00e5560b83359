"""Perceptual, masked reconstruction, TV and feature-matching losses."""

from __future__ import annotations

import pytest
import torch

from condsynth.losses.perceptual import PRESETS, PerceptualLoss, feature_distance
from condsynth.losses.reconstruction import FeatureMatchingLoss, MaskedRecon, TVLoss, masked_l1


@pytest.fixture(scope="module")
def hd_loss():
    torch.manual_seed(0)
    return PerceptualLoss.from_preset("pix2pixhd", pretrained=False)


def test_perceptual_zero_for_identical_and_positive_otherwise(hd_loss):
    torch.manual_seed(1)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert hd_loss(x, x.clone()).item() == 0.0
    y = (x + 0.2 * torch.randn_like(x)).clamp(-1, 1)
    assert hd_loss(x, y).item() > 0
    # Gradients reach the first input only, never the frozen network.
    x.requires_grad_(True)
    hd_loss(x, y).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in hd_loss.parameters())


def test_perceptual_is_weighted_sum_of_layer_distances(hd_loss):
    torch.manual_seed(2)
    x, y = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    terms = hd_loss.per_layer(x, y)
    assert list(terms) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    fx, fy = hd_loss.vgg(x), hd_loss.vgg(y)
    manual = sum(w * (fx[k] - fy[k]).abs().mean() for k, w in zip(terms, (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1)))
    torch.testing.assert_close(hd_loss(x, y), manual)


def test_presets_match_the_specs():
    assert PRESETS["pix2pixhd"]["weights"] == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    assert PRESETS["pix2pixhd"]["distance"] == "l1" and PRESETS["pix2pixhd"]["backbone"] == "vgg19"
    assert PRESETS["pix2pixhd"]["normalization"] == "none"      # pix2pixHD feeds [-1, 1] images as they are
    assert PRESETS["sat"]["layers"] == ("relu1_1", "relu2_1", "relu3_1") and PRESETS["sat"]["distance"] == "l2sq"
    assert PRESETS["stylegan"]["backbone"] == "vgg16" and PRESETS["stylegan"]["layers"] == ("relu3_3",)
    loss = PerceptualLoss.from_preset("painting", pretrained=False)
    assert loss.vgg.arch == "vgg16" and loss.layers == ["relu2_2", "relu3_3"]
    with pytest.raises(ValueError, match="unknown perceptual-loss preset"):
        PerceptualLoss.from_preset("nope", pretrained=False)


def test_feature_distances():
    a, b = torch.zeros(2, 4, 3, 3), torch.ones(2, 4, 3, 3)
    assert feature_distance(a, 2 * b, "l1").item() == 2.0
    assert feature_distance(a, 2 * b, "mse").item() == 4.0
    assert feature_distance(a, 2 * b, "l2sq").item() == 16.0     # 4 channels x 4, averaged over positions


def test_masked_recon_matches_manual():
    torch.manual_seed(3)
    x, y = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
    err = (x - y).abs()
    expected = (err * mask).sum() / (mask.sum() * 3)               # mean over the masked elements
    torch.testing.assert_close(MaskedRecon("l1")(x, y, mask), expected)
    torch.testing.assert_close(MaskedRecon("l1", "sum")(x, y, mask), (err * mask).sum())
    sq = (x - y) ** 2
    torch.testing.assert_close(MaskedRecon("l2")(x, y, mask), (sq * mask).sum() / (mask.sum() * 3))
    torch.testing.assert_close(MaskedRecon("l2")(x, y), sq.mean())
    torch.testing.assert_close(masked_l1(x, y), torch.nn.functional.l1_loss(x, y))
    # A full mask is the plain mean; an empty one is zero, not NaN.
    torch.testing.assert_close(MaskedRecon("l1")(x, y, torch.ones(2, 1, 8, 8)), err.mean())
    assert MaskedRecon("l1")(x, y, torch.zeros(2, 1, 8, 8)).item() == 0.0
    # Errors outside the mask do not count.
    y2 = y + (1 - mask) * 100
    torch.testing.assert_close(MaskedRecon("l1")(x, y2, mask), expected)


def test_tv_loss():
    x = torch.zeros(1, 1, 4, 4)
    assert TVLoss()(x).item() == 0.0
    x[..., 2:] = 1.0                       # one vertical edge of height 4
    assert TVLoss(power=2)(x).item() == 4.0
    assert TVLoss(power=1, reduction="mean")(x).item() == pytest.approx(4 / 24)


def test_feature_matching_pix2pixhd_weights():
    torch.manual_seed(4)
    # 2 discriminators, each with n_layers = 3 -> 5 outputs (4 intermediate + logits).
    fake = [[torch.randn(1, 4, 4, 4, requires_grad=True) for _ in range(5)] for _ in range(2)]
    real = [[torch.randn(1, 4, 4, 4) for _ in range(5)] for _ in range(2)]
    loss = FeatureMatchingLoss()(fake, real)
    manual = sum(4 / 4 * 0.5 * (f - r).abs().mean() for fk, rk in zip(fake, real) for f, r in zip(fk[:4], rk[:4]))
    torch.testing.assert_close(loss, manual)
    assert FeatureMatchingLoss()(real, real).item() == 0.0
    # A flat list is one discriminator.
    flat = FeatureMatchingLoss()(fake[0], real[0])
    torch.testing.assert_close(flat, 2 * sum(0.5 * (f - r).abs().mean() for f, r in zip(fake[0][:4], real[0][:4])))
