"""io.mfcc: ATVGnet's MFCC in torch, parity with independent implementations, 25 fps windows, bad audio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from condsynth.errors import UserError
from condsynth.io import mfcc as M

av = pytest.importorskip("av")
from test_io_audio import _encode, _write_wav  # noqa: E402 - the audio tests' file writers


def _speech_like(seconds=1.0, rate=16000, seed=0):
    """A voiced, modulated signal with noise bursts (used where espeak-ng is not installed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 1.5 * t)
    voiced = sum(np.sin(2 * np.pi * np.cumsum(f0 * h) / rate) / h for h in range(1, 12))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.2 * voiced * env + 0.05 * rng.normal(size=t.size) * (env < 0.3)).astype(np.float32) / 2


def _espeak_or_synthetic():
    try:
        from condsynth.data.synth.speech import synthesize
        return synthesize("say the word family again", "en-us", 150).samples, "espeak"
    except (ImportError, UserError):
        return _speech_like(1.5), "synthetic"


def _reference_mfcc(x, rate=16000):
    """An independent numpy/scipy transcription of python_speech_features.mfcc(x, 16000, winstep=0.01)."""
    from scipy.fft import dct
    x = np.asarray(x, np.float64)
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])
    n_frames = 1 if len(x) <= 400 else 1 + int(math.ceil((len(x) - 400) / 160))
    x = np.concatenate([x, np.zeros((n_frames - 1) * 160 + 400 - len(x))])
    idx = np.arange(400)[None, :] + 160 * np.arange(n_frames)[:, None]
    p = np.abs(np.fft.rfft(x[idx], 512)) ** 2 / 512
    energy = p.sum(1)
    energy[energy == 0] = np.finfo(float).eps
    hi_mel = 2595 * np.log10(1 + 8000 / 700)
    hz = 700 * (10 ** (np.linspace(0, hi_mel, 28) / 2595) - 1)
    b = np.floor(513 * hz / rate).astype(int)
    fb = np.zeros((26, 257))
    for j in range(26):
        fb[j, b[j]:b[j + 1]] = (np.arange(b[j], b[j + 1]) - b[j]) / (b[j + 1] - b[j])
        fb[j, b[j + 1]:b[j + 2]] = (b[j + 2] - np.arange(b[j + 1], b[j + 2])) / (b[j + 2] - b[j + 1])
    f = p @ fb.T
    f[f == 0] = np.finfo(float).eps
    c = dct(np.log(f), type=2, axis=1, norm="ortho")[:, :13]
    c *= 1 + 11 * np.sin(np.pi * np.arange(13) / 22)
    c[:, 0] = np.log(energy)
    return c


def test_mfcc_matches_python_speech_features_on_speech():
    psf = pytest.importorskip("python_speech_features")
    x, kind = _espeak_or_synthetic()
    ours = M.mfcc(x).numpy()
    ref = psf.mfcc(x.astype(np.float64), 16000, winstep=0.01)
    assert ours.shape == ref.shape
    diff = np.abs(ours - ref).max()
    print(f"MFCC vs python_speech_features on {kind} speech ({len(x) / 16000:.2f} s): max |diff| {diff:.3g}")
    assert diff < 1e-8
    # the float32 windows the networks see: float32 rounding only
    w = M.speech_windows(x).numpy()
    ref_w = np.stack([ref[4 * (k - 3):4 * (k + 4), 1:] for k in range(3, w.shape[0] - 4)])
    assert np.abs(w[3:-4] - ref_w).max() < 1e-4 * np.abs(ref).max()


def test_mfcc_matches_independent_scipy_reference():
    x, _ = _espeak_or_synthetic()
    diff = np.abs(M.mfcc(x).numpy() - _reference_mfcc(x)).max()
    assert diff < 1e-8, diff
    # short signals (one padded frame) and exact zeros (log of eps) as well
    for y in (x[:300], np.zeros(1000, np.float32)):
        assert np.abs(M.mfcc(y).numpy() - _reference_mfcc(y)).max() < 1e-8


