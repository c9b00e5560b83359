"""Inception Score (Salimans et al. 2016; thesis Eq. 2.12) from classifier logits.

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x) over the split.

Protocol (OpenAI / StackGAN / HDGAN evaluation code): the N predictions are cut, in order, into
``splits`` (10) consecutive equal parts of ``N // splits`` (a remainder is dropped, as there);
IS is computed per part and reported as the mean and (population) std over the parts. For the
StackGAN fine-tuned CUB / Oxford models, class 0 is a background logit dropped before the softmax
(``drop_first_logit``).
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric

from condsynth.errors import UserError
from condsynth.metrics.base import scalar


def inception_score_from_logits(logits, splits: int = 10, drop_first_logit: bool = False) -> tuple[float, float]:
    """IS mean and std over ``splits`` consecutive parts of the ``N x K`` logits."""
    z = np.asarray(logits, dtype=np.float64)
    if drop_first_logit:
        z = z[:, 1:]
    n = z.shape[0]
    if splits < 1 or n < splits:
        raise UserError(f"Inception Score with {splits} splits needs at least {splits} images, got {n}")
    z = z - z.max(1, keepdims=True)                       # stable log-softmax
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    part = n // splits
    scores = []
    for k in range(splits):
        lp = logp[k * part:(k + 1) * part]
        p = np.exp(lp)
        log_py = np.log(p.mean(0))                       # log of the split's marginal p(y)
        kl = (p * (lp - log_py)).sum(1)                  # KL(p(y|x) || p(y)) per image
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


class InceptionScore(Metric):
    """Accumulates logits (concatenated across processes under DDP); ``compute()`` -> ``{'is_mean', 'is_std'}``.

    >>> import torch
    >>> confident = torch.full((20, 10), -1e4)
    >>> confident[torch.arange(20), torch.arange(20) % 10] = 0.0   # sure of one class, all classes used
    >>> m = InceptionScore(splits=2)
    >>> m.update(logits=confident)
    >>> {k: round(float(v), 4) for k, v in m.compute().items()}
    {'is_mean': 10.0, 'is_std': 0.0}
    """

    higher_is_better = True
    full_state_update = False

    def __init__(self, logits_fn=None, splits: int = 10, drop_first_logit: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.logits_fn = logits_fn
        self.splits, self.drop_first_logit = splits, drop_first_logit
        self.add_state("logits", [], dist_reduce_fx="cat")

    def update(self, images: torch.Tensor | None = None, *, logits: torch.Tensor | None = None) -> None:
        """Add a batch of ``images`` (through ``logits_fn``) or of precomputed ``logits``."""
        if logits is None:
            if self.logits_fn is None:
                raise RuntimeError("InceptionScore was built without logits_fn; pass logits=...")
            logits = self.logits_fn(images)
        self.logits.append(torch.as_tensor(logits).to(torch.float64))

    def compute(self) -> dict[str, torch.Tensor]:
        z = torch.cat(self.logits) if isinstance(self.logits, list) else self.logits
        mean, std = inception_score_from_logits(z.cpu().numpy(), self.splits, self.drop_first_logit)
        return {"is_mean": scalar(mean), "is_std": scalar(std)}
