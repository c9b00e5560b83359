"""VS similarity and R-precision: formulas, the ranking loss, and a tiny trainable joint space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from condsynth.errors import UserError
from condsynth.metrics.text_image import (RPrecision, VSEmbedding, VSSimilarity, bidirectional_ranking_loss,
                                          r_precision, train_vs_projections, vs_similarity)

COLOURS = ["red", "green", "blue", "yellow", "cyan", "magenta", "white", "black"]
RGB = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0), "cyan": (0, 1, 1),
       "magenta": (1, 0, 1), "white": (1, 1, 1), "black": (0, 0, 0)}


def _image_encoder(images):  # frozen "encoder": mean colour and its square, a stand-in for DAMSM's CNN
    m = images.mean((2, 3))
    return torch.cat([m, m ** 2], 1)


def _text_encoder(captions):  # frozen bag of colour words
    return torch.tensor([[float(w in c.split()) for w in COLOURS] for c in captions])


def _pairs(n, seed):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(COLOURS), (n,), generator=g)
    cols = torch.tensor([RGB[COLOURS[i]] for i in idx], dtype=torch.float32)
    imgs = cols[:, :, None, None] + 0.05 * torch.randn(n, 3, 8, 8, generator=g)
    return imgs, [f"a {COLOURS[i]} square" for i in idx]


def test_ranking_loss_matches_explicit_sums():
    g = torch.Generator().manual_seed(0)
    v = torch.nn.functional.normalize(torch.randn(5, 7, generator=g), dim=1)
    t = torch.nn.functional.normalize(torch.randn(5, 7, generator=g), dim=1)
    c = lambda a, b: float(a @ b)  # noqa: E731
    expected = sum(max(0.0, 0.2 - c(v[i], t[i]) + c(v[i], t[j])) for i in range(5) for j in range(5) if i != j)
    expected += sum(max(0.0, 0.2 - c(t[i], v[i]) + c(t[i], v[j])) for i in range(5) for j in range(5) if i != j)
    assert float(bidirectional_ranking_loss(v, t)) == pytest.approx(expected, rel=1e-6)


def test_vs_similarity_and_r_precision_formulas():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(200, 16))
    mean, std = vs_similarity(v, v)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)
    t = rng.normal(size=(200, 16))
    cos = (v * t).sum(1) / np.linalg.norm(v, axis=1) / np.linalg.norm(t, axis=1)
    assert vs_similarity(v, t) == pytest.approx((cos.mean(), cos.std()))
    assert r_precision(v, v + 0.01 * rng.normal(size=v.shape)) == pytest.approx((1.0, 0.0))
    chance, _ = r_precision(v, t, seed=1)  # unrelated embeddings: ~1/100
    assert chance < 0.06
    m = RPrecision(seed=1)
    m.update(torch.from_numpy(v[:120]), torch.from_numpy(t[:120]))
    m.update(torch.from_numpy(v[120:]), torch.from_numpy(t[120:]))
    out = m.compute()
    assert set(out) == {"r_precision_mean", "r_precision_std"}
    assert (float(out["r_precision_mean"]), float(out["r_precision_std"])) == pytest.approx(
        (chance, r_precision(v, t, seed=1)[1]))
    with pytest.raises(UserError, match="at least 100"):
        r_precision(v[:50], t[:50])


def test_trained_joint_space_separates_matching_from_mismatched_captions():
    torch.manual_seed(0)
    model = VSEmbedding(_image_encoder, _text_encoder, image_dim=6, text_dim=len(COLOURS), dim=32, name="toy")
    imgs, caps = _pairs(200, 999)
    with torch.no_grad():
        rp_untrained, _ = r_precision(model.embed_images(imgs), model.embed_texts(caps), candidates=5, seed=0)
    batches = [_pairs(32, s) for s in range(40)]
    losses = train_vs_projections(model, batches, epochs=3, lr=1e-2)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    with torch.no_grad():
        vi, vt = model.embed_images(imgs), model.embed_texts(caps)
        wrong = model.embed_texts(caps[1:] + caps[:1])
    m = VSSimilarity()
    m.update(vi, vt)
    match = m.compute()
    assert match["n"] == 200 and float(match["mean"]) > vs_similarity(vi, wrong)[0] + 0.3
    # Only 8 distinct captions: a same-colour caption among the candidates ties with the right one and
    # counts as a miss, so use 5 candidates (P(no same-colour distractor) = (7/8)^4 = 0.59).
    rp, _ = r_precision(vi, vt, candidates=5, seed=0)
    assert rp > 0.45 and rp > rp_untrained + 0.2
