"""The stroke-recovery loss (models/painting/imitation.py) and its place in the greedy trainer."""

from __future__ import annotations

import numpy as np
import torch

from condsynth.data.painting import PaintingDataConfig
from condsynth.models.painting.agent import PaintingAgent
from condsynth.models.painting.imitation import _greedy_pairing, matched_stroke_loss, sample_demo_strokes
from condsynth.testing import fake_context, prepare_training
from painting_helpers import tiny_agent_cfg


def test_demo_strokes_respect_the_thickness_cap_and_the_unit_box():
    cap = torch.tensor([0.6, 0.1, 0.02])
    s = sample_demo_strokes(3, 5, cap, generator=torch.Generator().manual_seed(0))
    assert s.shape == (3, 5, 13) and s.min() >= 0 and s.max() <= 1
    z = s[..., [6, 8]]
    assert (z <= cap.view(3, 1, 1) + 1e-7).all() and (z >= 0.3 * cap.view(3, 1, 1) - 1e-7).all()
    assert (s[..., [7, 9]] >= 0.6).all()


def test_matched_loss_ignores_bundle_order_and_stroke_direction():
    g = torch.Generator().manual_seed(1)
    cap = torch.full((4,), 0.5)
    true = sample_demo_strokes(4, 5, cap, generator=g)
    assert float(matched_stroke_loss(true.clone(), true, cap, with_color=True)) < 1e-7
    shuffled = true[:, torch.tensor([3, 0, 4, 1, 2])]
    reversed_ = shuffled[..., [4, 5, 2, 3, 0, 1, 8, 9, 6, 7, 10, 11, 12]]
    assert float(matched_stroke_loss(reversed_, true, cap, with_color=True)) < 1e-7
    other = sample_demo_strokes(4, 5, cap, generator=g)
    assert float(matched_stroke_loss(other, true, cap, with_color=True)) > 0.05


def test_matched_loss_is_the_best_pairing_and_ignores_colour_when_asked():
    cap = torch.ones(1)
    true = torch.zeros(1, 2, 13)
    true[0, 1, :6] = 1.0
    pred = true[:, [1, 0]].clone()
    pred[..., 10:] = 0.7                                     # colours wrong, shapes right
    assert float(matched_stroke_loss(pred, true, cap, with_color=False)) < 1e-7
    assert abs(float(matched_stroke_loss(pred, true, cap, with_color=True)) - 0.7 * 3 / 13) < 1e-6
    # the gradient reaches the prediction through the chosen pairing only
    pred = pred.requires_grad_(True)
    matched_stroke_loss(pred, true, cap, with_color=True).backward()
    assert pred.grad[..., :10].abs().max() == 0 and pred.grad[..., 10:].abs().min() > 0


def test_greedy_pairing_is_a_permutation_for_big_bundles():
    cost = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2))
    best = _greedy_pairing(cost)
    assert all(sorted(row.tolist()) == list(range(8)) for row in best)
    true = sample_demo_strokes(2, 8, torch.ones(2))
    assert float(matched_stroke_loss(true.flip(1), true, torch.ones(2), with_color=True)) < 1e-7


def test_greedy_trainer_with_the_recovery_loss_learns_to_recover_strokes():
    torch.manual_seed(0)
    cfg = tiny_agent_cfg("analytic", trainer="greedy", reward_norm="current", color="closed_form",
                         init_thickness=0.3, focus_reward="fg_improve", renderer_segments=4,
                         thickness_schedule=[0.6, 0.1], imitation_weight=1.0, reward_weight=0.0, actor_lr=3e-3)
    m = prepare_training(PaintingAgent(cfg, PaintingDataConfig(sources=["strokes"], length=200, size=32)))
    opts = m.configure_optimizers(None)
    loader = iter(torch.utils.data.DataLoader(m.build_dataset("train"), batch_size=4))
    ctx = fake_context(m, opts)
    first, last = [], []
    for i in range(40):
        logs = m.training_step(next(loader), ctx)
        if "loss_recover" in logs:
            (first if len(first) < 5 else last).append(float(logs["loss_recover"]))
    assert len(first) == 5 and np.isfinite(last).all()
    assert np.mean(last[-5:]) < np.mean(first)             # it learns to read strokes off the target


def test_spatial_actor_outputs_strokes_like_the_fc_actor_and_learns_where_a_dot_is():
    from condsynth.models.painting.spatial_actor import SpatialActor
    torch.manual_seed(0)
    net = SpatialActor(4, k=2, width=8)
    net.init_stroke_bias(0.3, 0.9)
    x = torch.zeros(16, 4, 32, 32)
    a = torch.sigmoid(net(x)).view(16, 2, 13)
    assert a.shape == (16, 2, 13) and torch.allclose(a[..., 6], torch.full_like(a[..., 6], 0.3), atol=0.05)
    # where: one bright dot per image; P0 of both strokes should go to it
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)

    def batch():
        pos = torch.rand(16, 2, generator=g) * 0.8 + 0.1
        img = torch.zeros(16, 4, 32, 32)
        ij = (pos * 32).long().clamp(0, 31)
        img[torch.arange(16), 0, ij[:, 1], ij[:, 0]] = 1.0
        img[:, 1:3] = torch.stack(torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij"))
        return img, (ij.float() + 0.5) / 32

    def err():
        net.eval()
        with torch.no_grad():
            img, pos = batch()
            e = (torch.sigmoid(net(img)).view(16, 2, 13)[..., 0:2] - pos[:, None]).abs().mean()
        net.train()
        return float(e)

    before = err()
    for _ in range(120):
        img, pos = batch()
        loss = (torch.sigmoid(net(img)).view(16, 2, 13)[..., 0:2] - pos[:, None]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = err()
    assert after < 0.5 * before and after < 0.08, (before, after)
