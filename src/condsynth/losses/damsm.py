"""DAMSM: the Deep Attentional Multimodal Similarity Model's matching losses (Xu et al., AttnGAN, CVPR 2018, §3.3).

Notation (paper): word features ``e`` (D x T), region features ``v`` (D x N, N = 17 x 17 for
Inception's Mixed_6e), sentence feature ``ē`` and global image feature ``v̄`` (D).

- Eq. 7: ``s = e^T v``, the similarity of word i and region j (T x N).
- Eq. 8: ``s̄_ij = exp(s_ij) / sum_k exp(s_kj)``: normalised over the *words* for each region.
- Eq. 9: ``c_i = sum_j α_ij v_j`` with ``α_ij = exp(γ1 s̄_ij) / sum_k exp(γ1 s̄_ik)`` (over regions): the
  region context of word i.
- Eq. 10: ``R(c_i, e_i) = cos(c_i, e_i)``; ``R(Q, D) = log( sum_i exp(γ2 R(c_i, e_i)) )^(1/γ2)``, i.e.
  ``(1/γ2) log sum_i exp(γ2 R(c_i, e_i))``. AttnGAN's code drops the ``1/γ2`` (``paper_scale=False``).
- Eq. 11: ``P(D_i | Q_i) = exp(γ3 R(Q_i, D_i)) / sum_j exp(γ3 R(Q_i, D_j))`` over the batch.
- Eq. 12-13: ``L_1^w = -sum_i log P(D_i | Q_i)``, ``L_2^w = -sum_i log P(Q_i | D_i)``.
- Eq. 14-15: ``L_1^s``, ``L_2^s``: Eq. 11-13 with ``R(Q, D) = cos(v̄, ē)``.

As AttnGAN's code (``losses.py``): the sums over the batch are means (``nn.CrossEntropyLoss``), and a
pair of the same class (CUB species) as the positive is masked out as a negative (``-inf``).
γ1 = 5 (paper; its code's configs use 4), γ2 = 5, γ3 = 10.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAMMA1, GAMMA2, GAMMA3 = 5.0, 5.0, 10.0


def word_attention(words: torch.Tensor, regions: torch.Tensor, gamma1: float = GAMMA1,
                   lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Region contexts ``c`` (B x D x T) and attention ``α`` (B x T x N) for B (caption, image) pairs.

    ``words``: B x D x T, ``regions``: B x D x H x W (or B x D x N). Padded words (beyond
    ``lengths``) take no part in Eq. 8's normalisation over words."""
    b, d, t = words.shape
    v = regions.reshape(b, d, -1)                                     # B x D x N
    s = torch.bmm(words.transpose(1, 2), v)                           # Eq. 7: B x T x N
    if lengths is not None:
        pad = torch.arange(t, device=words.device)[None, :] >= lengths.to(words.device)[:, None]
        s = s.masked_fill(pad[:, :, None], float("-inf"))
    s_bar = torch.softmax(s, dim=1)                                   # Eq. 8: over words, per region
    alpha = torch.softmax(gamma1 * s_bar, dim=2)                      # Eq. 9: over regions, per word
    c = torch.bmm(v, alpha.transpose(1, 2))                           # Eq. 9: c_i = sum_j α_ij v_j, B x D x T
    return c, alpha


def _class_mask(class_ids: torch.Tensor | None, n: int, device) -> torch.Tensor | None:
    """True where j is of i's class but j != i (AttnGAN: such pairs are not negatives)."""
    if class_ids is None:
        return None
    class_ids = torch.as_tensor(class_ids, device=device)
    same = class_ids[:, None] == class_ids[None, :]
    return same & ~torch.eye(n, dtype=torch.bool, device=device)


def _matching_loss(scores: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 11-13 from γ3-scaled scores ``[image i, caption j]``: (L_1, L_2) as batch means."""
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    labels = torch.arange(len(scores), device=scores.device)
    # L_1: P(D_i | Q_i), image Q_i against every caption (rows); L_2: P(Q_i | D_i), caption against every image
    return F.cross_entropy(scores, labels), F.cross_entropy(scores.T, labels)


def word_scores(regions: torch.Tensor, words: torch.Tensor, lengths: torch.Tensor, gamma1: float = GAMMA1,
                gamma2: float = GAMMA2, paper_scale: bool = True) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``R(Q_i, D_j)`` of Eq. 10 for every image i and caption j (B x B), and each caption's attention on
    its own image (T_j x N). ``regions``: B x D x H x W, ``words``: B x D x T, ``lengths``: B."""
    b = regions.shape[0]
    cols, attn = [], []
    for j in range(b):                                                # caption j against every image
        n = int(lengths[j])
        e = words[j:j + 1, :, :n].expand(b, -1, -1)                   # B x D x n
        c, alpha = word_attention(e, regions, gamma1)                 # B x D x n
        rel = F.cosine_similarity(c, e, dim=1, eps=1e-8)              # Eq. 10: R(c_i, e_i), B x n
        r = torch.logsumexp(gamma2 * rel, dim=1)                      # Eq. 10: log sum_i exp(γ2 R)
        cols.append(r / gamma2 if paper_scale else r)
        attn.append(alpha[j])
    return torch.stack(cols, dim=1), attn                             # [image i, caption j]


def damsm_losses(regions: torch.Tensor, image_global: torch.Tensor, words: torch.Tensor, sentence: torch.Tensor,
                 lengths: torch.Tensor, class_ids: torch.Tensor | None = None, gamma1: float = GAMMA1,
                 gamma2: float = GAMMA2, gamma3: float = GAMMA3, paper_scale: bool = True) -> dict[str, torch.Tensor]:
    """``{"w1", "w2", "s1", "s2", "attention"}``: Eq. 12-15 for a batch of matching (image, caption) pairs."""
    b = regions.shape[0]
    mask = _class_mask(class_ids, b, regions.device)
    r_word, attn = word_scores(regions, words, lengths, gamma1, gamma2, paper_scale)
    w1, w2 = _matching_loss(gamma3 * r_word, mask)                   # Eq. 11-13
    r_sent = F.normalize(image_global, dim=1, eps=1e-8) @ F.normalize(sentence, dim=1, eps=1e-8).T
    s1, s2 = _matching_loss(gamma3 * r_sent, mask)                   # Eq. 14-15: R = cos(v̄, ē)
    return {"w1": w1, "w2": w2, "s1": s1, "s2": s2, "attention": attn}
