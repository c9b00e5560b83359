"""LearningToPaint's ResNet-18 trunks (nn/resnet.py)."""

from __future__ import annotations

import torch

from condsynth.nn.blocks import TReLU
from condsynth.nn.resnet import BasicBlock, ResNet18


def test_resnet18_shapes_and_stride():
    net = ResNet18(13, 65, width=4).eval()
    assert net(torch.rand(2, 13, 64, 64)).shape == (2, 65)
    assert net.stem(torch.rand(1, 13, 64, 64)).shape == (1, 4, 32, 32)     # conv3x3 stride 2
    assert len(net.blocks) == 8                                            # 4 stages x 2 BasicBlocks
    assert net.blocks(net.stem(torch.rand(1, 13, 64, 64))).shape == (1, 32, 2, 2)   # widths 4..32, /32


def test_batchnorm_and_weight_norm_variants():
    actor, critic = ResNet18(9, 65, width=4, norm=True), ResNet18(12, 1, width=4, norm=False)
    mods_a, mods_c = list(actor.modules()), list(critic.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in mods_a) and not any(isinstance(m, TReLU) for m in mods_a)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in mods_c) and any(isinstance(m, TReLU) for m in mods_c)
    assert actor.stem[0].bias is None and critic.stem[0].bias is not None  # BN replaces the bias
    assert "stem.0.parametrizations.weight.original0" in critic.state_dict()   # weight norm: g and v


def test_basic_block_is_residual_with_a_projection_when_the_shape_changes():
    same = BasicBlock(4, 4, 1, norm=True)
    assert isinstance(same.short, torch.nn.Identity)
    for conv in (same.c1, same.c2):
        torch.nn.init.zeros_(conv.weight)
    x = torch.rand(1, 4, 8, 8)                                            # zero convs: relu(x + 0) = x
    assert torch.equal(same.eval()(x), x)
    down = BasicBlock(4, 8, 2, norm=False)
    assert down(x).shape == (1, 8, 4, 4) and isinstance(down.short, torch.nn.Sequential)
