"""Tokenizer, vocabulary JSON, OOV statistics and the restricted unpickler for AttnGAN's metadata."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from condsynth.data.text import (END_ID, UNK_ID, Vocabulary, caption_stats, convert_attngan_pickles,
                                 load_plain_pickle, tokenize)
from condsynth.errors import UserError


def test_tokenizer_is_attngans_rule():
    assert tokenize("This bird has a RED crown, and white-ish wings!") == \
        ["this", "bird", "has", "a", "red", "crown", "and", "white", "ish", "wings"]
    assert tokenize("caf\u00e9 na\u00efve 3rd") == ["caf", "nave", "3rd"]      # non-ASCII removed
    assert tokenize("...!!!") == []


def test_vocabulary_ids_min_count_and_json_round_trip(tmp_path):
    vocab = Vocabulary.build(["a red circle", "a blue circle", "a red square", "zebra"], min_count=2)
    assert vocab.words[:2] == ["<end>", "<unk>"]
    assert vocab.words[2:] == ["a", "circle", "red"]          # count 3, 2, 2 (ties alphabetical); 'zebra' dropped
    assert vocab.encode(["a", "zebra"]) == [2, UNK_ID]
    vocab.save(tmp_path / "v.json")
    again = Vocabulary.load(tmp_path / "v.json")
    assert again.words == vocab.words and again.min_count == 2
    assert vocab.decode([2, 4, END_ID]) == ["a", "red"]


def test_user_captions_empty_unknown_and_long():
    vocab = Vocabulary.build(["a red circle"])
    with pytest.raises(UserError, match="no words"):
        vocab.encode_text("  ?! ", 5)
    with pytest.raises(UserError, match=r"every word is unknown.*(blue, star)"):
        vocab.encode_text("blue star", 5)
    ids, unknown = vocab.encode_text("a red " + "circle " * 5000, 4)     # 10,000+ characters
    assert len(ids) == 4 and unknown == []
    stats = caption_stats(["a red circle", "", "blue star", "a red " + "circle " * 30], vocab, words_num=15)
    assert (stats.captions, stats.empty, stats.only_unknown, stats.truncated) == (4, 1, 1, 1)
    assert stats.unknown_words == {"blue": 1, "star": 1}
    assert any("2 unknown" in ln for ln in stats.lines())


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused_with_one_line(tmp_path):
    bad = tmp_path / "captions.pickle"
    bad.write_bytes(pickle.dumps([["a"], _Evil()]))
    with pytest.raises(UserError, match=r"captions\.pickle: refused to read: not plain data \(refused global"):
        load_plain_pickle(bad)
    with pytest.raises(UserError, match="refused"):
        convert_attngan_pickles(tmp_path)


def test_attngan_pickles_convert_to_json(tmp_path):
    (tmp_path / "train").mkdir()
    ixtoword = {0: "<end>", 1: "bird", 2: "red"}
    caps = [[[1, 2]], [[2]], ixtoword, {v: k for k, v in ixtoword.items()}]
    (tmp_path / "captions.pickle").write_bytes(pickle.dumps(caps, protocol=2))
    (tmp_path / "train" / "filenames.pickle").write_bytes(pickle.dumps(["001.Black/x_1", "002.Blue/y_2"], protocol=2))
    written = convert_attngan_pickles(tmp_path)
    assert sorted(p.name for p in written) == ["captions.json", "filenames.json", "vocab_attngan.json"]
    assert json.loads((tmp_path / "train" / "filenames.json").read_text()) == ["001.Black/x_1", "002.Blue/y_2"]
    assert json.loads((tmp_path / "vocab_attngan.json").read_text())["words"] == ["<end>", "bird", "red"]
