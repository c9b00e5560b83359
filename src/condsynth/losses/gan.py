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
handled by averaging the loss over scales (``scale_reduction="mean"``, the default) or by summing it
(``"sum"``: NVIDIA/pix2pixHD's ``GANLoss.__call__`` adds the losses of its discriminators, so with
three scales the adversarial term is 3x the mean; use it for pix2pixHD and EDN).

:func:`joint_d_loss` and :func:`joint_g_loss` are the matching-aware losses of a joint
unconditional/conditional discriminator (StackGAN++, AttnGAN; the thesis's Eq. 3.3/3.4, 4.6-4.9
and 5.8/5.10), see :class:`condsynth.nn.discriminators.JointDiscriminator`.
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
    def __init__(self, mode: GANMode = "vanilla", real_label: float = 1.0, fake_label: float = 0.0,
                 scale_reduction: Literal["mean", "sum"] = "mean"):
        super().__init__()
        if mode not in ("vanilla", "lsgan", "hinge", "wgan"):
            raise ValueError(f"unknown GAN loss mode '{mode}'")
        if scale_reduction not in ("mean", "sum"):
            raise ValueError(f"unknown scale_reduction '{scale_reduction}' (mean, sum)")
        self.mode = mode
        self.scale_reduction = scale_reduction
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
        total = sum(self._single(p, target, for_discriminator, weight) for p in preds)
        return total / len(preds) if self.scale_reduction == "mean" else total


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, condition: torch.Tensor | None = None,
                     center: float = 1.0) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017, Eq. 3): E[(||grad_x D(x_hat)||_2 - 1)^2] on random
    interpolates x_hat between real and fake samples. Multiply by lambda (10 in the paper).

    ``critic`` is any callable of one batch, e.g. ``lambda x: d(x[:, :3], x[:, 3:])`` for a critic
    of (target, canvas) pairs whose penalty is taken on the whole 6-channel interpolate."""
    alpha = torch.rand(real.size(0), *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    inp = x_hat if condition is None else torch.cat([condition, x_hat], 1)
    scores = _logits(critic(inp))
    grads = torch.autograd.grad(sum(s.sum() for s in scores), x_hat, create_graph=True)[0]
    return ((grads.flatten(1).norm(2, dim=1) - center) ** 2).mean()



class ImagePool:
    """The history of generated images a discriminator is shown (Shrivastava et al. 2017; CycleGAN §4;
    junyanz/pytorch-CycleGAN-and-pix2pix ``util/image_pool.py``), applied image by image:

    - while fewer than ``size`` images are stored: store the new image and return it;
    - once full: with probability 1/2 return a random stored image and store the new one in its place,
      otherwise return the new image.

    ``size`` 0 returns the batch unchanged. The random choices come from the global torch RNG (which the
    engine checkpoints), so a resumed run draws the same ones. :meth:`state_dict` is tensors and ints
    (pickle-free): the stored images on the CPU and how many there are.
    """

    def __init__(self, size: int = 50):
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand(())) > 0.5:
                k = int(torch.randint(self.size, ()))
                out.append(self.images[k].to(image))
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        images = torch.stack([img.cpu() for img in self.images]) if self.images else torch.zeros(0)
        return {"size": self.size, "n": len(self.images), "images": images}

    def load_state_dict(self, state: dict) -> None:
        if int(state["size"]) != self.size:
            raise ValueError(f"image pool of size {state['size']} cannot be loaded into one of size {self.size}")
        self.images = [img.clone() for img in state["images"][: int(state["n"])]]

# ------------------------------------------------------------------------------------------------------------------
# Joint (unconditional + conditional, matching-aware) adversarial losses
# ------------------------------------------------------------------------------------------------------------------
# One D with two heads (StackGAN++ "joint conditional and unconditional distribution approximation"; AttnGAN), as the
# thesis uses for HfGAN (§3.4.1), LDcGAN's D_G (§4.3.2) and AVWnet's D_0/D_1 (§5.3.3). The arguments are *logits*
# of the heads of :class:`condsynth.nn.discriminators.JointDiscriminator`:
#
#   argument  D input                        HfGAN Eq. 3.3       LDcGAN Eq. 4.6 / 4.8          AVWnet Eq. 5.8
#   real_u    real image                     D(t_i)              D_G(I^GT) / D_G(I)            D_i(I_j)
#   fake_u    generated image                D(t^_i)             D_G(I*) / D_G(I_r)            D_i(I^_j)
#   real_c    (real, its condition)          D(t_i | I_s)        D_G(I^GT, s_t) / D_G(I, s_r)  D_i(I_j, A_j)
#   fake_c    (generated, its condition)     D(t^_i | I_s)       D_G(I*, s_t) / D_G(I_r, s_r)  D_i(I^_j, A_j)
#   wrong_c   (real, a mismatched condition) D(t_i | I^_s)       - (no such term)              D_i(I_j, A^_{j+1})
#
# Weights of the D loss, with BCE(x, y) = binary cross-entropy on logits, batch-averaged:
#   "thesis"  (Eq. 3.3, 4.6, 4.8, 5.8): each head's terms are averaged, the two heads added:
#             1/2 [BCE(real_u, 1) + BCE(fake_u, 0)] + 1/k [BCE(real_c, 1) + BCE(fake_c, 0) (+ BCE(wrong_c, 0))],
#             k = 3 with the mismatched pair (HfGAN, AVWnet: 1/2 and 1/3 as printed), k = 2 without it (LDcGAN: all 1/2).
#   "attngan" (taoxugit/AttnGAN code/miscc/losses.py discriminator_loss): the real terms are averaged and the fake
#             terms are averaged, the two added:
#             (BCE(real_u, 1) + BCE(real_c, 1)) / 2 + (BCE(fake_u, 0) + BCE(fake_c, 0) + BCE(wrong_c, 0)) / 3, and
#             without the unconditional head BCE(real_c, 1) + (BCE(fake_c, 0) + BCE(wrong_c, 0)) / 2 (the wrong pair
#             weighted 1/2). So BCE(real_c, 1) weighs 1/2 (thesis 1/3) and BCE(fake_u, 0) 1/3 (thesis 1/2).
# G loss (non-saturating, -log D(fake)):
#   "thesis"  (Eq. 3.4, 5.10; LDcGAN Eq. 4.7/4.9 read as the spec does): 1/2 BCE(fake_u, 1) + 1/2 BCE(fake_c, 1).
#   "attngan" (generator_loss): BCE(fake_u, 1) + BCE(fake_c, 1), unhalved.
# With one head missing (None) only the other's terms remain, each averaged as above.
#
# Where the seed (the thesis text) and the spec differ:
# - Eq. 3.3/3.4 write sums over the samples (sum_i); Eq. 4.6-4.9 and 5.8/5.10 write expectations for the same design,
#   the spec says "batch-averaged". The thesis is inconsistent with itself here, so both are offered:
#   `reduction="mean"` (the default; AttnGAN's code too) or `"sum"` (Eq. 3.3/3.4 as printed: B times the mean, which
#   Adam nearly ignores but SGD does not).
# - Eq. 4.7/4.9 print the G loss as the minimax value, log D([C_t, I*]) + log(1 - D([C_t, G_f(I)])), the conditional
#   head only. Its G-dependent term is the saturating log(1 - D(fake)): `saturating=True`, with `fake_u=None` for the
#   conditional-only form as printed. The default is the non-saturating -log D of the thesis's own Eq. 3.4 and 5.10,
#   which the spec recommends for LDcGAN too.
# - Eq. 4.9 writes C_t in the dual G loss where Eq. 4.8's dual D loss has s_r; the spec (§4.6) reads C_s, since I_r is
#   generated at the source age. The losses take logits, so the condition is the caller's choice.

JointWeights = Literal["thesis", "attngan"]


def _bce(logits: torch.Tensor, real: bool, reduction: str) -> torch.Tensor:
    logits = logits.float()
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target, reduction=reduction)


def _check_joint(weights: str, reduction: str) -> None:
    if weights not in ("thesis", "attngan"):
        raise ValueError(f"unknown joint loss weights '{weights}' (thesis, attngan)")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"unknown reduction '{reduction}' (mean, sum)")


def joint_d_loss(real_u: torch.Tensor | None, fake_u: torch.Tensor | None, real_c: torch.Tensor | None,
                 fake_c: torch.Tensor | None, wrong_c: torch.Tensor | None = None, weights: JointWeights = "thesis",
                 reduction: Literal["mean", "sum"] = "mean") -> torch.Tensor:
    """Discriminator loss of a joint unconditional/conditional D (thesis Eq. 3.3, 4.6, 4.8, 5.8; see the table
    above). Pass the fake logits of a detached generator output. ``real_u``/``fake_u`` (the unconditional pair) or
    ``real_c``/``fake_c`` (the conditional pair) may both be None; ``wrong_c`` may have fewer samples (AttnGAN pairs
    ``real[:-1]`` with ``c[1:]``, B - 1 wrong pairs)."""
    _check_joint(weights, reduction)
    if (real_u is None) != (fake_u is None) or (real_c is None) != (fake_c is None):
        raise ValueError("real_u/fake_u and real_c/fake_c come in pairs: give both or neither")
    if real_c is None and (wrong_c is not None or real_u is None):
        raise ValueError("joint_d_loss needs the unconditional pair, the conditional pair or both; wrong_c needs the "
                         "conditional pair")
    uncond = [] if real_u is None else [_bce(real_u, True, reduction), _bce(fake_u, False, reduction)]
    cond = [] if real_c is None else [_bce(real_c, True, reduction), _bce(fake_c, False, reduction)]
    if wrong_c is not None:
        cond.append(_bce(wrong_c, False, reduction))
    if weights == "thesis":
        groups = [uncond, cond]
    else:  # attngan: the real terms against the fake terms
        groups = [uncond[:1] + cond[:1], uncond[1:] + cond[1:]]
    return sum(sum(g) / len(g) for g in groups if g)


def joint_g_loss(fake_u: torch.Tensor | None, fake_c: torch.Tensor | None, weights: JointWeights = "thesis",
                 reduction: Literal["mean", "sum"] = "mean", saturating: bool = False) -> torch.Tensor:
    """Generator loss against a joint D (thesis Eq. 3.4, 4.7, 4.9, 5.10; see the table above): the logits of the
    generated images through the unconditional and the conditional head (either may be None). Non-saturating
    ``-log D(fake)`` by default; ``saturating=True`` minimises ``log(1 - D(fake))`` (the minimax form printed in
    Eq. 4.7/4.9)."""
    _check_joint(weights, reduction)
    logits = [x for x in (fake_u, fake_c) if x is not None]
    if not logits:
        raise ValueError("joint_g_loss needs fake_u, fake_c or both")
    terms = [-_bce(x, False, reduction) if saturating else _bce(x, True, reduction) for x in logits]
    total = sum(terms)
    return total / len(terms) if weights == "thesis" else total
