"""The joint unconditional/conditional discriminator family: the trunk to 8N_d x 16 x 16 for 256/128/64 inputs, the
heads, the auxiliary heads and the presets of the thesis methods' discriminators."""

from __future__ import annotations

import pytest
import torch

from condsynth.losses.gan import joint_d_loss, joint_g_loss
from condsynth.nn.discriminators import (JOINT_D_PRESETS, JointDiscriminator, JointHead, JointTrunk,
                                         hardest_mismatched_conditions, mismatched_conditions,
                                         trunk_strides)


def test_trunk_strides_per_input_size():
    assert trunk_strides(256) == (2, 2, 2, 2)
    assert trunk_strides(128) == (2, 2, 2, 1)   # LDcGAN's C4 and AVWnet's D_1 (spec: strides 2, 2, 2, 1)
    assert trunk_strides(64) == (2, 2, 1, 1)    # AVWnet's D_0
    with pytest.raises(ValueError, match="16 \\* 2\\^k"):
        trunk_strides(100)


@pytest.mark.parametrize("size", [256, 128, 64])
def test_part_one_is_four_3x3_convs_to_8nd_x_16_x_16(size):
    trunk = JointTrunk(image_size=size, ndf=64)
    convs = [m for m in trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 4
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in trunk.modules()) == 4  # the thesis: BN after each
    with torch.no_grad():
        h = trunk.eval()(torch.randn(1, 3, size, size))
    assert h.shape == (1, 512, 16, 16) and (trunk.out_channels, trunk.out_size) == (512, 16)


@pytest.mark.parametrize("name", sorted(JOINT_D_PRESETS))
def test_presets_output_shapes(name):
    cfg = JOINT_D_PRESETS[name]
    ndf, b, size = 4, 3, cfg["image_size"]
    d = JointDiscriminator.preset(name, ndf=ndf)
    c = torch.randn(b, cfg["cond_dim"])
    out = d(torch.randn(b, 3, size, size), c, wrong_c=mismatched_conditions(c))
    feat = {"hfgan": (8, 4), "attngan64": (8, 4), "attngan128": (8, 4), "attngan256": (8, 4), "ldcgan": (8, 16),
            "avwnet_d0": (16, 4), "avwnet_d1": (16, 4)}[name]
    assert out.features.shape == (b, feat[0] * ndf, feat[1], feat[1])
    assert out.uncond.shape == (b,) and out.cond.shape == (b,) and out.wrong.shape == (b - 1,)
    n_aux = cfg.get("n_aux", 0)
    assert (out.aux is None) if not n_aux else out.aux.shape == (b, n_aux)


