"""The command line: help, train/translate end to end, and one clear line for each user mistake."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from condsynth.cli.main import main
from condsynth.engine.checkpoint import find_latest

from conftest import tiny_pix2pix_overrides

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs/pix2pix/scenes64.yaml")


@pytest.fixture(scope="module")
def trained_run(scenes16, tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", CONFIG, *tiny_pix2pix_overrides(scenes16, run, steps=3)]) == 0
    return run


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("condsynth: error: ")
    return err[0]


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "condsynth", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for verb in ("train", "translate", "export", "data"):
        assert verb in out.stdout


def test_translate_any_size_and_folder(trained_run, tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "odd.png")
    Image.fromarray(img[:20, :20]).convert("L").save(tmp_path / "gray.png")
    out = tmp_path / "out"
    assert main(["translate", "--checkpoint", str(trained_run), str(tmp_path), "--out", str(out)]) == 0
    assert Image.open(out / "odd.png").size == (53, 37)   # padded to the stride and cropped back
    assert Image.open(out / "gray.png").size == (20, 20)


def test_tile_needs_a_model_that_supports_it(trained_run, tmp_path, capsys):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "x.png")
    args = ["translate", "--checkpoint", str(trained_run), str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]
    assert main([*args, "--tile", "64"]) != 0     # pix2pix's translate takes no tile (yet)
    assert "does not support tiled inference (--tile)" in one_error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_export_is_small_and_translates(trained_run, tmp_path):
    exported = tmp_path / "exp"
    assert main(["export", str(trained_run), "--out", str(exported), "--half"]) == 0
    # a pipeline folder with one component, the generator (no discriminator, no optimizer state)
    assert sorted(p.name for p in exported.iterdir()) == ["G", "pipeline.json"]
    assert sorted(p.name for p in (exported / "G").iterdir()) == ["config.json", "model.safetensors"]
    full = (find_latest(trained_run) / "model.safetensors").stat().st_size
    assert (exported / "G" / "model.safetensors").stat().st_size < full / 2
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["translate", "--checkpoint", str(exported), str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 0


def test_bad_inputs_one_line_and_nothing_written(trained_run, tmp_path, capsys):
    good = tmp_path / "in" / "a.png"
    good.parent.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(good)
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    assert main(["translate", "--checkpoint", str(trained_run), str(tmp_path / "in"), "--out", str(out)]) == 2
    assert "b.png: " in one_error_line(capsys)
    assert not out.exists()  # inputs are all checked before the first output is written

    assert main(["translate", "--checkpoint", str(trained_run), str(tmp_path / "none.png"), "--out", str(out)]) == 2
    assert "none.png: file not found" in one_error_line(capsys)

    (tmp_path / "empty").mkdir()
    assert main(["translate", "--checkpoint", str(trained_run), str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no image files" in one_error_line(capsys)

    assert main(["translate", "--checkpoint", str(tmp_path / "empty"), str(good), "--out", str(out)]) == 2
    assert "no checkpoint found" in one_error_line(capsys)

    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "config.json").write_text('{"something": "else"}')
    assert main(["translate", "--checkpoint", str(tmp_path / "fake"), str(good), "--out", str(out)]) == 2
    assert "not a condsynth checkpoint" in one_error_line(capsys)
    assert not out.exists()


def test_train_config_mistakes(scenes16, tmp_path, capsys):
    assert main(["train", CONFIG, "train.stepz=4"]) == 2
    assert "unknown config key 'train.stepz'" in one_error_line(capsys)
    assert main(["train", CONFIG, f"data.root={tmp_path / 'missing'}"]) == 2
    assert "missing: dataset folder not found" in one_error_line(capsys)
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: config file not found" in one_error_line(capsys)
    # a subprocess shows there is no traceback either
    done = subprocess.run([sys.executable, "-m", "condsynth", "train", CONFIG, "model.ngf=x"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "condsynth: error: config key 'model.ngf' must be an integer, got 'x'"


def test_commands_flush_subnormal_floats(capsys):
    """Subnormals make trained CPU networks several times slower; every command flushes them."""
    import torch

    from condsynth.cli.main import main
    torch.set_flush_denormal(False)                                # earlier tests ran commands
    tiny = torch.tensor([1e-39], dtype=torch.float32)             # a float32 subnormal
    try:
        assert (tiny * 1.0).item() != 0.0
        assert main(["data"]) == 0
        assert (tiny * 1.0).item() == 0.0
    finally:
        torch.set_flush_denormal(False)
