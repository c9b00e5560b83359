"""Blocks shared by the painting networks and others (nn/blocks.py)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from condsynth.nn.blocks import BNResBlock, TReLU, coord_planes, resize, soft_update


def test_resize_antialiases_only_when_shrinking():
    x = torch.rand(2, 3, 16, 16)
    assert resize(x, 16) is x
    torch.testing.assert_close(resize(x, 8), F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False,
                                                           antialias=True), rtol=0, atol=0)
    torch.testing.assert_close(resize(x, (32, 24)), F.interpolate(x, size=(32, 24), mode="bilinear",
                                                                  align_corners=False), rtol=0, atol=0)
    assert resize(x, (8, 32)).shape == (2, 3, 8, 32)


def test_soft_update_moves_parameters_by_tau_and_copies_buffers():
    source = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    target = copy.deepcopy(source)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    source[1].running_mean.fill_(0.5)
    before = [p.clone() for p in target.parameters()]
    soft_update(target, source, 0.25)
    for b, t, s in zip(before, target.parameters(), source.parameters()):
        torch.testing.assert_close(t, 0.75 * b + 0.25 * s)
    assert torch.equal(target[1].running_mean, source[1].running_mean)


def test_coord_planes_trelu_and_bn_res_block():
    c = coord_planes(3)
    assert c.shape == (1, 2, 3, 3)
    assert c[0, 0, :, 0].tolist() == [0.0, 0.5, 1.0] and c[0, 1, 0].tolist() == [0.0, 0.5, 1.0]   # rows, columns
    t = TReLU()
    with torch.no_grad():
        t.alpha.fill_(0.5)
    assert t(torch.tensor([0.0, 0.4, 2.0])).tolist() == [0.5, 0.5, 2.0]   # max(x, a)
    block = BNResBlock(4).eval()
    for m in block.body:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.zeros_(m.weight)
            torch.nn.init.zeros_(m.bias)
    x = torch.randn(1, 4, 5, 5)
    assert torch.equal(block(x), F.relu(x))                               # zero body: relu(x + 0)
