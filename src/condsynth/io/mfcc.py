"""Speech features for talking faces: MFCC windows aligned to 25 fps video, in torch.

AVWnet (thesis ch. 5, T001 lines 1179 and 1289) feeds its audio encoder one 28 x 12 MFCC map per
video frame: 13 coefficients of which the last 12 are kept (c0 dropped), a hop ("successive
window") of 0.01 s, and 280 ms per segment, i.e. 28 steps. The thesis's "window size 0.01 s" is
the hop, not the analysis window: the analysis window is 25 ms, as in ATVGnet's
``python_speech_features.mfcc(sig, 16000, winstep=0.01)`` with its defaults (spec §2.2):

* pre-emphasis 0.97; 400-sample (25 ms) frames every 160 samples (10 ms), rectangular window,
  the last frame zero-padded; power spectrum ``|rfft(frame, 512)|^2 / 512``;
* 26 triangular mel filters from 0 Hz to 8 kHz on FFT bins ``floor(513 * hz / 16000)``;
  log filter energies (zeros replaced by machine epsilon); DCT-II (orthonormal); first 13;
* cepstral lifter 22: ``c_n *= 1 + 11 sin(pi n / 22)``; c0 replaced by the log frame energy.

Alignment (ATVGnet, spec §2.2): 16 kHz, 25 fps, so video frame ``k`` spans MFCC rows
``4k .. 4k + 3``; its window is rows ``[4(k - 3), 4(k + 4))`` - three frames before, the frame and
three after (7 x 40 ms = 280 ms). The waveform is padded with 1,920 zeros (3 frames) at both ends
so that every frame has a full window; the end is padded by up to 400 samples more where the last
window would otherwise lack its last row (the 25 ms frame reaches past the padded end).

:func:`mfcc` is the whole-signal transform (``rows x 13``), :func:`frame_windows` cuts it into the
``T x 28 x 12`` per-frame maps, :func:`speech_windows` does both from samples, and
:func:`speech_features` from a file of any container, rate and channel count (through
:func:`condsynth.io.audio.read_audio`: resampled to 16 kHz, averaged to mono), refusing audio
shorter than one video frame (40 ms) with a one-line error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from condsynth.errors import UserError

SAMPLE_RATE = 16000
FPS = 25
HOP = 160                      # 0.01 s: the thesis's "successive window"
WIN = 400                      # 0.025 s analysis window (python_speech_features' default)
NFFT = 512
N_MELS = 26
N_CEPS = 13
LIFTER = 22
PREEMPH = 0.97
ROWS_PER_FRAME = SAMPLE_RATE // FPS // HOP       # 4 MFCC rows per 25 fps frame
CONTEXT = 3                                      # frames of context on each side
WINDOW_ROWS = (2 * CONTEXT + 1) * ROWS_PER_FRAME  # 28
PAD = CONTEXT * SAMPLE_RATE // FPS               # 1920 samples = 0.12 s
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS           # 640
SILENCE_RMS = 1e-4             # below this the clip is called silent (about -80 dBFS)

_FILTERS: dict[tuple, torch.Tensor] = {}


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filters(n_mels: int = N_MELS, nfft: int = NFFT, rate: int = SAMPLE_RATE) -> torch.Tensor:
    """``n_mels x (nfft//2 + 1)`` triangular filters on integer FFT bins (python_speech_features' layout)."""
    key = (n_mels, nfft, rate)
    if key not in _FILTERS:
        mels = np.linspace(_hz_to_mel(0.0), _hz_to_mel(rate / 2), n_mels + 2)
        bins = np.floor((nfft + 1) * _mel_to_hz(mels) / rate).astype(int)
        fb = np.zeros((n_mels, nfft // 2 + 1))
        for m in range(n_mels):
            lo, mid, hi = bins[m], bins[m + 1], bins[m + 2]
            for k in range(lo, mid):                 # rising edge: 0 at lo, 1 at mid
                fb[m, k] = (k - lo) / (mid - lo)
            for k in range(mid, hi):                 # falling edge: 1 at mid, 0 at hi
                fb[m, k] = (hi - k) / (hi - mid)
        _FILTERS[key] = torch.from_numpy(fb)
    return _FILTERS[key]


def _dct_ortho(n: int, k: int) -> torch.Tensor:
    """``n x k`` orthonormal DCT-II basis: ``x @ D`` gives the first ``k`` coefficients."""
    i = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(k, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * j * (2 * i + 1) / (2 * n)) * math.sqrt(2.0 / n)
    d[:, 0] /= math.sqrt(2.0)
    return d


def mfcc(samples, rate: int = SAMPLE_RATE) -> torch.Tensor:
    """``rows x 13`` MFCCs of 16 kHz mono samples (float64; c0 = log frame energy), rows every 10 ms."""
    if rate != SAMPLE_RATE:
        raise ValueError(f"mfcc expects {SAMPLE_RATE} Hz samples, got {rate} Hz (read_audio resamples)")
    x = torch.as_tensor(np.asarray(samples), dtype=torch.float64).reshape(-1)
    if x.numel() == 0:
        raise ValueError("mfcc of an empty signal")
    x = torch.cat([x[:1], x[1:] - PREEMPH * x[:-1]])                      # pre-emphasis
    n = x.numel()
    rows = 1 if n <= WIN else 1 + math.ceil((n - WIN) / HOP)
    x = torch.nn.functional.pad(x, (0, (rows - 1) * HOP + WIN - n))        # zero-pad the last frame
    frames = x.unfold(0, WIN, HOP)                                         # rows x 400, rectangular window
    power = torch.fft.rfft(frames, NFFT).abs().pow(2) / NFFT               # rows x 257
    eps = torch.finfo(torch.float64).eps
    energy = power.sum(1)
    energy = torch.where(energy == 0, torch.full_like(energy, eps), energy)
    fbank = power @ mel_filters().T
    fbank = torch.where(fbank == 0, torch.full_like(fbank, eps), fbank)
    ceps = fbank.log() @ _dct_ortho(N_MELS, N_CEPS)
    lift = 1 + (LIFTER / 2) * torch.sin(math.pi * torch.arange(N_CEPS, dtype=torch.float64) / LIFTER)
    ceps = ceps * lift
    ceps[:, 0] = energy.log()                                              # appendEnergy
    return ceps


def n_video_frames(n_samples: int) -> int:
    """Frames of a 25 fps video as long as ``n_samples`` at 16 kHz: ``round(25 x duration)``."""
    return int(round(n_samples * FPS / SAMPLE_RATE))


def pad_for_windows(samples: np.ndarray, n_frames: int) -> np.ndarray:
    """The waveform with 1,920 zeros before it and enough after it for ``n_frames`` full windows."""
    x = np.asarray(samples, np.float64).reshape(-1)
    x = x[: n_frames * SAMPLES_PER_FRAME]
    # the last window ends at row 4 * (n_frames - 1) + 28 of the padded signal
    need = (ROWS_PER_FRAME * (n_frames - 1) + WINDOW_ROWS - 1) * HOP + WIN
    tail = max(PAD, need - PAD - len(x))
    return np.concatenate([np.zeros(PAD), x, np.zeros(tail)])


def frame_windows(ceps: torch.Tensor, n_frames: int, keep: slice = slice(1, N_CEPS)) -> torch.Tensor:
    """``n_frames x 28 x 12`` windows of the MFCC of a *padded* waveform (:func:`pad_for_windows`):
    frame ``k`` gets rows ``[4k, 4k + 28)``, i.e. unpadded rows ``[4(k - 3), 4(k + 4))``."""
    need = ROWS_PER_FRAME * (n_frames - 1) + WINDOW_ROWS
    if ceps.shape[0] < need:
        raise ValueError(f"{ceps.shape[0]} MFCC rows, {need} needed for {n_frames} frames")
    return ceps[:need, keep].unfold(0, WINDOW_ROWS, ROWS_PER_FRAME).transpose(1, 2).contiguous()


def speech_windows(samples, n_frames: int | None = None) -> torch.Tensor:
    """Per-frame MFCC maps ``T x 28 x 12`` (float32) of 16 kHz mono samples; ``T`` defaults to
    ``round(25 x duration)``. A clip's video length can be given instead (LRW: 29)."""
    x = np.asarray(samples, np.float64).reshape(-1)
    n_frames = n_video_frames(len(x)) if n_frames is None else int(n_frames)
    if n_frames < 1:
        raise ValueError(f"{len(x)} samples is shorter than one video frame ({SAMPLES_PER_FRAME} samples)")
    return frame_windows(mfcc(pad_for_windows(x, n_frames)), n_frames).float()


@dataclass
class SpeechFeatures:
    windows: torch.Tensor       # T x 28 x 12
    samples: np.ndarray         # the 16 kHz mono waveform (unpadded)
    silent: bool                # RMS below SILENCE_RMS: valid input, but there is no speech to follow

    @property
    def n_frames(self) -> int:
        return self.windows.shape[0]


def speech_features(path: str | Path, n_frames: int | None = None) -> SpeechFeatures:
    """Read any audio file (or a video's audio track), resample to 16 kHz mono, and return its
    per-frame MFCC windows. Audio shorter than one 25 fps frame (40 ms) is a one-line UserError;
    silence is valid (``silent`` is set so callers can warn)."""
    from condsynth.io.audio import read_audio
    path = Path(path)
    x = read_audio(path, SAMPLE_RATE)
    if len(x) < SAMPLES_PER_FRAME:
        raise UserError(f"{path}: audio is {1000 * len(x) / SAMPLE_RATE:.1f} ms long, shorter than one "
                        f"video frame ({1000 // FPS} ms)")
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return SpeechFeatures(speech_windows(x, n_frames), x, rms < SILENCE_RMS)
