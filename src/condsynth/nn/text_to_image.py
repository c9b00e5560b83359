"""Blocks shared by the text-to-image generators (HfGAN, thesis ch. 3, and the stacked AttnGAN-style baseline).

- :class:`ConditioningAugmentation` F_ca (StackGAN; spec §3.3): ``[μ, log σ²] = GLU(Linear(s))``,
  ``I_s = μ + σ ⊙ ε``, with the KL regulariser :func:`kl_loss`.
- :class:`WordAttention` A(e, F) (thesis Eq. 3.1-3.2; AttnGAN's GlobalAttentionGeneral): each image position
  attends over the words; returns the word-context map I_w and the attention β for visualisation.
- :func:`upscale_layer`: the thesis's "upscale layer": nearest x2 -> 3x3 conv -> BatchNorm -> GLU
  (AttnGAN's upBlock).
- :class:`InitialStage`: H_s1, an FC projection of ``[z, I_s]`` to ``16 N_g x 4 x 4`` (BN1d, GLU; AttnGAN's
  INIT_STAGE_G, spec H1) and upscale layers to ``N_g x S x S``. The paper's S = 64 takes four layers from
  ``16 N_g``; a smaller S takes fewer layers from ``N_g 2^layers`` (the same rule: the last layer has N_g).
- :func:`tile` spreads a vector over a map (I_s concatenated in Eq. 3.6-3.8).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) || N(0, I)) averaged over elements: ``-½ mean(1 + log σ² - μ² - σ²)`` (StackGAN, AttnGAN)."""
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


class ConditioningAugmentation(nn.Module):
    """F_ca: sentence ``B x text_dim`` -> (I_s, μ, log σ²), each ``B x cond_dim``. At inference ``sample=False``
    gives I_s = μ (a deterministic code); the pipeline keeps sampling by default, as AttnGAN does."""

    def __init__(self, text_dim: int = 256, cond_dim: int = 100):
        super().__init__()
        self.cond_dim = cond_dim
        self.fc = nn.Linear(text_dim, cond_dim * 4)        # GLU halves 4c -> 2c = [μ, log σ²]

    def forward(self, sentence: torch.Tensor, sample: bool = True):
        x = F.glu(self.fc(sentence), dim=1)
        mu, logvar = x[:, :self.cond_dim], x[:, self.cond_dim:]
        if not sample:
            return mu, mu, logvar
        eps = torch.randn_like(mu)
        return mu + eps * torch.exp(0.5 * logvar), mu, logvar


class WordAttention(nn.Module):
    """A_j(e, F) (Eq. 3.1-3.2): ``e' = U e`` (1x1 conv, text_dim -> channels, no bias), ``s'_{q,i} = F_q^T e'_i``,
    ``β_{q,i} = softmax_i s'`` (padded words get -inf), ``I_w(q) = Σ_i β_{q,i} e'_i``.

    ``forward(features B x C x H x W, words B x D x T, pad_mask B x T (True = padding))`` -> (I_w ``B x C x H x W``,
    β ``B x T x H x W``)."""

    def __init__(self, channels: int, text_dim: int = 256):
        super().__init__()
        self.project = nn.Conv1d(text_dim, channels, 1, bias=False)     # U

    def forward(self, features: torch.Tensor, words: torch.Tensor, pad_mask: torch.Tensor | None = None):
        b, c, h, w = features.shape
        e = self.project(words.to(features.dtype))                     # B x C x T
        query = features.flatten(2).transpose(1, 2)                    # B x HW x C
        scores = torch.bmm(query, e)                                   # B x HW x T: s'_{q,i}
        if pad_mask is not None:
            scores = scores.masked_fill(pad_mask[:, None, :], float("-inf"))
        beta = scores.softmax(dim=2)                                   # Eq. 3.1
        context = torch.bmm(e, beta.transpose(1, 2)).view(b, c, h, w)  # Eq. 3.2
        return context, beta.transpose(1, 2).reshape(b, -1, h, w)


def upscale_layer(in_channels: int, out_channels: int) -> nn.Sequential:
    """nearest x2 -> conv 3x3 (in -> 2 out) -> BN -> GLU (the thesis's upscale layer; AttnGAN upBlock)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(in_channels, out_channels * 2, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(out_channels * 2), nn.GLU(dim=1))


def initial_layers(stage1_size: int) -> int:
    """Upscale layers from 4x4 to the first stage's ``stage1_size`` (4 for the paper's 64)."""
    n = int(round(math.log2(stage1_size / 4))) if stage1_size >= 4 else -1
    if n < 0 or 4 * 2 ** n != stage1_size:
        raise ValueError(f"first-stage size {stage1_size}: must be 4 x 2^k (the FC gives 4x4)")
    return n


class InitialStage(nn.Module):
    """H_s1: ``[z, I_s]`` -> FC (no bias) -> BN1d -> GLU -> ``N_g 2^L x 4 x 4`` -> L upscale layers -> ``N_g x S x S``."""

    def __init__(self, in_dim: int, ngf: int, size: int):
        super().__init__()
        layers = initial_layers(size)
        self.channels = ngf * 2 ** layers
        self.fc = nn.Sequential(nn.Linear(in_dim, self.channels * 16 * 2, bias=False),
                                nn.BatchNorm1d(self.channels * 16 * 2), nn.GLU(dim=1))
        self.up = nn.Sequential(*[upscale_layer(self.channels >> k, self.channels >> (k + 1)) for k in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.fc(x).view(x.shape[0], self.channels, 4, 4))


def tile(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``B x D`` -> ``B x D x H x W`` with the spatial size of ``like``."""
    return vector[:, :, None, None].expand(-1, -1, *like.shape[-2:]).to(like.dtype)
