"""LearningToPaint's reward critic and its WGAN-GP (nn/discriminators.py, losses/gan.py)."""

from __future__ import annotations

import torch

from condsynth.losses.gan import gradient_penalty
from condsynth.nn.discriminators import LTPCritic


def test_ltp_critic_scores_pairs():
    d = LTPCritic()
    target, canvas = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64)
    assert d(target, canvas).shape == (3,)
    assert len([m for m in d.net if isinstance(m, torch.nn.Conv2d)]) == 5


def test_gradient_penalty_of_a_pair_critic_on_the_six_channel_interpolate():
    torch.manual_seed(0)
    d = LTPCritic()
    target, canvas = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    real_in, fake_in = torch.cat([target, target], 1), torch.cat([target, canvas], 1)
    torch.manual_seed(1)
    gp = gradient_penalty(lambda x: d(x[:, :3], x[:, 3:]), real_in, fake_in)
    torch.manual_seed(1)                                            # the same interpolate, by hand
    eps = torch.rand(2, 1, 1, 1)
    mix = (eps * real_in + (1 - eps) * fake_in).requires_grad_(True)
    g = torch.autograd.grad(d(mix[:, :3], mix[:, 3:]).sum(), mix)[0]
    torch.testing.assert_close(gp, ((g.flatten(1).norm(dim=1) - 1) ** 2).mean())
    gp.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())   # it trains the critic
