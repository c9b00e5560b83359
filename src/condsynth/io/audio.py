"""Audio files: decode any container to float samples at one rate, with duration checks.

:func:`read_audio` reads wav / flac / mp3 / m4a / ogg and the audio track of a video (mp4, mov,
mkv, ...) through PyAV: decode, resample with FFmpeg's ``AudioResampler`` to ``sample_rate``
(16 kHz by default, what speech models use), then downmix to mono as the mean of the channels.
When ``soundfile`` is installed and a wav / flac file already has the requested rate, it is
read by soundfile instead (faster; the same samples, since no resampling is involved).

Samples are float32 in [-1, 1]. Trailing encoder padding past the duration the container
declares (AAC and MP3 decoders return whole frames) is dropped. Every problem is a one-line
:class:`~condsynth.errors.UserError` naming the file: missing, empty, no audio stream,
undecodable, shorter than ``min_seconds`` or longer than ``max_seconds``, or (with
``expect_rate``) recorded at another rate.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from condsynth.errors import UserError
from condsynth.io.video import import_av

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus")
_SOUNDFILE_SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about its first audio stream, without decoding it."""

    sample_rate: int
    channels: int
    seconds: float | None   # None when the container does not declare a duration
    codec: str


def _check_file(path: Path) -> None:
    problem = ("audio file not found" if not path.exists() else
               "is a folder, expected an audio file" if path.is_dir() else
               "file is empty" if path.stat().st_size == 0 else None)
    if problem:
        raise UserError(f"{path}: {problem}")


def _open(path: Path):
    av = import_av(path, "reading audio")
    try:
        container = av.open(str(path))
    except Exception as exc:  # noqa: BLE001 - FFmpeg could not even probe it
        raise UserError(f"{path}: not a readable audio or video file ({type(exc).__name__})") from None
    if not container.streams.audio:
        container.close()
        raise UserError(f"{path}: has no audio stream")
    return av, container


def _declared_seconds(stream, container) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def audio_info(path: str | Path) -> AudioInfo:
    """Native rate, channel count, declared duration and codec of the first audio stream."""
    path = Path(path)
    _check_file(path)
    _, container = _open(path)
    with container:
        st = container.streams.audio[0]
        return AudioInfo(int(st.codec_context.sample_rate), int(st.codec_context.channels),
                         _declared_seconds(st, container), st.codec_context.name)


def _decode_av(path: Path, sample_rate: int) -> tuple[np.ndarray, int]:
    """``channels x samples`` float32 at ``sample_rate``, and the file's native rate."""
    av, container = _open(path)
    chunks = []
    try:
        with container:
            st = container.streams.audio[0]
            native = int(st.codec_context.sample_rate)
            declared = _declared_seconds(st, container)
            resampler = av.AudioResampler(format="fltp", layout=None, rate=sample_rate)
            last = 0  # samples in the last decoded frame, at the native rate
            for frame in container.decode(st):
                last = frame.samples
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt stream: FFmpeg's decoders raise many kinds
        raise UserError(f"{path}: not a readable audio file ({type(exc).__name__}: {exc})") from None
    if not chunks:
        raise UserError(f"{path}: audio stream has no samples")
    x = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if declared is not None:
        n = int(round(declared * sample_rate))
        # Encoders pad their last frame; drop that padding, never more than the last frame.
        if n < x.shape[1] <= n + math.ceil(last * sample_rate / native) + 1:
            x = x[:, :n]
    return x, native


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile's errors: unreadable or corrupt
        raise UserError(f"{path}: not a readable audio file ({type(exc).__name__}: {exc})") from None
    if data.shape[0] == 0:
        raise UserError(f"{path}: audio stream has no samples")
    return np.ascontiguousarray(data.T), int(rate)


def _soundfile_rate(path: Path) -> int | None:
    """The file's rate when soundfile can read it directly, else None."""
    if path.suffix.lower() not in _SOUNDFILE_SUFFIXES or importlib.util.find_spec("soundfile") is None:
        return None
    try:
        import soundfile
        return int(soundfile.info(str(path)).samplerate)
    except Exception:  # noqa: BLE001 - let the PyAV path report what is wrong with the file
        return None


def read_audio(path: str | Path, sample_rate: int = 16000, mono: bool = True, *, min_seconds: float | None = None,
               max_seconds: float | None = None, expect_rate: int | None = None) -> np.ndarray:
    """Samples of the first audio stream of ``path``, float32 in [-1, 1], at ``sample_rate``.

    Returns shape ``(samples,)`` with ``mono`` (the mean of the channels), else
    ``(channels, samples)``. ``min_seconds`` / ``max_seconds`` bound the duration;
    ``expect_rate`` refuses a file recorded at another rate instead of resampling it (a dataset
    that should already be at 16 kHz).
    """
    path = Path(path)
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate}")
    sample_rate = int(sample_rate)
    _check_file(path)
    if _soundfile_rate(path) == sample_rate:
        x, native = _decode_soundfile(path)
    else:
        x, native = _decode_av(path, sample_rate)
    if expect_rate is not None and native != int(expect_rate):
        raise UserError(f"{path}: audio is at {native} Hz, expected {int(expect_rate)} Hz")
    seconds = x.shape[1] / sample_rate
    if min_seconds is not None and seconds < min_seconds:
        raise UserError(f"{path}: audio is {seconds:.3f} s long, shorter than the {min_seconds:g} s needed")
    if max_seconds is not None and seconds > max_seconds:
        raise UserError(f"{path}: audio is {seconds:.3f} s long, longer than the {max_seconds:g} s allowed")
    if not np.isfinite(x).all():
        raise UserError(f"{path}: decoded audio has NaN or infinite samples")
    return x.mean(axis=0) if mono else x

