"""Adversarial objectives on (patch) discriminator outputs.

All modes take raw logits (or critic scores) and average over every element, so a PatchGAN's
logit map is "each overlapping patch judged real or fake" (pix2pix §3.2.2). ``target`` may be a
bool or a map of the logits' shape (for per-patch targets such as inpainting's hole-aware maps);
``weight`` an optional map multiplying the per-element loss.

- vanilla (non-saturating): L_D = -E log D(real) - E log(1 - D(fake));  L_G = -E log D(fake)
- lsgan:  L_D = E (D(real) - 1)^2 + E D(fake)^2;  L_G = E (D(fake) - 1)^2
- hinge:  L_D = E relu(1 - D(real)) + E relu(1 + D(fake));  L_G = -E D(fake)
- wgan:   L_D = -E D(real) + E D(fake);  L_G = -E D(fake)  (add ``gradient_penalty`` for WGAN-GP)

Discriminators that return a list (multi-scale) or feature lists (last entry = logits) are
handled by averaging the loss over scales.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

GANMode = Literal["vanilla", "lsgan", "hinge", "wgan"]


def _logits(pred):
    """Accept a tensor, a feature list (logits last) or a list of either (one per scale)."""
    if isinstance(pred, torch.Tensor):
        return [pred]
    out = []
    for p in pred:
        out.append(p[-1] if isinstance(p, (list, tuple)) else p)
    return out


class GANLoss(nn.Module):
    def __init__(self, mode: GANMode = "vanilla", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        if mode not in ("vanilla", "lsgan", "hinge", "wgan"):
            raise ValueError(f"unknown GAN loss mode '{mode}'")
        self.mode = mode
        self.real_label = real_label
        self.fake_label = fake_label

    def _single(self, pred: torch.Tensor, target, for_discriminator: bool, weight) -> torch.Tensor:
        pred = pred.float()
        if isinstance(target, bool):
            target_map = torch.full_like(pred, self.real_label if target else self.fake_label)
        else:
            target_map = target.to(pred).expand_as(pred)
        if self.mode == "vanilla":
            loss = F.binary_cross_entropy_with_logits(pred, target_map, reduction="none")
        elif self.mode == "lsgan":
            loss = (pred - target_map) ** 2
        elif self.mode == "hinge":
            if not for_discriminator:
                loss = -pred  # the generator's hinge loss is the plain score
            else:
                sign = target_map * 2 - 1  # +1 where real, -1 where fake
                loss = F.relu(1 - sign * pred)
        else:  # wgan
            sign = target_map * 2 - 1
            loss = -sign * pred
        if weight is not None:
            loss = loss * weight.to(loss)
        return loss.mean()

    def forward(self, pred, target: bool | torch.Tensor, for_discriminator: bool = True,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        preds = _logits(pred)
        return sum(self._single(p, target, for_discriminator, weight) for p in preds) / len(preds)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, condition: torch.Tensor | None = None,
                     center: float = 1.0) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017, Eq. 3): E[(||grad_x D(x_hat)||_2 - 1)^2] on random
    interpolates x_hat between real and fake samples. Multiply by lambda (10 in the paper)."""
    alpha = torch.rand(real.size(0), *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    inp = x_hat if condition is None else torch.cat([condition, x_hat], 1)
    scores = _logits(critic(inp))
    grads = torch.autograd.grad(sum(s.sum() for s in scores), x_hat, create_graph=True)[0]
    return ((grads.flatten(1).norm(2, dim=1) - center) ** 2).mean()
