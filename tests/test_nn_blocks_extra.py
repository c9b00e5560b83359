"""ResNet generator, self-attention, spectral norm and the VGG feature networks."""

from __future__ import annotations

import hashlib

import pytest
import torch

from condsynth.errors import MissingWeightsError, UserError
from condsynth.nn import vgg as vgg_mod
from condsynth.nn.vgg import VGGFeatures, layer_names, tap_index, torchvision_feature_keys

# ------------------------------------------------------------------------------------------- VGG
# torchvision's `features` indices of the convs, written out from the architecture tables
# (Simonyan & Zisserman 2015, configs D and E): conv/ReLU pairs, a max-pool after each block.
VGG16_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG19_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


@pytest.mark.parametrize("arch, conv_indices, n_features", [
    ("vgg16", VGG16_CONV_INDICES, 31), ("vgg19", VGG19_CONV_INDICES, 37)])
def test_vgg_state_dict_keys_are_torchvision_layout(arch, conv_indices, n_features):
    expected = [f"features.{i}.{p}" for i in conv_indices for p in ("weight", "bias")]
    net = VGGFeatures(arch, ["relu1_1"], pretrained=False)
    assert list(net.state_dict().keys()) == expected
    assert torchvision_feature_keys(arch) == expected
    assert len(net.features) == n_features
    sd = net.state_dict()
    assert sd["features.0.weight"].shape == (64, 3, 3, 3)
    assert sd[f"features.{conv_indices[-1]}.weight"].shape == (512, 512, 3, 3)


def test_vgg_tap_names():
    names = layer_names("vgg16")
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert tap_index("vgg16", "relu2_2") == 8 and tap_index("vgg16", "relu3_3") == 15
    assert tap_index("vgg16", "conv4_1") == 17            # the painting spec's "layer 17"
    assert tap_index("vgg16", "block3_conv3") == tap_index("vgg16", "relu3_3")   # Keras names are post-ReLU
    assert tap_index("vgg19", "relu5_1") == 29 and tap_index("vgg19", "relu4_1") == 20
    with pytest.raises(ValueError, match="unknown vgg19 layer"):
        tap_index("vgg19", "relu6_1")


def test_vgg_taps_shapes_and_frozen():
    net = VGGFeatures("vgg16", ["relu1_2", "relu2_2", "conv3_3", 17], pretrained=False)
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    out = net(x)
    assert list(out) == ["relu1_2", "relu2_2", "conv3_3", "17"]
    assert out["relu1_2"].shape == (2, 64, 32, 32)
    assert out["relu2_2"].shape == (2, 128, 16, 16)
    assert out["conv3_3"].shape == (2, 256, 8, 8) and (out["conv3_3"] < 0).any()   # pre-ReLU
    assert out["17"].shape == (2, 512, 4, 4)
    assert (out["relu2_2"] >= 0).all()
    assert not any(p.requires_grad for p in net.parameters())
    out["17"].sum().backward()                              # frozen weights, but the input gets gradients
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vgg_input_normalisation():
    net = VGGFeatures("vgg16", ["relu1_1"], pretrained=False)
    white_pm1 = net.normalize(torch.ones(1, 3, 2, 2))
    net.input_range = (0.0, 1.0)                           # as if built with input_range=(0, 1)
    white_01 = net.normalize(torch.ones(1, 3, 2, 2))
    net.input_range = (-1.0, 1.0)
    expected = (1 - torch.tensor(vgg_mod.IMAGENET_MEAN)) / torch.tensor(vgg_mod.IMAGENET_STD)
    torch.testing.assert_close(white_pm1[0, :, 0, 0], expected)
    torch.testing.assert_close(white_01, white_pm1)
    gray = net.normalize(torch.zeros(1, 1, 2, 2))          # 1 channel is repeated to 3
    assert gray.shape == (1, 3, 2, 2)
    net.normalization = "caffe"                            # BGR, 0-255, Caffe means
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(net.normalize(red)[0, :, 0, 0],
                               torch.tensor([0 - 103.939, 0 - 116.779, 255 - 123.68]))


