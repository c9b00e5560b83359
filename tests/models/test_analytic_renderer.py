"""The analytic stroke renderer (models/painting/analytic_renderer.py), closed-form colours and the
critic-free trainers of the painting agent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from condsynth.data.painting import PaintingDataConfig, RandomStrokeTargets
from condsynth.data.strokes import StrokeDataset
from condsynth.data.synth.strokes import rasterize_strokes
from condsynth.models.painting.agent import PaintingAgent
from condsynth.models.painting.analytic_renderer import (
    AnalyticRenderer,
    _CapsuleChain,
    _CapsuleChainWindows,
    render_hard,
    render_soft,
)
from condsynth.models.painting.env import closed_form_color, paint_bundle
from condsynth.testing import fake_context, prepare_training
from painting_helpers import tiny_agent_cfg


def strokes(n, seed=1):
    ds = StrokeDataset(n, seed, 32)
    return torch.stack([ds[i][0] for i in range(n)]).double()


@pytest.mark.parametrize("relative", [False, True])
def test_hard_version_is_the_rasteriser(relative):
    p = strokes(40)
    ref = rasterize_strokes(p.numpy(), 32, relative)
    got = render_hard(p, 32, relative_p1=relative).double().numpy()
    assert float(np.mean((got - ref) ** 2)) < 1e-12


def test_soft_version_is_close_to_the_rasteriser_at_64():
    p = strokes(40, seed=3)
    ref = rasterize_strokes(p.numpy(), 64)
    soft = render_soft(p.float(), 64).double().numpy()
    mse = float(np.mean((soft - ref) ** 2))
    assert mse < 1.5e-3
    assert mse > 0                      # soft edges: not the hard version


def test_any_size_and_batched():
    p = strokes(6).float()
    assert render_soft(p, 24, 40).shape == (6, 24, 40)
    assert render_hard(p, 24, 40).shape == (6, 24, 40)
    r = AnalyticRenderer(size=32)
    assert r(p).shape == (6, 32, 32)
    # a stroke drawn in the left half of a 32 x 64 canvas with ref 32 is the 32 x 32 stroke
    q = p.clone().double()
    q[:, 0:6:2] = q[:, 0:6:2] * 63 / 127           # x on the 2x canvas: x * 63 of 64 -> of 128 wide
    wide = render_hard(q, 32, 64, ref=32)
    assert torch.allclose(wide[:, :, :32], render_hard(p, 32), atol=1e-6)


def test_soft_gradients_finite_and_nonzero_for_every_parameter():
    p = torch.tensor([[0.2, 0.3, 0.5, 0.8, 0.8, 0.4, 0.3, 0.6, 0.1, 0.9]] * 2, requires_grad=True)
    target = torch.rand(2, 32, 32)
    ((render_soft(p, 32) - target) ** 2).mean().backward()
    g = p.grad
    assert torch.isfinite(g).all() and (g.abs() > 0).all()


def test_hand_written_backward_matches_numerical_gradient():
    torch.manual_seed(0)
    cx, cy, r = (torch.rand(2, 4, dtype=torch.double) * 16 for _ in range(3))
    v = torch.rand(2, 4, dtype=torch.double)
    args = [t.requires_grad_(True) for t in (cx, cy, r + 1, v)]
    assert torch.autograd.gradcheck(lambda a, b, c, d: _CapsuleChain.apply(a, b, c, d, 6, 7, 0.7), args,
                                    eps=1e-6, atol=1e-5)


def test_per_piece_windows_match_the_whole_canvas_in_value_and_gradient():
    p = strokes(12, seed=4).float()
    p[:3, 6] = p[:3, 8] = 0.05                     # thin strokes: windows much smaller than the canvas
    t = torch.rand(12, 40, 24)
    out = {}
    for crop in ("none", "hull", "pieces"):
        q = p.clone().requires_grad_(True)
        a = render_soft(q, 40, 24, segments=5, crop=crop)
        ((a - t) ** 2).sum().backward()
        out[crop] = (a.detach(), q.grad)
    for crop in ("hull", "pieces"):
        assert (out[crop][0] - out["none"][0]).abs().max() < 1e-4
        assert torch.allclose(out[crop][1], out["none"][1], rtol=1e-3, atol=1e-3)
    torch.manual_seed(1)
    cx, cy, r = (torch.rand(2, 4, dtype=torch.double) * 16 for _ in range(3))
    args = [t.requires_grad_(True) for t in (cx, cy, r + 1, torch.rand(2, 4, dtype=torch.double))]
    assert torch.autograd.gradcheck(lambda a, b, c, d: _CapsuleChainWindows.apply(a, b, c, d, 9, 12, 0.7),
                                    args, eps=1e-6, atol=1e-5)


def test_closed_form_colour_recovers_the_stroke_colour():
    p = strokes(1).float()
    alpha = render_hard(p, 32)[:, None]
    canvas = torch.rand(1, 3, 32, 32)
    col = torch.tensor([[0.9, 0.2, 0.4]])
    target = alpha * col[:, :, None, None] + (1 - alpha) * canvas
    assert torch.allclose(closed_form_color(canvas, alpha, target), col, atol=1e-4)
    act = torch.cat([p, torch.zeros(1, 3)], 1)
    new, _, _, painted = paint_bundle(AnalyticRenderer(size=32, soft=False), canvas, act, 1, target)
    assert torch.allclose(painted[0, 10:], col[0], atol=1e-4)
    assert torch.allclose(new, target, atol=1e-4)


def test_random_stroke_targets_are_deterministic_pictures():
    ds = RandomStrokeTargets(10, seed=2, size=32)
    a, b = ds[3], ds[3]
    assert a["image"].shape == (3, 32, 32) and torch.equal(a["image"], b["image"])
    assert not torch.equal(ds[3]["image"], ds[4]["image"])


@pytest.mark.parametrize("trainer", ["greedy", "rollout"])
def test_critic_free_trainers_learn_the_actor_without_a_critic(trainer):
    torch.manual_seed(0)
    cfg = tiny_agent_cfg("analytic", trainer=trainer, rollout_steps=2, reward_norm="initial",
                         color="closed_form", init_thickness=0.2, focus_reward="fg_improve", renderer_segments=4,
                         thickness_schedule=[0.6, 0.1])
    m = prepare_training(PaintingAgent(cfg, PaintingDataConfig(sources=["strokes", "synthetic"], length=16,
                                                               size=32)))
    assert "critic" not in m.networks() and m.frozen_networks() == {}
    z = torch.sigmoid(m.actor.fc.bias.view(cfg.bundle, 13)[:, 6])
    assert torch.allclose(z, torch.full_like(z, 0.2))            # strokes start mid-sized
    img = torch.rand(2, 3, 32, 32)
    fm17, _ = m.masks.masks(img, None, 32, 16)
    z_first = m.act(m.actor, torch.zeros_like(img), img, fm17, 0).view(2, cfg.bundle, 13)[..., 6]
    z_last = m.act(m.actor, torch.zeros_like(img), img, fm17, cfg.max_step).view(2, cfg.bundle, 13)[..., 6]
    assert torch.allclose(z_first, torch.full_like(z_first, 0.2 * 0.6), atol=0.02)   # capped: coarse to fine
    assert (z_last <= 0.1 + 1e-6).all()
    before = [p.clone() for p in m.actor.parameters()]
    opts = m.configure_optimizers(None)
    assert set(opts) == {"actor", "attention"}
    loader = iter(torch.utils.data.DataLoader(m.build_dataset("train"), batch_size=3))
    for _ in range(4):
        logs = m.training_step(next(loader), fake_context(m, opts))
    assert np.isfinite(float(logs["loss_actor"])) and "loss_critic" not in logs
    assert any(not a.equal(b) for a, b in zip(before, m.actor.parameters()))


def test_hard_version_big_strokes_take_the_disc_by_disc_path():
    p = strokes(6, seed=5)
    p[:, 6] = p[:, 8] = 0.9                     # thick: boxes too big for the all-discs-at-once test
    ref = rasterize_strokes(p.numpy(), 64)
    assert float(np.mean((render_hard(p, 64).double().numpy() - ref) ** 2)) < 1e-12


def test_ltp_baseline_on_the_greedy_trainer_trains_its_discriminator():
    torch.manual_seed(0)
    cfg = tiny_agent_cfg("analytic", trainer="greedy", reward="wgan", attention=False, feature_mask_input=False,
                         color="closed_form", renderer_segments=4)
    m = prepare_training(PaintingAgent(cfg, PaintingDataConfig(sources=["strokes"], length=16, size=32)))
    assert m.actor_channels() == 9
    opts = m.configure_optimizers(None)
    loader = iter(torch.utils.data.DataLoader(m.build_dataset("train"), batch_size=3))
    for _ in range(4):
        logs = m.training_step(next(loader), fake_context(m, opts))
    assert "loss_disc" in logs and np.isfinite(float(logs["loss_actor"]))


def test_patch_strokes_map_to_the_same_pixels_on_the_full_canvas():
    from condsynth.pipelines.paint import _grid, rescale_thickness, to_canvas
    p = strokes(5, seed=7).float()
    p[:, 6:10:2] *= 0.3
    st = torch.cat([p, torch.rand(5, 3)], 1)
    full = to_canvas(st, 16, 32, 32, 32, 48, 80, 32)         # the 32x32 patch at row 16, column 32
    big = render_hard(full, 48, 80)
    assert torch.allclose(big[:, 16:48, 32:64], render_hard(p, 32), atol=1e-6)
    # a quarter global, the rest on ~n/100 near-square patches
    assert _grid(400, 128, 128) == (100, 300, 2, 2)
    assert _grid(10, 64, 64) == (10, 0, 0, 0)
    # thickness found on a 128 canvas keeps its pixel radius on a 512 one
    z = torch.tensor([[0.0] * 6 + [0.2, 1.0, 0.1, 1.0]])
    r128 = 1 + 64 * z[0, 6]
    assert torch.isclose(1 + 256 * rescale_thickness(z, 128, 512)[0, 6], r128 * 4)
