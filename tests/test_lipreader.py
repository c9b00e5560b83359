"""lipreader: the two architectures' shapes, the word metric, a tiny learning run and the pipeline's checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from condsynth import testing
from condsynth.errors import ConfigError, UserError
from condsynth.models.lipreader import ARCHS, LipReaderConfig, WordAccuracy, word_log_probs


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("side", [32, 44])
def test_readers_give_a_word_distribution_per_step_at_any_size(arch, side):
    torch.manual_seed(0)
    cfg = LipReaderConfig(arch=arch, n_words=7, width=4, blocks=(1, 1, 1, 1), feature_dim=8, hidden=8)
    net = ARCHS[arch](cfg).eval()
    out = net(torch.randn(2, 1, 16, side, side))
    assert out.shape == (2, 16, 7)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 16), atol=1e-5)
    # the paper's layout builds: ResNet-34 trunk, 256-d features, BiLSTM 256 (spec §2.6)
    if arch == "staf":
        full = ARCHS[arch](LipReaderConfig(n_words=500))
        assert sum(isinstance(m, torch.nn.Module) and m.__class__.__name__ == "BasicBlock"
                   for m in full.trunk) == 16
        assert full.lstm.hidden_size == 256 and full.lstm.num_layers == 2 and full.lstm.bidirectional
        assert full.head.in_features == 512 and full.head.out_features == 500


def test_word_accuracy_and_confusion():
    m = WordAccuracy(3)
    scores = torch.tensor([[3.0, 0, 0], [0, 2, 0], [0, 5, 0], [0, 0, 1]])
    m.update(scores, torch.tensor([0, 1, 2, 2]))
    out = m.compute()
    assert float(out["accuracy"]) == 0.75 and float(out["chance"]) == pytest.approx(1 / 3) and int(out["n"]) == 4
    assert m.confusion.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_a_tiny_reader_learns_when_the_mouth_opens(tmp_path):
    """Word 0 opens the mouth in the clip's first half, word 1 in its second half: only the motion's
    timing tells them apart (each frame alone is one of two shapes for both words)."""
    from condsynth.engine.config import build_experiment_config
    from condsynth.engine.trainer import train
    from condsynth.pipelines import load_pipeline
    raw = testing.tiny_config("lipreader", tmp_path, tmp_path / "run", steps=40, batch_size=8)
    raw["model"].update(optimizer="adam", lr=3e-3, width=4, feature_dim=8, hidden=8)
    raw["data"].update(jitter=0, shift=0, flip=False)
    train(build_experiment_config(raw))
    pipe = load_pipeline(tmp_path / "run", device="cpu")
    root = testing.talking_prepared(tmp_path)
    files = sorted((root / "test").glob("*.npz"))
    out = pipe(files)
    assert out.words == ["W0", "W0", "W1", "W1"]
    # a clip shorter than the window and a wrong array are refused with one line
    with pytest.raises(UserError, match="reads windows of 16"):
        pipe(np.zeros((8, 24, 24, 3), np.uint8))
    with pytest.raises(UserError, match="uint8 aligned crops"):
        pipe(np.zeros((20, 24, 24), np.float32))
    assert np.allclose(word_log_probs(torch.zeros(1, 4, 2)).numpy(), 0)


def test_the_model_and_the_data_must_agree_on_the_words(tmp_path):
    raw = testing.tiny_config("lipreader", tmp_path)
    raw["model"]["words"] = ["W0", "W9"]
    method = testing.build_method(raw)
    with pytest.raises(ConfigError, match="reads 2"):
        method.build_dataset("train")
    raw["model"].update(words=["A", "B", "C"])
    with pytest.raises(ConfigError, match="3 words but model.n_words is 2"):
        testing.build_method(raw)
