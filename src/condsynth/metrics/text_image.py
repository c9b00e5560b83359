"""Text-image consistency: VS similarity (HDGAN; thesis §2.6.4) and R-precision (AttnGAN), pluggable encoders.

**VS similarity** (spec-hfgan-ldcgan §2.4): images and captions are mapped into a joint 512-d space
by two linear projections ``f_v`` and ``f_t`` on top of frozen encoders, trained on real pairs with
the bidirectional ranking loss (margin delta = 0.2, summed over in-batch negatives)::

    sum_v sum_{t'} max(0, d - c(f_v(v), f_t(t_v)) + c(f_v(v), f_t(t')))
  + sum_t sum_{v'} max(0, d - c(f_t(t), f_v(v_t)) + c(f_t(t), f_v(v')))

The score is ``c(x, y) = x.y / (|x| |y|)`` between a generated image and its caption, reported as
mean and std over *all* test images (not over splits; hence HDGAN's large +-).

HDGAN's released VS models (Inception-ResNet-v2 + char-CNN-RNN) are not obtainable offline, so
the encoders are arguments: any callables mapping an image batch / a list of captions to feature
tensors (the DAMSM encoders by default, per the spec). Results from other encoders are labelled
with their names and are **not comparable** with the thesis' Table 3.2.

**R-precision** (Xu et al., AttnGAN 2018): for each generated image, its own caption and 99
randomly drawn captions of *other* items are ranked by cosine similarity in the joint space;
R-precision with R = 1 is the share of images whose own caption ranks first. Reported as mean and
std over 10 consecutive splits (as the IS protocol), with the seed of the candidate draws.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric

from condsynth.errors import UserError
from condsynth.metrics.base import MeanStdMetric, scalar

VS_DIM = 512
VS_MARGIN = 0.2


class VSEmbedding(nn.Module):
    """Frozen image / text encoders + trainable linear projections to an L2-normalised joint space."""

    def __init__(self, image_encoder: Callable[[torch.Tensor], torch.Tensor],
                 text_encoder: Callable[[Sequence[str]], torch.Tensor],
                 image_dim: int, text_dim: int, dim: int = VS_DIM, name: str = "custom"):
        super().__init__()
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        for enc in (image_encoder, text_encoder):
            if isinstance(enc, nn.Module):
                enc.requires_grad_(False)
        self.f_v = nn.Linear(image_dim, dim)
        self.f_t = nn.Linear(text_dim, dim)
        self.name = name

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats = self.image_encoder(images)
        return F.normalize(self.f_v(feats.float()), dim=1)

    def embed_texts(self, captions: Sequence[str]) -> torch.Tensor:
        with torch.no_grad():
            feats = self.text_encoder(captions)
        return F.normalize(self.f_t(feats.float()), dim=1)


def bidirectional_ranking_loss(v: torch.Tensor, t: torch.Tensor, margin: float = VS_MARGIN) -> torch.Tensor:
    """HDGAN's loss for a batch of matching pairs (row i of ``v`` matches row i of ``t``), both L2-normalised."""
    scores = v @ t.T                                     # c(v_i, t_j)
    pos = scores.diagonal()
    off = ~torch.eye(len(v), dtype=torch.bool, device=v.device)
    cost_captions = (margin - pos[:, None] + scores).clamp_min(0)[off]  # image anchor, wrong captions
    cost_images = (margin - pos[None, :] + scores).clamp_min(0)[off]    # caption anchor, wrong images
    return cost_captions.sum() + cost_images.sum()


