"""The joint (unconditional + conditional, matching-aware) GAN losses against hand computations of the thesis's
Eq. 3.3/3.4 (HfGAN), 4.6-4.9 (LDcGAN) and 5.8/5.10 (AVWnet) and AttnGAN's grouping; GANLoss over scales."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from condsynth.losses.gan import GANLoss, joint_d_loss, joint_g_loss


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def neg_log_d(logits):          # -E log D(x), written with the sigmoid
    return -torch.log(torch.sigmoid(logits)).mean()


def neg_log_1m_d(logits):       # -E log(1 - D(x))
    return -torch.log(1 - torch.sigmoid(logits)).mean()


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    b = 5
    return {k: torch.randn(b, generator=g) * 2 for k in ("real_u", "fake_u", "real_c", "fake_c")} | {
        "wrong_c": torch.randn(b - 1, generator=g) * 2}  # AttnGAN: B - 1 mismatched pairs


def test_hfgan_eq_3_3_thesis_weights(logits):
    L = logits
    hand = (0.5 * bce(L["real_u"], 1) + 0.5 * bce(L["fake_u"], 0)
            + (bce(L["real_c"], 1) + bce(L["fake_c"], 0) + bce(L["wrong_c"], 0)) / 3)
    got = joint_d_loss(L["real_u"], L["fake_u"], L["real_c"], L["fake_c"], L["wrong_c"])
    assert torch.isclose(got, hand, rtol=1e-6)
    # the same with -log D / -log(1 - D) written out, as Eq. 3.3 prints it
    printed = (0.5 * neg_log_d(L["real_u"]) + 0.5 * neg_log_1m_d(L["fake_u"]) + neg_log_d(L["real_c"]) / 3
               + neg_log_1m_d(L["fake_c"]) / 3 + neg_log_1m_d(L["wrong_c"]) / 3)
    assert torch.isclose(got, printed, rtol=1e-5)


def test_avwnet_eq_5_8_is_the_same_five_input_loss(logits):
    # D_i(I_j), D_i(I^_j), D_i(I_j, A_j), D_i(I^_j, A_j), D_i(I_j, A^_{j+1}) with 1/2, 1/2, 1/3, 1/3, 1/3
    L = logits
    hand = (bce(L["real_u"], 1) / 2 + bce(L["fake_u"], 0) / 2 + bce(L["real_c"], 1) / 3 + bce(L["fake_c"], 0) / 3
            + bce(L["wrong_c"], 0) / 3)
    assert torch.isclose(joint_d_loss(L["real_u"], L["fake_u"], L["real_c"], L["fake_c"], L["wrong_c"],
                                      weights="thesis"), hand, rtol=1e-6)


def test_attngan_grouping(logits):
    L = logits
    hand = ((bce(L["real_u"], 1) + bce(L["real_c"], 1)) / 2
            + (bce(L["fake_u"], 0) + bce(L["fake_c"], 0) + bce(L["wrong_c"], 0)) / 3)
    got = joint_d_loss(L["real_u"], L["fake_u"], L["real_c"], L["fake_c"], L["wrong_c"], weights="attngan")
    assert torch.isclose(got, hand, rtol=1e-6)
    # without the unconditional head AttnGAN weights the wrong pair 1/2: real_c + (fake_c + wrong_c) / 2
    hand = bce(L["real_c"], 1) + (bce(L["fake_c"], 0) + bce(L["wrong_c"], 0)) / 2
    got = joint_d_loss(None, None, L["real_c"], L["fake_c"], L["wrong_c"], weights="attngan")
    assert torch.isclose(got, hand, rtol=1e-6)
    # and the two groupings differ
    assert not torch.isclose(got, joint_d_loss(None, None, L["real_c"], L["fake_c"], L["wrong_c"]))


def test_ldcgan_eq_4_6_and_4_8_all_halves(logits):
    # Eq. 4.6: -1/2 log D(I^GT) - 1/2 log(1 - D(I*)) - 1/2 log D(I^GT, s_t) - 1/2 log(1 - D(I*, s_t)); no wrong pair.
    # Eq. 4.8 (dual) has the same form with (I, s_r) real and (I_r, s_r) fake.
    L = logits
    hand = (bce(L["real_u"], 1) + bce(L["fake_u"], 0) + bce(L["real_c"], 1) + bce(L["fake_c"], 0)) / 2
    for weights in ("thesis", "attngan"):  # without a wrong pair both groupings give the halves
        assert torch.isclose(joint_d_loss(L["real_u"], L["fake_u"], L["real_c"], L["fake_c"], weights=weights),
                             hand, rtol=1e-6)


def test_generator_losses_eq_3_4_4_7_5_10(logits):
    fu, fc = logits["fake_u"], logits["fake_c"]
    # Eq. 3.4 / 5.10 (and 4.7 / 4.9 in the spec's non-saturating reading): -1/2 log D(x^) - 1/2 log D(x^, c)
    assert torch.isclose(joint_g_loss(fu, fc), (neg_log_d(fu) + neg_log_d(fc)) / 2, rtol=1e-5)
    assert torch.isclose(joint_g_loss(fu, fc), 0.5 * bce(fu, 1) + 0.5 * bce(fc, 1), rtol=1e-6)
    # AttnGAN's generator_loss: the unhalved sum
    assert torch.isclose(joint_g_loss(fu, fc, weights="attngan"), bce(fu, 1) + bce(fc, 1), rtol=1e-6)
    # Eq. 4.7 as printed: the conditional head only, the G-dependent term of the minimax value, log(1 - D(I*, C_t))
    sat = joint_g_loss(None, fc, saturating=True)
    assert torch.isclose(sat, torch.log(1 - torch.sigmoid(fc)).mean(), rtol=1e-5)
    assert torch.isclose(joint_g_loss(None, fc), bce(fc, 1))


def test_sum_reduction_is_eq_3_3_as_printed(logits):
    L = logits
    hand = (0.5 * (F.softplus(-L["real_u"]).sum() + F.softplus(L["fake_u"]).sum())
            + (F.softplus(-L["real_c"]).sum() + F.softplus(L["fake_c"]).sum() + F.softplus(L["wrong_c"]).sum()) / 3)
    got = joint_d_loss(L["real_u"], L["fake_u"], L["real_c"], L["fake_c"], L["wrong_c"], reduction="sum")
    assert torch.isclose(got, hand, rtol=1e-5)
    g = joint_g_loss(L["fake_u"], L["fake_c"], reduction="sum")
    assert torch.isclose(g, 5 * joint_g_loss(L["fake_u"], L["fake_c"]), rtol=1e-5)


def test_perfect_discriminator_has_zero_loss_and_gradients_point_the_right_way():
    big = torch.full((4,), 30.0)
    assert joint_d_loss(big, -big, big, -big, -big[:3]) < 1e-10
    real = torch.zeros(4, requires_grad=True)
    fake = torch.zeros(4, requires_grad=True)
    wrong = torch.zeros(3, requires_grad=True)
    joint_d_loss(real, fake, real * 2, fake * 2, wrong).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all() and (wrong.grad > 0).all()  # D raises real, lowers fakes
    g_in = torch.zeros(4, requires_grad=True)
    joint_g_loss(g_in, g_in * 3).backward()
    assert (g_in.grad < 0).all()  # G raises D(fake)


def test_logit_maps_and_low_precision_are_accepted():
    x = torch.randn(2, 1, 3, 3).half()
    assert joint_g_loss(x, x).dtype == torch.float32
    assert torch.isclose(joint_g_loss(x, None), bce(x.float(), 1))


def test_bad_arguments():
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="pairs"):
        joint_d_loss(x, None, x, x)
    with pytest.raises(ValueError, match="wrong_c needs"):
        joint_d_loss(x, x, None, None, wrong_c=x)
    with pytest.raises(ValueError, match="weights"):
        joint_d_loss(x, x, x, x, weights="stackgan")
    with pytest.raises(ValueError, match="reduction"):
        joint_g_loss(x, x, reduction="none")
    with pytest.raises(ValueError):
        joint_g_loss(None, None)


# ------------------------------------------------------------------------------------------- GANLoss over scales

def test_gan_loss_scale_reduction_sum_is_three_times_the_mean_for_three_equal_scales():
    logits = torch.tensor([[[[0.3, -1.2], [2.0, 0.1]]]])
    scales = [logits, logits.clone(), logits.clone()]
    feats = [[torch.randn(1, 2, 2, 2), s] for s in scales]  # MultiScaleDiscriminator(return_features=True)
    for mode in ("vanilla", "lsgan", "hinge", "wgan"):
        mean, total = GANLoss(mode), GANLoss(mode, scale_reduction="sum")
        for target in (True, False):
            assert torch.isclose(total(scales, target), 3 * mean(scales, target))
            assert torch.isclose(total(feats, target), 3 * mean(feats, target))
            assert torch.isclose(mean(scales, target), mean(logits, target))  # the default is unchanged: the mean
        assert torch.isclose(total(logits, True), mean(logits, True))       # one scale: the same
    with pytest.raises(ValueError, match="scale_reduction"):
        GANLoss(scale_reduction="max")


def test_gan_loss_sum_over_unequal_scales():
    a, b = torch.randn(1, 1, 4, 4), torch.randn(1, 1, 2, 2)
    loss = GANLoss("vanilla", scale_reduction="sum")
    assert torch.isclose(loss([a, b], True), bce(a, 1) + bce(b, 1))  # NVIDIA/pix2pixHD: loss += per discriminator
