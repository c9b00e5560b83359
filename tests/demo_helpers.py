"""Shared pieces of the demo tests (tests/test_demo_runner.py without a browser, tests/test_demo_browser.py with one)."""

from __future__ import annotations

import os
import wave

import numpy as np
import pytest
from PIL import Image

from condsynth.demo.runner import MAX_PIXELS


def held_out_photo() -> str:
    """matplotlib's Grace Hopper: never in a training set (the brief keeps matplotlib's photos held out)."""
    matplotlib = pytest.importorskip("matplotlib")
    return os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


def write_tone(path, seconds: float, hz: float = 180.0, rate: int = 16000):
    """A 16-bit mono wav of a sine tone: speech-like input for the audio tabs (and audio on a photo input)."""
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes())
    return path


def bad_uploads(folder) -> dict:
    """The uploads every photo input must refuse with one line naming the file: name -> (path, message part)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "notes.txt"
    text.write_text("not a picture\n")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    huge = folder / "huge.png"
    side = int(MAX_PIXELS ** 0.5) + 500                       # a few hundred kB of PNG, over the pixel limit
    Image.new("L", (side, side)).save(huge, optimize=False, compress_level=1)
    speech = write_tone(folder / "speech.wav", seconds=1.0)
    return {"text": (text, "notes.txt: "), "empty": (empty, "empty.png: file is empty"),
            "huge": (huge, "huge.png: image is"), "audio": (speech, "speech.wav: ")}
