"""io.audio: wav / flac / mp3 / m4a / mp4 tracks to 16 kHz mono, duration and rate checks, one-line errors."""

from __future__ import annotations

import importlib.machinery
import sys
import types
import wave
from fractions import Fraction

import numpy as np
import pytest

from condsynth.errors import UserError
from condsynth.io.audio import audio_info, read_audio
from condsynth.io.video import write_video

av = pytest.importorskip("av")


def _tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write_wav(path, channels: np.ndarray, rate: int):
    """``channels``: (C, n) float in [-1, 1], written as 16-bit PCM with the standard library."""
    pcm = np.round(np.asarray(channels).T * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def _encode(path, samples: np.ndarray, rate: int, codec: str, fmt: str):
    """A mono file in any codec PyAV can encode (flac, mp3, aac), with timestamps set."""
    with av.open(str(path), "w", format=fmt) as box:
        st = box.add_stream(codec, rate=rate)
        st.layout = "mono"
        fr = av.AudioFrame.from_ndarray(samples[None].astype(np.float32), format="flt", layout="mono")
        fr.sample_rate, fr.pts, fr.time_base = rate, 0, Fraction(1, rate)
        for pkt in st.encode(fr):
            box.mux(pkt)
        for pkt in st.encode(None):
            box.mux(pkt)
    return path


def _dominant_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


def test_stereo_wav_is_resampled_and_downmixed(tmp_path):
    left, right = _tone(1.0, 22050, amp=0.6), _tone(1.0, 22050, amp=0.2)
    path = _write_wav(tmp_path / "s.wav", np.stack([left, right]), 22050)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.codec) == (22050, 2, "pcm_s16le")
    assert info.seconds == pytest.approx(1.0)
    x = read_audio(path)                                       # 16 kHz mono by default
    assert x.shape == (16000,) and x.dtype == np.float32
    assert _dominant_hz(x, 16000) == pytest.approx(440, abs=2)
    assert np.sqrt(np.mean(x[500:-500] ** 2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.01)   # mean of channels
    both = read_audio(path, sample_rate=22050, mono=False)      # native rate: the PCM samples exactly
    assert both.shape == (2, 22050)
    assert np.abs(both[0] - left).max() < 1 / 16384 and np.abs(both[1] - right).max() < 1 / 16384


@pytest.mark.parametrize("codec,fmt,suffix", [("flac", "flac", ".flac"), ("libmp3lame", "mp3", ".mp3"),
                                              ("aac", "mp4", ".m4a")])
def test_compressed_formats(tmp_path, codec, fmt, suffix):
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    tone = _tone(1.0, 44100, freq=330.0)
    path = _encode(tmp_path / f"t{suffix}", tone, 44100, codec, fmt)
    x = read_audio(path)
    assert abs(len(x) - 16000) <= (0 if codec != "libmp3lame" else 1200)   # mp3 has no exact length
    assert _dominant_hz(x, 16000) == pytest.approx(330, abs=2)
    # (LAME's output is ~5% quieter at its default settings)
    assert np.sqrt(np.mean(x[2000:-2000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.08)
    if codec == "flac":   # lossless: the resampled samples equal the wav's
        wav = _write_wav(tmp_path / "t.wav", tone[None], 44100)
        assert np.abs(read_audio(wav) - x).max() < 1e-4


def test_audio_track_of_an_mp4_and_duration_checks(tmp_path):
    frames = [np.full((32, 32, 3), 128, np.uint8)] * 25
    path = write_video(tmp_path / "clip.mp4", frames, fps=25, audio=_tone(1.0, 16000), sample_rate=16000)
    assert read_audio(path, min_seconds=0.5, max_seconds=2.0).shape == (16000,)
    with pytest.raises(UserError, match=r"clip.mp4: audio is 1.000 s long, shorter than the 1.5 s needed"):
        read_audio(path, min_seconds=1.5)
    with pytest.raises(UserError, match="longer than the 0.5 s allowed"):
        read_audio(path, max_seconds=0.5)
    with pytest.raises(UserError, match="clip.mp4: audio is at 16000 Hz, expected 22050 Hz"):
        read_audio(path, expect_rate=22050)
    assert len(read_audio(path, sample_rate=8000)) == 8000


def test_one_line_errors(tmp_path):
    cases = {"missing": (tmp_path / "nope.wav", "audio file not found")}
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.wav", "file is empty")
    (tmp_path / "junk.wav").write_bytes(b"RIFF but not really a wave file" * 4)
    cases["junk"] = (tmp_path / "junk.wav", "not a readable audio")
    silent = write_video(tmp_path / "silent.mp4", [np.zeros((16, 16, 3), np.uint8)] * 3, fps=10)
    cases["no audio"] = (silent, "has no audio stream")
    cases["folder"] = (tmp_path, "is a folder")
    for name, (path, msg) in cases.items():
        with pytest.raises(UserError) as e:
            read_audio(path)
        assert msg in str(e.value) and str(path.name) in str(e.value) and "\n" not in str(e.value), name
    with pytest.raises(ValueError, match="sample_rate"):
        read_audio(silent, sample_rate=0)


def test_soundfile_fast_path_is_used_only_without_resampling(tmp_path, monkeypatch):
    """With soundfile present, a wav at the requested rate is read by it (same samples as PyAV)."""
    calls = []

    def info(path):
        with wave.open(path) as w:
            return types.SimpleNamespace(samplerate=w.getframerate())

    def read(path, dtype, always_2d):
        calls.append(path)
        with wave.open(path) as w:
            n, c = w.getnframes(), w.getnchannels()
            pcm = np.frombuffer(w.readframes(n), "<i2").reshape(n, c)
            return pcm.astype(dtype) / 32768.0, w.getframerate()

    fake = types.ModuleType("soundfile")
    fake.__spec__ = importlib.machinery.ModuleSpec("soundfile", None)
    fake.info, fake.read = info, read
    path = _write_wav(tmp_path / "m.wav", _tone(0.5, 16000)[None], 16000)
    via_av = read_audio(path)
    monkeypatch.setitem(sys.modules, "soundfile", fake)
    via_sf = read_audio(path)
    assert calls == [str(path)] and np.array_equal(via_sf, via_av)
    read_audio(path, sample_rate=8000)                          # needs resampling: PyAV, not soundfile
    assert len(calls) == 1
