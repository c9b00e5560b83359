"""Per-sample perceptual losses, cached target features and a shared VGG (losses/perceptual.py)."""

from __future__ import annotations

import pytest
import torch

from condsynth.losses.perceptual import PerceptualLoss
from condsynth.nn.vgg import VGGFeatures


@pytest.fixture(scope="module")
def painting_loss():
    torch.manual_seed(0)
    return PerceptualLoss.from_preset("painting", pretrained=False, input_range=(0.0, 1.0), reduction="per_sample")


def test_per_sample_painting_loss_is_the_agents_l_vgg(painting_loss):
    """The painting preset is L_vgg of the thesis agent: the mean squared difference at relu2_2 and
    relu3_3, the two averaged, one value per image."""
    x, y = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    per = painting_loss(x, y)
    assert per.shape == (3,)
    fx, fy = painting_loss.vgg(x), painting_loss.vgg(y)
    manual = 0.5 * ((fx["relu2_2"] - fy["relu2_2"]).pow(2).flatten(1).mean(1)
                    + (fx["relu3_3"] - fy["relu3_3"]).pow(2).flatten(1).mean(1))
    torch.testing.assert_close(per, manual)
    batch_mean = PerceptualLoss("vgg16", ("relu2_2", "relu3_3"), (0.5, 0.5), "mse", features=painting_loss.vgg)
    torch.testing.assert_close(batch_mean(x, y), per.mean())


def test_cached_target_features_give_the_same_loss(painting_loss):
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    feats = painting_loss.target_features(y)
    assert list(feats) == ["relu2_2", "relu3_3"] and not feats["relu2_2"].requires_grad
    torch.testing.assert_close(painting_loss(x, target_features=feats), painting_loss(x, y))
    with pytest.raises(ValueError, match="either"):
        painting_loss(x)
    with pytest.raises(ValueError, match="target features"):
        painting_loss(x[:1], target_features=feats)


def test_shared_feature_network_is_checked():
    vgg = VGGFeatures("vgg16", ["relu1_2", "relu2_2", "relu3_3"], pretrained=False)
    loss = PerceptualLoss.from_preset("painting", features=vgg)
    assert loss.vgg is vgg
    with pytest.raises(ValueError, match="shared feature network"):
        PerceptualLoss.from_preset("stylegan", features=VGGFeatures("vgg16", ["relu1_2"], pretrained=False))
