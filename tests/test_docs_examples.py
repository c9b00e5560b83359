"""The Python examples of the README and docs/engine.md run as written (in a scratch folder with a
photo.jpg, since the examples paint one)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(doc: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("doc", ["README.md"])
def test_readme_python_examples_run(doc, tmp_path, monkeypatch):
    blocks = python_blocks(doc)
    assert len(blocks) >= 2
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, doc, "exec"), {"__name__": "__doc_example__"})
    assert Image.open(tmp_path / "painting.png").size == (80, 60)      # the bundled agent keeps the photo's size
    assert Image.open(tmp_path / "photo.png").size == (96, 64)
    assert (tmp_path / "exports" / "pix2pix-scenes64" / "pipeline.json").is_file()


def test_engine_doc_example_runs(tmp_path, monkeypatch):
    (code,) = [b for b in python_blocks("docs/engine.md") if "from_pretrained" in b]
    monkeypatch.chdir(tmp_path)
    label_map_uint8 = np.zeros((64, 64, 3), np.uint8)
    exec(compile(code, "docs/engine.md", "exec"), {"label_map_uint8": label_map_uint8})
    assert Image.open(tmp_path / "photo.png").size == (64, 64)