def test_windows_are_aligned_to_25fps_frames():
    x = _speech_like(1.16)                     # an LRW clip: 29 frames
    w = M.speech_windows(x)
    assert w.shape == (29, 28, 12)
    assert M.n_video_frames(len(x)) == 29
    padded = M.pad_for_windows(x, 29)
    assert (padded[:M.PAD] == 0).all() and np.allclose(padded[M.PAD:M.PAD + len(x)], x, atol=1e-7)
    rows = M.mfcc(padded)
    # frame k: rows [4k, 4k + 28) of the padded signal = unpadded rows [4(k - 3), 4(k + 4))
    for k in (0, 7, 28):
        assert np.allclose(w[k].double().numpy(), rows[4 * k:4 * k + 28, 1:].numpy(), rtol=1e-5, atol=1e-4)
    unpadded = M.mfcc(x)
    k = 10     # an interior frame sees the same audio with and without the padding, up to pre-emphasis at row 0
    assert np.allclose(w[k].double().numpy(), unpadded[4 * (k - 3):4 * (k + 4), 1:].numpy(), rtol=1e-4, atol=1e-3)
    # the window moves with the audio: delaying the speech by one frame shifts the maps by one frame
    delayed = np.concatenate([np.zeros(640, np.float32), x])[:len(x)]
    assert np.allclose(M.speech_windows(delayed)[11].numpy(), w[10].numpy(), atol=1e-3)


def _wav(path, channels, rate):
    return _write_wav(path, np.atleast_2d(channels), rate)


def _resample(x, src, dst):
    from scipy.signal import resample_poly
    g = math.gcd(src, dst)
    return resample_poly(x, dst // g, src // g).astype(np.float32)


def test_speech_features_from_any_rate_channels_and_container(tmp_path):
    from condsynth.io.video import write_video
    x = _speech_like(1.2)
    base = M.speech_features(_wav(tmp_path / "a16.wav", x, 16000))
    assert base.windows.shape == (30, 28, 12) and not base.silent
    ref = base.windows.numpy()

    def close(feat, tol):
        assert feat.windows.shape == base.windows.shape
        # frames whose windows hold no padding; low cepstra (the padding's exact zeros give log(eps))
        a, b = feat.windows.numpy()[3:-4, :, :6], ref[3:-4, :, :6]
        err = np.abs(a - b).mean() / np.abs(b).mean()
        print(f"relative error {err:.3f}")
        assert err < tol, err

    # 8 kHz: band-limited to 4 kHz, so the upper mel bands are empty; the rate and length still match
    low = M.speech_features(_wav(tmp_path / "a8.wav", _resample(x, 16000, 8000), 8000))
    assert low.windows.shape == base.windows.shape and len(low.samples) == len(x)
    r = np.corrcoef(low.windows.numpy()[3:-4, 0, 0], ref[3:-4, 0, 0])[0, 1]
    assert r > 0.8, r
    x44 = _resample(x, 16000, 44100)
    close(M.speech_features(_wav(tmp_path / "s44.wav", np.stack([x44, x44]), 44100)), 0.1)
    close(M.speech_features(_encode(tmp_path / "a.mp3", x44, 44100, "mp3", "mp3")), 0.2)
    frames = [np.full((32, 32, 3), 128, np.uint8)] * 30
    close(M.speech_features(write_video(tmp_path / "v.mp4", frames, 25, audio=x, sample_rate=16000)), 0.2)
    # a stereo file whose channels differ is averaged: left at 0.6, right at 0.2 -> 0.4
    tone = np.sin(2 * np.pi * 300 * np.arange(16000) / 16000).astype(np.float32)
    st = M.speech_features(_wav(tmp_path / "lr.wav", np.stack([0.6 * tone, 0.2 * tone]), 16000))
    assert abs(np.abs(st.samples).max() - 0.4) < 0.01


def test_speech_features_silence_short_and_not_audio(tmp_path):
    silent = M.speech_features(_wav(tmp_path / "silence.wav", np.zeros(8000), 16000))
    assert silent.silent and silent.windows.shape == (12, 28, 12) and np.isfinite(silent.windows).all()
    with pytest.raises(UserError) as e:
        M.speech_features(_wav(tmp_path / "short.wav", np.full(480, 0.1), 16000))   # 30 ms
    assert "short.wav" in str(e.value) and "shorter than one video frame" in str(e.value)
    assert "\n" not in str(e.value)
    (tmp_path / "notes.wav").write_text("these are not samples")
    with pytest.raises(UserError) as e:
        M.speech_features(tmp_path / "notes.wav")
    assert "notes.wav" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "empty.mp3").write_bytes(b"")
    with pytest.raises(UserError, match="empty"):
        M.speech_features(tmp_path / "empty.mp3")
    with pytest.raises(UserError, match="not found"):
        M.speech_features(tmp_path / "missing.flac")
