"""HfGAN and the stacked baseline: the thesis's shapes and equations (Eq. 3.1-3.9), the conditioning augmentation,
the objective's pieces, a training step on the frozen DAMSM, and the shapes-world probe's caption reader."""

from __future__ import annotations

import json

import pytest
import torch

from condsynth import testing
from condsynth.metrics.shapes_probe import ATTRIBUTES, ShapesProbe, caption_agreement, mentioned_attributes, \
    world_inception_score
from condsynth.models.text_to_image.hfgan import HfGANGenerator
from condsynth.models.text_to_image.stacked import StackedGenerator
from condsynth.nn.blocks import count_parameters
from condsynth.nn.text_to_image import ConditioningAugmentation, WordAttention, kl_loss


def _text(b=2, t=6, d=16, lengths=(6, 3)):
    g = torch.Generator().manual_seed(0)
    words = torch.randn(b, d, t, generator=g)
    pad = torch.arange(t)[None] >= torch.tensor(lengths)[:, None]
    return torch.randn(b, d, generator=g), words, pad


def test_paper_generator_has_the_thesis_shapes():
    """§3.4.3: F_1 32x64x64, F_2 / F_2,f 32x128x128, F_3 / F_3,f 32x256x256, a 3x256x256 image (N_g = 32)."""
    g = HfGANGenerator(256, ngf=32).eval()
    sent, words, pad = _text(1, 15, 256, (9,))
    with torch.no_grad():
        out = g(torch.randn(1, 100), sent, words, pad)
    shapes = {k: tuple(v.shape[1:]) for k, v in out.features.items()}
    assert shapes == {"F_1": (32, 64, 64), "F_2": (32, 128, 128), "F_2f": (32, 128, 128), "F_3": (32, 256, 256),
                      "F_3f": (32, 256, 256)}
    assert out.images[0].shape == (1, 3, 256, 256) and len(out.images) == 1
    assert g.stage1.channels == 16 * 32                     # FC to 16 N_g x 4 x 4 (spec H1)
    assert [tuple(a.shape[1:]) for a in out.attention] == [(15, 64, 64), (15, 128, 128)]


def test_global_fusion_is_eq_3_7_and_eq_3_9_literally():
    g = HfGANGenerator(64, ngf=8, text_dim=16, cond_dim=4, z_dim=8, dense_layers=2, growth=4).eval()
    sent, words, pad = _text()
    with torch.no_grad():
        out = g(torch.randn(2, 8), sent, words, pad)
        f = out.features
        up1 = g.sup1(f["F_1"])
        torch.testing.assert_close(f["F_2f"], f["F_2"] + up1)                                    # Eq. 3.7
        torch.testing.assert_close(f["F_3f"], f["F_3"] + g.sup2_from_1(up1) + g.sup2_from_2(f["F_2"]))   # Eq. 3.9
        torch.testing.assert_close(out.images[0], g.to_image(f["F_3f"]))
    assert g.sup2_from_1 is not g.sup2_from_2
    shared = HfGANGenerator(64, ngf=8, text_dim=16, cond_dim=4, z_dim=8, dense_layers=2, growth=4, share_sup2=True)
    assert shared.sup2_from_1 is shared.sup2_from_2
    assert count_parameters(shared) == count_parameters(g) - sum(p.numel() for p in g.sup2_from_2.parameters())
    assert isinstance(g.sup1[1], torch.nn.Conv2d) and g.sup1[1].kernel_size == (1, 1)        # H_sup: 1x1 (H5)


def test_word_attention_matches_eq_3_1_3_2_and_ignores_padding():
    att = WordAttention(channels=5, text_dim=16)
    sent, words, pad = _text()
    feats = torch.randn(2, 5, 3, 3)
    context, beta = att(feats, words, pad)
    e = att.project(words)                                   # B x C x T
    for b in range(2):
        n = int((~pad[b]).sum())
        for q in range(9):
            s = torch.stack([feats[b].flatten(1)[:, q] @ e[b, :, i] for i in range(n)])
            w = s.softmax(0)                                   # Eq. 3.1 over the real words only
            want = sum(w[i] * e[b, :, i] for i in range(n))    # Eq. 3.2
            torch.testing.assert_close(context[b].flatten(1)[:, q], want, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(beta[b, :n].flatten(1)[:, q], w, rtol=1e-5, atol=1e-6)
    assert float(beta[1, 3:].abs().max()) == 0.0


def test_conditioning_augmentation_and_kl():
    ca = ConditioningAugmentation(16, 4)
    s = torch.randn(3, 16)
    code, mu, logvar = ca(s)
    assert code.shape == mu.shape == logvar.shape == (3, 4)
    same, mu2, _ = ca(s, sample=False)
    torch.testing.assert_close(same, mu2)
    assert float(kl_loss(torch.zeros(2, 4), torch.zeros(2, 4))) == 0.0
    mu, lv = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.5]])
    want = -0.5 * ((1 + 0 - 1 - 1) + (1 + 0.5 - 0 - torch.exp(torch.tensor(0.5)))) / 2
    assert float(kl_loss(mu, lv)) == pytest.approx(float(want))