@pytest.fixture
def no_weight_caches(tmp_path, monkeypatch):
    """Point every standard weight location at empty temporary folders."""
    for var in ("CONDSYNTH_VGG16", "CONDSYNTH_VGG19", "CONDSYNTH_WEIGHTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


@pytest.fixture(scope="module")
def fake_vgg16_file(tmp_path_factory):
    """A weight file with torchvision's keys and shapes (random values) plus classifier keys."""
    torch.manual_seed(0)
    feats = VGGFeatures("vgg16", ["relu1_1"], pretrained=False).state_dict()
    state = {k: v.half() for k, v in feats.items()}        # half precision keeps the file small
    state["classifier.0.weight"] = torch.zeros(4, 4)       # ignored on load, whatever its shape
    path = tmp_path_factory.mktemp("weights") / "vgg16-397923af.pth"
    torch.save(state, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest(), state


def test_vgg_pretrained_loads_through_resolve_weights(no_weight_caches, fake_vgg16_file, monkeypatch):
    path, digest, state = fake_vgg16_file
    monkeypatch.setenv("CONDSYNTH_VGG16", str(path))
    net = VGGFeatures("vgg16", ["relu1_1"], weights_sha256=digest[:8])
    assert net.weights_file == path
    torch.testing.assert_close(net.features[28].weight, state["features.28.weight"].float())
    net2 = VGGFeatures("vgg16", ["relu1_1"], weights_path=path, weights_sha256=digest)
    torch.testing.assert_close(net2.features[0].bias, state["features.0.bias"].float())


def test_vgg_pretrained_checksum_mismatch(no_weight_caches, fake_vgg16_file, monkeypatch):
    path, _, _ = fake_vgg16_file
    monkeypatch.setenv("CONDSYNTH_VGG16", str(path))
    # Without an override the file must be torchvision's own (sha256 starting 397923af).
    with pytest.raises(UserError, match="checksum mismatch"):
        VGGFeatures("vgg16", ["relu1_1"])


def test_vgg_pretrained_missing_file_names_it(no_weight_caches):
    with pytest.raises(MissingWeightsError) as info:
        VGGFeatures("vgg19", ["relu1_1"])
    message = str(info.value)
    assert "vgg19-dcbb9e9d.pth" in message and "CONDSYNTH_VGG19" in message


def test_vgg_pretrained_wrong_keys(no_weight_caches, tmp_path):
    bad = tmp_path / "vgg16-397923af.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(UserError, match="not a torchvision vgg16 weight file"):
        VGGFeatures("vgg16", ["relu1_1"], weights_path=bad, weights_sha256=digest)


# ------------------------------------------------------------------------------ ResNet generator
from condsynth.nn.attention import SelfAttention, spectral_norm_all  # noqa: E402
from condsynth.nn.resnet_generator import ResBlock, ResnetGenerator  # noqa: E402


def test_resnet_generator_cyclegan_layout():
    """CycleGAN's c7s1-64, d128, d256, 9 x R256, u128, u64, c7s1-3 (at a small ngf to stay fast)."""
    g = ResnetGenerator(3, 3, ngf=8, n_down=2, n_blocks=9)
    assert len(g.blocks) == 9 and all(isinstance(b, ResBlock) for b in g.blocks)
    widths = [m.out_channels for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert widths[:3] == [8, 16, 32] and widths[-3:] == [16, 8, 3]
    assert g.stride == 4
    x = torch.randn(2, 3, 32, 32)
    y = g(x)
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1.0        # tanh output
    assert isinstance(g.out[1], torch.nn.Tanh)
    norms = [m for m in g.modules() if isinstance(m, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d))]
    assert len(norms) == 1 + 2 + 2 * 9 + 2 and all(isinstance(m, torch.nn.InstanceNorm2d) for m in norms)
    assert g.stem[0].padding_mode == "reflect" and g.out[0].padding_mode == "reflect"


def test_resnet_generator_odd_settings_and_features():
    # pix2pixHD G1-like (4 downs), batch norm, zero padding, dilation 2, resize-conv, dropout, 1 -> 5 channels.
    g = ResnetGenerator(1, 5, ngf=4, n_down=4, n_blocks=2, norm="batch", padding="zero", dilation=2,
                        dropout=0.5, upsample="resize", out_activation="none", return_features=True)
    x = torch.randn(2, 1, 48, 80)                  # non-square, divisible by 16
    y, feats = g(x)
    assert y.shape == (2, 5, 48, 80)
    assert feats["bottleneck"].shape == (2, 64, 3, 5) and feats["last"].shape == (2, 4, 48, 80)
    dilated = [m for m in g.blocks.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.dilation == (2, 2) and m.padding == (2, 2) for m in dilated)
    assert any(isinstance(m, torch.nn.Dropout) for m in g.blocks.modules())
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    # No stem, capped widths, zero blocks.
    g2 = ResnetGenerator(4, 3, ngf=4, n_down=3, n_blocks=0, stem=False, max_channels=8)
    assert g2(torch.randn(1, 4, 16, 16)).shape == (1, 3, 16, 16)
    assert max(m.out_channels for m in g2.modules() if isinstance(m, torch.nn.Conv2d)) == 8


def test_resblock_is_residual():
    block = ResBlock(6, dilation=3, norm="none")
    for p in block.body[1].parameters():            # zero the last conv: the block is the identity
        torch.nn.init.zeros_(p)
    x = torch.randn(1, 6, 12, 12)
    torch.testing.assert_close(block(x), x)


# ------------------------------------------------------------------------ attention, spectral norm
def test_self_attention_starts_as_identity_and_attends():
    torch.manual_seed(0)
    att = SelfAttention(16)
    assert att.f.out_channels == 2 and att.h.out_channels == 16 and att.gamma.item() == 0.0
    x = torch.randn(2, 16, 5, 7)
    y, beta = att(x, return_attention=True)
    torch.testing.assert_close(y, x)
    assert beta.shape == (2, 35, 35)
    torch.testing.assert_close(beta.sum(-1), torch.ones(2, 35))
    with torch.no_grad():
        att.gamma.fill_(1.0)
    assert not torch.allclose(att(x), x)
    # gamma gets a gradient, so training can switch attention on.
    att(x).sum().backward()
    assert att.gamma.grad is not None and att.gamma.grad.abs().item() > 0


def test_spectral_norm_all():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.ConvTranspose2d(8, 4, 4),
                              SelfAttention(4), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    net(torch.randn(1, 3, 8, 8))                    # materialise the lazy layer
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            with torch.no_grad():
                m.weight.mul_(10.0)                 # make the spectral norms far from 1
    spectral_norm_all(net)
    for _ in range(30):                              # power iterations run at each training forward
        net(torch.randn(1, 3, 8, 8))
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d,
                                                           torch.nn.Linear))]
    assert len(layers) == 6                          # conv, deconv, f, g, h, linear
    for m in layers:
        assert torch.nn.utils.parametrize.is_parametrized(m, "weight")
        w = m.weight.detach()
        # ConvTranspose weights are (in, out, k, k): the normalised matrix is over the out dim.
        mat = w.transpose(0, 1).flatten(1) if isinstance(m, torch.nn.ConvTranspose2d) else w.flatten(1)
        assert torch.linalg.matrix_norm(mat, 2).item() == pytest.approx(1.0, abs=0.05)
    spectral_norm_all(net)                           # idempotent
    assert sum("original" in k for k in net.state_dict()) == 6
