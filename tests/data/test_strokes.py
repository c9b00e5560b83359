"""The renderer's training data: the random stroke stream and stroke banks (data/strokes.py)."""

from __future__ import annotations

import pytest

from condsynth.data.strokes import StrokeBank, StrokeDataset, write_stroke_bank
from condsynth.errors import ConfigError


def test_stroke_bank_holds_the_same_strokes_as_the_stream(tmp_path, capsys):
    from condsynth.cli.main import main
    bank = tmp_path / "strokes.safetensors"
    assert main(["data", "strokes", "--out", str(bank), "--n", "6", "--size", "32", "--seed", "4"]) == 0
    assert "wrote 6 strokes" in capsys.readouterr().out
    stream, stored = StrokeDataset(6, seed=4, size=32), StrokeBank(str(bank), size=32)
    assert len(stored) == 6
    for i in range(6):
        assert stored[(i, 7)][0].equal(stream[i][0])               # engine keys are (index, seed)
        assert (stored[i][1] - stream[i][1]).abs().max() <= 0.5 / 255 + 1e-6   # 8-bit alpha
    # the same command twice: refused without --overwrite, one line, exit 2
    assert main(["data", "strokes", "--out", str(bank), "--n", "2", "--size", "32"]) == 2
    assert "exists" in capsys.readouterr().err


def test_stroke_bank_errors_are_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="stroke bank not found"):
        StrokeBank(str(tmp_path / "missing.safetensors"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="not a stroke bank"):
        StrokeBank(str(junk))
    bank = tmp_path / "b.safetensors"
    write_stroke_bank(bank, 2, size=32)
    with pytest.raises(ConfigError, match="the renderer wants 128"):
        StrokeBank(str(bank), size=128)


def test_stroke_stream_ignores_the_sampler_seed_and_writers_agree(tmp_path):
    ds = StrokeDataset(5, seed=2, size=32)
    assert ds[(3, 1)][0].equal(ds[(3, 2)][0]) and not ds[3][0].equal(ds[4][0])   # fixed per index
    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    write_stroke_bank(one, 5, seed=2, size=32)
    write_stroke_bank(two, 5, seed=2, size=32, workers=2)          # the multi-process writer
    a, b = StrokeBank(str(one), size=32), StrokeBank(str(two), size=32)
    assert a.params.equal(b.params) and a.alpha.equal(b.alpha)
