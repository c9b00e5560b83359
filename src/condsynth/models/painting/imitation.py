"""Self-supervised stroke recovery: a dense teaching signal for the painting actor (our addition).

Why: the greedy and DDPG actors learn where to put a stroke only from the renderer's gradient, and
that gradient exists only where a stroke already overlaps the error (its soft edge is a pixel or
two wide). Late in an episode strokes are thin, so almost none of them touch the error they
should fix: the actor stops depending on its input and paints the same strokes everywhere
(docs/painting.md, the overfit check). The thesis's critic, trained for 24-70 GPU-hours, is what
makes up for it there; a CPU has no such budget.

What: from a replayed canvas C_t, draw k random strokes s* (thickness within the coarse-to-fine
cap of step t), paint them onto C_t, and call the result the target I* = T(C_t, s*). Then s* is a
correct action for the state (C_t, I*, t), known exactly, and the actor is taught to recover it:
the L1 distance between its k strokes and the k drawn ones under the best pairing (strokes of a
bundle have no order, and a curve drawn from its end is the same curve). The same idea trains
Paint Transformer's stroke predictor (Liu et al., ICCV 2021) without any reinforcement learning;
here it is an auxiliary loss beside the thesis's reward, weighted by ``imitation_weight``.
"""

from __future__ import annotations

import itertools

import torch

from condsynth.data.synth.strokes import STROKE_PARAMS

# the stroke read from its other end: P2 P1 P0 and the two ends' thickness and opacity swapped
_REVERSED = [4, 5, 2, 3, 0, 1, 8, 9, 6, 7, 10, 11, 12]


def sample_demo_strokes(b: int, k: int, thickness_cap: torch.Tensor, generator=None) -> torch.Tensor:
    """``b x k x 13`` random strokes in the actor's output space ([0, 1], thickness already capped).

    ``thickness_cap``: ``b`` caps of z (the coarse-to-fine schedule at each state's t; 1 without a
    schedule). P0 is uniform over the canvas, P2 within a stroke length of it (longer for thick
    strokes, as a painter's broad strokes are long), P1 near their middle; opacity 0.6-1; colour
    uniform (the closed-form colour rule replaces it when the target is painted)."""
    dev = thickness_cap.device
    u = torch.rand(b, k, STROKE_PARAMS, generator=generator).to(dev)
    cap = thickness_cap.view(b, 1)
    s = torch.empty(b, k, STROKE_PARAMS, device=dev)
    p0 = 0.05 + 0.9 * u[..., 0:2]
    length = (0.05 + 0.35 * u[..., 2:3]) * (0.35 + cap.unsqueeze(-1))     # longer for thick strokes
    ang = u[..., 3:4] * (2 * torch.pi)
    p2 = (p0 + length * torch.cat([ang.cos(), ang.sin()], -1)).clamp(0.02, 0.98)
    bend = (u[..., 4:6] - 0.5) * 0.5 * length
    s[..., 0:2], s[..., 4:6] = p0, p2
    s[..., 2:4] = ((p0 + p2) / 2 + bend).clamp(0, 1)
    s[..., 6] = cap * (0.3 + 0.7 * u[..., 6])                              # z0, z1 under the cap
    s[..., 8] = cap * (0.3 + 0.7 * u[..., 8])
    s[..., 7] = 0.6 + 0.4 * u[..., 7]                                      # v0, v1
    s[..., 9] = 0.6 + 0.4 * u[..., 9]
    s[..., 10:13] = u[..., 10:13]
    return s


def _pair_costs(pred: torch.Tensor, true: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``b x k x k`` L1 cost of predicted stroke i against drawn stroke j, the better of both
    directions of the drawn one."""
    p = pred.unsqueeze(2)                                            # b k 1 13
    fwd = ((p - true.unsqueeze(1)).abs() * weights).sum(-1)          # b k k
    rev = ((p - true[..., _REVERSED].unsqueeze(1)).abs() * weights).sum(-1)
    return torch.minimum(fwd, rev)


_PERMS: dict[int, torch.Tensor] = {}


def matched_stroke_loss(pred: torch.Tensor, true: torch.Tensor, thickness_cap: torch.Tensor,
                        with_color: bool) -> torch.Tensor:
    """Mean L1 between ``b x k x 13`` predicted and drawn strokes under the best of the k! pairings
    (exact search: 120 pairings for LTP's k = 5; larger bundles fall back to a greedy pairing).

    Thickness differences are divided by the state's cap, so a thin stroke's width counts as much
    as a thick one's; colour counts only when the actor chooses it (``with_color``)."""
    b, k, _ = pred.shape
    w = torch.ones(b, 1, 1, STROKE_PARAMS, device=pred.device, dtype=pred.dtype)
    w[..., [6, 8]] = 1.0 / thickness_cap.clamp_min(1e-3).view(b, 1, 1, 1)
    if not with_color:
        w[..., 10:] = 0
    cost = _pair_costs(pred, true, w)                                # b k k, differentiable
    with torch.no_grad():
        if k <= 6:
            perms = _PERMS.get(k)
            if perms is None:
                perms = _PERMS[k] = torch.tensor(list(itertools.permutations(range(k))))
            perms = perms.to(pred.device)
            # total cost of each pairing: sum_i cost[i, perm[i]]
            rows = torch.arange(k, device=pred.device)
            totals = cost[:, rows[None, :], perms].sum(-1)           # b x k!
            best = perms[totals.argmin(1)]                           # b x k
        else:
            best = _greedy_pairing(cost)
    picked = cost.gather(2, best.unsqueeze(-1)).squeeze(-1)          # b x k
    return picked.mean() / (STROKE_PARAMS if with_color else STROKE_PARAMS - 3)   # per parameter


def _greedy_pairing(cost: torch.Tensor) -> torch.Tensor:
    b, k, _ = cost.shape
    c = cost.clone()
    best = torch.empty(b, k, dtype=torch.long, device=cost.device)
    ar = torch.arange(b, device=cost.device)
    for _ in range(k):
        flat = c.flatten(1).argmin(1)
        i, j = flat // k, flat % k
        best[ar, i] = j
        c[ar, i, :] = float("inf")
        c[ar, :, j] = float("inf")
    return best
