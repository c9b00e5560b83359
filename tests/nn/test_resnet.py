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


def test_imagenet_resnets_have_torchvisions_sizes_and_keys():
    from condsynth.nn.resnet import ImageNetResNet
    r18, r34 = ImageNetResNet(18), ImageNetResNet(34)
    # the parameter counts of torchvision's resnet18 / resnet34
    assert sum(p.numel() for p in r18.parameters()) == 11_689_512
    assert sum(p.numel() for p in r34.parameters()) == 21_797_672
    keys = set(r18.state_dict())
    for k in ("conv1.weight", "bn1.running_var", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight",
              "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight"):
        assert k in keys, k
    assert len(r18.state_dict()) == 122 and len(r34.state_dict()) == 218
    feats = r18.eval().stages(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]


def test_imagenet_resnet_weights_load_from_a_file_or_fail_in_one_line(tmp_path, monkeypatch):
    import pytest

    from condsynth.errors import MissingWeightsError, UserError
    from condsynth.io.weights import sha256_of
    from condsynth.nn import resnet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-cache"))
    with pytest.raises(MissingWeightsError, match="resnet18-f37072fd.pth"):
        resnet.ImageNetResNet(18, pretrained=True)
    src = resnet.ImageNetResNet(18)
    f = tmp_path / "resnet18-f37072fd.pth"
    torch.save(src.state_dict(), f)
    with pytest.raises(UserError, match="checksum mismatch"):        # not torchvision's file
        resnet.ImageNetResNet(18, pretrained=True, weights_path=f)
    monkeypatch.setitem(resnet.RESNET_FILES, 18, ("resnet18-f37072fd.pth", sha256_of(f)[:8], "CONDSYNTH_RESNET18"))
    loaded = resnet.ImageNetResNet(18, num_classes=5, pretrained=True, weights_path=f)   # a new 5-way head
    assert torch.equal(loaded.layer3[1].conv2.weight, src.layer3[1].conv2.weight)