def test_stacked_generator_has_an_image_per_stage():
    g = StackedGenerator(64, ngf=8, z_dim=8, cond_dim=4, text_dim=16, r_num=1).eval()
    sent, words, pad = _text()
    with torch.no_grad():
        out = g(torch.randn(2, 8), sent, words, pad)
    assert [tuple(x.shape[1:]) for x in out.images] == [(3, 16, 16), (3, 32, 32), (3, 64, 64)]


@pytest.mark.parametrize("name, d_arch", [("hfgan", "hfgan"), ("hfgan", "stacked_last"), ("stacked_t2i", None)])
def test_a_training_step_trains_g_and_d_and_leaves_the_damsm_alone(name, d_arch, tmp_path_factory):
    work = tmp_path_factory.getbasetemp() / "t2i"
    raw = testing.tiny_config(name, work)
    if d_arch:
        raw["model"]["d_arch"] = d_arch
    method = testing.build_method(raw)
    text_before = {k: v.clone() for k, v in method.text_encoder.state_dict().items()}
    g_before = [p.detach().clone() for p in method.G.parameters()]
    d_before = {n: [p.detach().clone() for p in d.parameters()] for n, d in method.discriminators.items()}
    batch = testing.first_batch(method, n=4)
    ctx = testing.fake_context(method)
    logs = method.training_step(batch, ctx)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in logs.values())
    assert float(logs["loss_DAMSM"]) > 0
    assert any(not torch.equal(a, b) for a, b in zip(g_before, method.G.parameters()))
    for n, d in method.discriminators.items():
        assert any(not torch.equal(a, b) for a, b in zip(d_before[n], d.parameters())), n
    for k, v in method.text_encoder.state_dict().items():
        assert torch.equal(v, text_before[k]), k
    assert len(method.discriminators) == (1 if name == "hfgan" else 3)
    if d_arch == "stacked_last":        # the stacked baseline's D at the output size: no down / refine blocks
        assert method.D.trunk.out_size == 4 and len(method.D.trunk.net) == 4


def test_hardest_wrong_pairs_give_d_a_wrong_caption_per_real_image(tmp_path_factory):
    work = tmp_path_factory.getbasetemp() / "t2i"
    raw = testing.tiny_config("hfgan", work)
    raw["model"]["wrong_pairs"] = "hardest"
    method = testing.build_method(raw)
    batch = testing.first_batch(method, n=4)
    _, sentence, _ = method.encode_text(batch["caption"], batch["length"])
    wrong = method.mismatched(sentence, sentence, batch["class_id"])
    assert wrong.shape == sentence.shape                      # B pairs, not AttnGAN's B - 1
    classes = torch.as_tensor(batch["class_id"])
    for i in range(4):
        j = [k for k in range(4) if torch.equal(sentence[k], wrong[i])][0]
        assert classes[j] != classes[i] or bool((classes == classes[i]).all())
    logs = method.training_step(batch, testing.fake_context(method))
    assert all(torch.isfinite(torch.as_tensor(v)) for v in logs.values())


def test_a_damsm_with_another_vocabulary_is_refused(tmp_path_factory):
    from condsynth.errors import ConfigError
    work = tmp_path_factory.getbasetemp() / "t2i"
    raw = testing.tiny_config("hfgan", work)
    raw["data"]["vocab_words"] = ["<end>", "<unk>", "red", "circle"]
    with pytest.raises(ConfigError, match="its vocabulary .* is not this data's"):
        testing.build_method(raw)


# ------------------------------------------------------------------------------------ the shapes-world probe
def test_caption_reader_agrees_with_the_world_truth(tmp_path_factory):
    root = testing.shapes_dataset(tmp_path_factory.getbasetemp() / "t2i")
    attrs = json.loads((root / "attributes.json").read_text())
    n = 0
    for key, a in attrs.items():
        for cap in (root / "text" / f"{key}.txt").read_text().splitlines():
            for attr, value in mentioned_attributes(cap).items():
                assert str(a[attr]) == value, (cap, attr)
                n += 1
    assert n > 200
    assert mentioned_attributes("two violet rhombuses side by side on a grey background") == {
        "count": "2", "shape": "diamond", "colour": "purple", "position": "side by side"}
    assert mentioned_attributes("a tiny disc in the upper part") == {
        "count": "1", "shape": "circle", "size": "small", "position": "top"}


def test_agreement_and_world_is_on_a_fixed_probe():
    probe = ShapesProbe(size=16).eval()
    images = torch.zeros(4, 3, 16, 16)
    captions = ["a red circle", "a blue square", "two green stars", "a small shape"]
    agree = caption_agreement(probe, images, captions)
    assert agree["colour"]["n"] == 3 and agree["size"]["n"] == 1 and agree["count"]["n"] == 4
    assert agree["colour"]["chance"] == pytest.approx(1 / len(ATTRIBUTES["colour"]), abs=1e-4)
    # identical images: every image gets the same posterior, so the world IS is 1 (no diversity)
    assert world_inception_score(probe, images, splits=1)[0] == pytest.approx(1.0)