def train_vs_projections(model: VSEmbedding, batches, epochs: int = 1, lr: float = 2e-4,
                         betas=(0.5, 0.999), margin: float = VS_MARGIN) -> list[float]:
    """Train ``f_v``/``f_t`` on ``(images, captions)`` batches of *real* pairs; returns the loss per step.

    Adam(lr 2e-4, betas (0.5, 0.999)) as HDGAN's VS training; the encoders stay frozen.
    """
    opt = torch.optim.Adam(list(model.f_v.parameters()) + list(model.f_t.parameters()), lr=lr, betas=betas)
    losses = []
    for _ in range(epochs):
        for images, captions in batches:
            loss = bidirectional_ranking_loss(model.embed_images(images), model.embed_texts(captions), margin)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
    return losses


def vs_similarity(img_emb, txt_emb) -> tuple[float, float]:
    """Mean and std over pairs of the cosine between matching image and caption embeddings."""
    cos = F.cosine_similarity(torch.as_tensor(img_emb, dtype=torch.float64),
                              torch.as_tensor(txt_emb, dtype=torch.float64), dim=1)
    return float(cos.mean()), float(cos.std(unbiased=False))


def r_precision(img_emb, txt_emb, *, candidates: int = 100, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """AttnGAN R-precision (R = 1): mean and std over ``splits`` consecutive parts."""
    v = F.normalize(torch.as_tensor(img_emb, dtype=torch.float64), dim=1)
    t = F.normalize(torch.as_tensor(txt_emb, dtype=torch.float64), dim=1)
    n = len(v)
    if candidates < 2:
        raise UserError(f"R-precision needs at least 2 candidates (the own caption and another), got {candidates}")
    if n < candidates:
        raise UserError(f"R-precision with {candidates} candidates needs at least {candidates} image-caption "
                        f"pairs, got {n}")
    if n < splits:
        raise UserError(f"R-precision with {splits} splits needs at least {splits} pairs, got {n}")
    rng = np.random.default_rng(seed)
    hits = np.empty(n, dtype=bool)
    for i in range(n):
        # 99 mismatched captions drawn from the other items, without replacement.
        others = rng.choice(n - 1, candidates - 1, replace=False)
        others = others + (others >= i)                # skip index i itself
        cand = torch.cat([t[i:i + 1], t[torch.from_numpy(others)]])
        sims = cand @ v[i]
        hits[i] = bool(sims[0] > sims[1:].max())       # ties count as a miss
    part = n // splits
    scores = [hits[k * part:(k + 1) * part].mean() for k in range(splits)]
    return float(np.mean(scores)), float(np.std(scores))


class VSSimilarity(MeanStdMetric):
    """Accumulates cosines of matching pairs; ``compute()`` -> ``{'mean', 'std', 'n'}`` over all pairs."""

    higher_is_better = True
    score_names = ("cosine",)

    def scores(self, img_emb: torch.Tensor, txt_emb: torch.Tensor) -> torch.Tensor:
        """Cosine of each matching pair (``update`` takes the same)."""
        return F.cosine_similarity(img_emb.double(), txt_emb.double(), dim=1)

    def compute(self) -> dict[str, torch.Tensor]:
        s = self.summary("cosine")
        return {"mean": s["mean"], "std": s["std"], "n": s["n"]}


class RPrecision(Metric):
    """Accumulates embeddings (concatenated across processes);
    ``compute()`` -> ``{'r_precision_mean', 'r_precision_std'}``."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, candidates: int = 100, splits: int = 10, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.candidates, self.splits, self.seed = candidates, splits, seed
        self.add_state("img", [], dist_reduce_fx="cat")
        self.add_state("txt", [], dist_reduce_fx="cat")

    def update(self, img_emb: torch.Tensor, txt_emb: torch.Tensor) -> None:
        self.img.append(img_emb.detach().double())
        self.txt.append(txt_emb.detach().double())

    def compute(self) -> dict[str, torch.Tensor]:
        cat = lambda x: torch.cat(x) if isinstance(x, list) else x  # noqa: E731
        mean, std = r_precision(cat(self.img), cat(self.txt), candidates=self.candidates, splits=self.splits,
                                seed=self.seed)
        return {"r_precision_mean": scalar(mean), "r_precision_std": scalar(std)}
