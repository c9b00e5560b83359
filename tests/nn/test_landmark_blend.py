"""LandmarkEncoder (LDcGAN's H_l^1, AVWnet's E_l) and mask_blend in both of the thesis's conventions."""

from __future__ import annotations

import pytest
import torch

from condsynth.nn.blocks import LandmarkEncoder, mask_blend


def test_mask_blend_both_conventions():
    mask = torch.tensor([[[[0.0, 1.0], [0.25, 0.5]]]])           # 1 x 1 x 2 x 2, broadcast over 3 channels
    content = torch.full((1, 3, 2, 2), 8.0)
    base = torch.full((1, 3, 2, 2), 4.0)
    # AVWnet Eq. 5.5: f_gray * f_colour + (1 - f_gray) * I*: the mask selects the content
    sel_content = mask_blend(mask, content, base, mask_selects="content")
    assert torch.equal(sel_content, torch.tensor([[4.0, 8.0], [5.0, 6.0]]).expand(1, 3, 2, 2))
    # LDcGAN Eq. 4.4: (1 - f_A) * f_C + f_A * I: the mask keeps the base (the input image)
    sel_base = mask_blend(mask, content, base, mask_selects="base")
    assert torch.equal(sel_base, torch.tensor([[8.0, 4.0], [7.0, 6.0]]).expand(1, 3, 2, 2))
    assert torch.equal(mask_blend(1 - mask, content, base, mask_selects="base"), sel_content)


def test_mask_blend_limits_are_exact():
    torch.manual_seed(0)
    image, content = torch.rand(2, 3, 5, 5) * 2 - 1, torch.rand(2, 3, 5, 5) * 2 - 1
    ones, zeros = torch.ones(2, 1, 5, 5), torch.zeros(2, 1, 5, 5)
    assert torch.equal(mask_blend(ones, content, image, mask_selects="base"), image)     # f_A = 1: output = input
    assert torch.equal(mask_blend(zeros, content, image, mask_selects="base"), content)
    assert torch.equal(mask_blend(zeros, content, image, mask_selects="content"), image)  # f_gray = 0: the example
    with pytest.raises(TypeError):
        mask_blend(ones, content, image)  # the convention must be said
    with pytest.raises(ValueError, match="mask_selects"):
        mask_blend(ones, content, image, mask_selects="input")


def test_landmark_encoder_ldcgan_shapes():
    enc = LandmarkEncoder(68, 16, 16)             # Linear(136, 16*16*16) -> ReLU -> 16 x 16 x 16 -> conv 3x3 16 -> 16
    assert tuple(enc.fc.weight.shape) == (16 * 16 * 16, 136) and tuple(enc.conv.weight.shape) == (16, 16, 3, 3)
    pts = torch.rand(2, 68, 2) * 2 - 1
    out = enc(pts)
    assert out.shape == (2, 16, 16, 16)
    torch.testing.assert_close(enc(pts.flatten(1)), out)   # x, y interleaved per point
    out.square().mean().backward()
    assert enc.fc.weight.grad.abs().sum() > 0


def test_landmark_encoder_avwnet_streams():
    enc = LandmarkEncoder(68, 256, 8, in_channels=1, norm="batch", act="relu").eval()
    assert tuple(enc.fc.weight.shape) == (64, 136) and tuple(enc.conv.weight.shape) == (256, 1, 3, 3)
    with torch.no_grad():
        streams = torch.rand(2, 16, 136)                   # B x T frames, one encoder shared by the streams
        out = enc(streams)
        assert out.shape == (2, 16, 256, 8, 8) and (out >= 0).all()
        torch.testing.assert_close(out[1, 5], enc(streams[1, 5:6])[0])
        assert enc(torch.rand(68, 2)).shape == (256, 8, 8)
    with pytest.raises(ValueError, match="expected ... x 68 x 2"):
        enc(torch.rand(2, 67, 2))
