"""The neural renderer H_r and the method that trains it (models/painting/renderer.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from condsynth.data.strokes import RendererDataConfig, StrokeBank, StrokeDataset, write_stroke_bank
from condsynth.models.painting.renderer import NeuralRenderer, RendererConfig, RendererMethod
from condsynth.testing import fake_context
from painting_helpers import TINY_RENDERER


def test_renderer_shapes_and_paper_architecture():
    paper = NeuralRenderer(RendererConfig())
    n = sum(p.numel() for p in paper.parameters())
    assert 10e6 < n < 12e6                                         # LTP's renderer: ~11M parameters
    out = NeuralRenderer(TINY_RENDERER)(torch.rand(3, 10))
    assert out.shape == (3, 32, 32) and out.min() >= 0 and out.max() <= 1


def test_tiny_renderer_learns_the_rasteriser():
    """Agreement on a tiny problem: 64 strokes at 32x32, fitted in a few hundred Adam steps."""
    torch.manual_seed(0)
    ds = StrokeDataset(64, seed=3, size=32)
    p = torch.stack([ds[i][0] for i in range(64)])
    a = torch.stack([ds[i][1] for i in range(64)])
    net = NeuralRenderer(TINY_RENDERER)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    base = F.mse_loss(a.mean() * torch.ones_like(a), a).item()   # best constant prediction
    for _ in range(250):
        loss = F.mse_loss(net(p), a)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert F.mse_loss(net(p), a).item() < 0.35 * base


def test_renderer_method_training_step():
    m = RendererMethod(TINY_RENDERER, RendererDataConfig(length=16))
    ds = m.build_dataset("train")
    assert len(ds) == 16 and ds[(3, 99)][0].equal(ds[3][0])       # engine keys are (index, seed)
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    opts = m.configure_optimizers(None)
    before = [p.clone() for p in m.renderer.parameters()]
    logs = m.training_step(batch, fake_context(m, opts))
    assert logs["loss_mse"] > 0
    assert any(not b.equal(p) for b, p in zip(before, m.renderer.parameters()))


def test_bce_loss_option_trains_and_reports_mse():
    cfg = RendererConfig(**{**vars(TINY_RENDERER), "loss": "bce"})
    m = RendererMethod(cfg, RendererDataConfig(length=8))
    batch = torch.utils.data.default_collate([m.build_dataset("train")[i] for i in range(4)])
    with torch.no_grad():
        p, a = batch
        expected_mse = F.mse_loss(m.renderer(p), a).item()
        expected_bce = F.binary_cross_entropy(m.renderer(p), a).item()
    logs = m.training_step(batch, fake_context(m, m.configure_optimizers(None)))
    assert logs["loss"].item() == pytest.approx(expected_bce, rel=1e-4)
    assert logs["loss_mse"].item() == pytest.approx(expected_mse, rel=1e-4)


def test_logits_and_forward_agree():
    net = NeuralRenderer(TINY_RENDERER)
    p = torch.rand(5, 13)                                          # colour columns are ignored
    assert torch.allclose(torch.sigmoid(net.logits(p)), net(p[:, :10]))


def test_training_reads_the_stroke_bank_and_evaluation_fresh_strokes(tmp_path):
    bank = tmp_path / "strokes.safetensors"
    write_stroke_bank(bank, 6, seed=4, size=32)
    m = RendererMethod(TINY_RENDERER, RendererDataConfig(bank=str(bank)))
    assert isinstance(m.build_dataset("train"), StrokeBank)
    assert isinstance(m.build_dataset("val"), StrokeDataset)      # held-out: fresh strokes of seed 1