def test_hfgan_d_modules_at_nd_64():
    # M1 -> 512 x 16^2, M2 -> 2048 x 4^2 (32 N_d), M3 -> 512 x 4^2 (8 N_d); heads on 512 + 256 channels
    d = JointDiscriminator.preset("hfgan")
    widths = [m.out_channels for m in d.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == [64, 128, 256, 512, 1024, 2048, 1024, 512]
    assert (d.trunk.out_channels, d.trunk.out_size) == (512, 4)
    assert d.head.cond[0][0].in_channels == 512 + 256
    assert d.head.uncond[-1].kernel_size == (4, 4) and d.head.uncond[-1].stride == (4, 4)   # conv 4x4 / s4


def test_stacked_baseline_d256_is_attngans():
    # taoxugit/AttnGAN D_NET256 at ndf 64, nef 256: encode_image_by_16times (4x4 s2, no BN on the first, bias-free
    # convs), two downBlocks, two Block3x3_leakRelu, COND_DNET (jointConv + outlogits) and UNCOND_DNET (outlogits).
    convs = [3 * 64 * 16, 64 * 128 * 16, 128 * 256 * 16, 256 * 512 * 16, 512 * 1024 * 16, 1024 * 2048 * 16,
             2048 * 1024 * 9, 1024 * 512 * 9, 768 * 512 * 9]
    bns = 2 * (128 + 256 + 512 + 1024 + 2048 + 1024 + 512 + 512)
    logits = 2 * (512 * 16 + 1)
    first_conv_bias = 64  # condsynth keeps a bias on a conv without norm; AttnGAN's first conv has none
    d = JointDiscriminator.preset("attngan256")
    assert sum(p.numel() for p in d.parameters()) == sum(convs) + bns + logits + first_conv_bias
    assert not isinstance(d.trunk.net[0][1], torch.nn.BatchNorm2d)


def test_ldcgan_dg_concatenates_the_age_after_c4():
    d = JointDiscriminator.preset("ldcgan").eval()
    seen = {}
    d.head.cond.register_forward_pre_hook(lambda m, args: seen.update(shape=args[0].shape))
    age = torch.nn.functional.one_hot(torch.tensor([3]), 10).float()
    with torch.no_grad():
        out = d(torch.randn(1, 3, 128, 128), age)
    assert seen["shape"] == (1, 512 + 10, 16, 16)  # spec §8: 522 channels at 16 x 16
    assert d.head.cond[-1].kernel_size == (8, 8)  # after the 3x3 stride-2 joint conv: one 8x8 logit conv
    assert out.aux.shape == (1, 10)


def test_avwnet_d0_and_d1_share_the_heads():
    d0, d1 = JointDiscriminator.preset("avwnet_d0", ndf=8), JointDiscriminator.preset("avwnet_d1", ndf=8)
    assert [tuple(p.shape) for p in d0.head.parameters()] == [tuple(p.shape) for p in d1.head.parameters()]
    assert [c.stride for c in d0.trunk.modules() if isinstance(c, torch.nn.Conv2d)][:4] == [(2, 2), (2, 2), (1, 1),
                                                                                               (1, 1)]


def test_conditional_and_unconditional_heads():
    torch.manual_seed(0)
    d = JointDiscriminator(image_size=64, ndf=4, cond_dim=5).eval()
    x, c = torch.randn(2, 3, 64, 64), torch.randn(2, 5)
    with torch.no_grad():
        a, b = d(x, c), d(x, c + 1)
        none = d(x)
    assert torch.equal(a.uncond, b.uncond) and not torch.allclose(a.cond, b.cond)  # only the cond head sees c
    assert none.cond is None and none.wrong is None and torch.equal(none.uncond, a.uncond)
    # c tiled over the map is the same as passing the tiled map
    h = d.trunk(x)
    tiled = c[:, :, None, None].expand(-1, -1, 16, 16)
    assert torch.equal(d.head.tile(h, c), torch.cat([h, tiled], 1))
    with torch.no_grad():
        assert torch.equal(d.head(h, tiled).cond, a.cond)

    u_only = JointDiscriminator(image_size=64, ndf=4)
    assert u_only.head.cond is None
    with pytest.raises(ValueError, match="no conditional head"):
        u_only(x, c)
    c_only = JointDiscriminator(image_size=64, ndf=4, cond_dim=5, uncond=False)
    assert c_only(x, c).uncond is None
    with pytest.raises(ValueError, match="expected 2 x 5"):
        d(x, torch.randn(2, 4))


def test_wrong_pairs_are_real_images_with_the_next_condition():
    torch.manual_seed(1)
    d = JointDiscriminator(image_size=64, ndf=4, cond_dim=6).eval()
    x, c = torch.randn(4, 3, 64, 64), torch.randn(4, 6)
    with torch.no_grad():
        out = d(x, c, wrong_c=mismatched_conditions(c))
        ref = d(x[:3], c[1:])
    torch.testing.assert_close(out.wrong, ref.cond)  # (x_i, c_{i+1}) for i < B - 1
    assert torch.equal(mismatched_conditions(c, 2), c[2:])
    with pytest.raises(ValueError, match="batch of more than 1"):
        mismatched_conditions(c[:1])


def test_hardest_pairs_take_the_nearest_sentence_of_another_class():
    # samples 0 and 1 are one class; 2 is nearest to 0 among the others, 3 nearest to 2 and to 1
    key = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.1, 0.0], [0.9, 0.0, 0.4], [0.0, 1.0, 0.0]])
    c = torch.arange(4.0)[:, None].expand(4, 5)
    wrong = hardest_mismatched_conditions(c, key, torch.tensor([7, 7, 3, 5]))
    assert wrong.shape == (4, 5)
    assert wrong[:, 0].tolist() == [2.0, 2.0, 0.0, 1.0]
    # never a sample of its own class, even when that one is nearer
    classes = torch.tensor([1, 1, 2, 2])
    picked = hardest_mismatched_conditions(torch.arange(4)[:, None], key, classes)[:, 0]
    assert all(classes[p] != classes[i] for i, p in enumerate(picked.tolist()))
    # one class in the whole batch: the next sample's condition
    assert hardest_mismatched_conditions(c, key, torch.zeros(4))[:, 0].tolist() == [1.0, 2.0, 3.0, 0.0]
    with pytest.raises(ValueError, match="more than 1"):
        hardest_mismatched_conditions(c[:1], key[:1], torch.zeros(1))


def test_gradients_flow_through_every_head_to_the_trunk():
    torch.manual_seed(2)
    d = JointDiscriminator(image_size=64, ndf=4, cond_dim=3, n_aux=4)
    x_real, x_fake = torch.randn(3, 3, 64, 64), torch.randn(3, 3, 64, 64, requires_grad=True)
    c = torch.randn(3, 3)
    real, fake = d(x_real, c, wrong_c=mismatched_conditions(c)), d(x_fake, c)
    loss = joint_d_loss(real.uncond, fake.uncond, real.cond, fake.cond, real.wrong)
    loss = loss + torch.nn.functional.cross_entropy(real.aux, torch.tensor([0, 1, 3]))
    loss.backward()
    for name, p in d.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x_fake.grad.abs().sum() > 0
    d.zero_grad()
    x_fake.grad = None
    g = d(x_fake, c)
    joint_g_loss(g.uncond, g.cond).backward()
    assert x_fake.grad.abs().sum() > 0  # the generator's gradient


def test_regression_aux_head_and_options():
    head = JointHead(32, size=4, cond_dim=0, n_aux=136, aux="regression", aux_hidden=16)
    assert head(torch.randn(2, 32, 4, 4)).aux.shape == (2, 136)
    assert head.aux[1].in_features == 32 * 16
    with pytest.raises(ValueError, match="needs the unconditional head"):
        JointHead(8, uncond=False)
    with pytest.raises(ValueError, match="head stride"):
        JointHead(8, size=5, stride=2)
    with pytest.raises(ValueError, match="unknown aux"):
        JointHead(8, n_aux=2, aux="linear")
    with pytest.raises(ValueError, match="unknown joint discriminator preset"):
        JointDiscriminator.preset("stackgan")


def test_even_kernels_keep_the_size_at_stride_one():
    trunk = JointTrunk(image_size=128, ndf=2, kernel_size=4)  # strides 2, 2, 2, 1 with 4x4 kernels
    assert trunk(torch.randn(1, 3, 128, 128)).shape == (1, 16, 16, 16)
    with pytest.raises(ValueError, match="four convs"):
        JointTrunk(strides=(2, 2, 2))
