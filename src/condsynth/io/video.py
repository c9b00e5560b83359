"""Video files: read frames, write H.264 (with an optional AAC audio track) and GIF, atomically.

* :func:`read_frames`: every frame of a video as ``H x W x 3`` uint8 RGB (PyAV, any container
  FFmpeg reads).
* :func:`write_video`: H.264 (libx264, yuv420p) in ``.mp4`` / ``.m4v`` / ``.mov`` / ``.mkv``,
  optionally with a mono AAC track from a float (``[-1, 1]``) or int16 sample array. yuv420p
  needs even sides: an odd width or height is padded by repeating the last column / row
  (``even='pad'``, default) or cropped by one (``even='crop'``). Audio and video packets are
  interleaved in time, and the audio frames carry timestamps, so the AAC encoder's priming
  samples are cut by the container's edit list and the audio starts with the first frame.
* :func:`write_gif`: an animated GIF (Pillow), looping.

All writers go through :func:`~condsynth.io.atomic.atomic_path`: a crash never leaves half a file
under the final name. PyAV is the ``video`` extra; without it, reading and writing videos is a
one-line :class:`~condsynth.errors.UserError`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from condsynth.errors import UserError
from condsynth.io.atomic import atomic_path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# containers write_video can put H.264 + AAC into
WRITE_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def is_video(path: str | Path) -> bool:
    """Whether ``path`` has a video file suffix (by name only)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def import_av(path: str | Path, what: str = "reading videos"):
    """PyAV, or a one-line UserError naming ``path`` and the extra to install."""
    try:
        import av
    except ImportError:
        raise UserError(f"{path}: {what} needs PyAV (pip install 'condsynth[video]')") from None
    return av


def read_frames(path: str | Path, max_frames: int | None = None) -> list[np.ndarray]:
    """All frames (or the first ``max_frames``) of a video as ``H x W x 3`` uint8 RGB arrays."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: video file not found")
    av = import_av(path)
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"{path}: has no video stream")
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames and len(frames) >= max_frames:
                    break
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any demux/decode failure: the file is unreadable
        raise UserError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from None
    if not frames:
        raise UserError(f"{path}: video has no frames")
    return frames


def _rgb_frames(frames: Iterable, path: Path) -> list[np.ndarray]:
    """Check and normalise frames to ``H x W x 3`` uint8 (gray ``H x W`` / ``H x W x 1`` repeated)."""
    out = []
    for i, f in enumerate(frames):
        a = np.asarray(f)
        if a.dtype != np.uint8:
            raise ValueError(f"{path}: frame {i} is {a.dtype}; frames must be uint8 (e.g. "
                             "io.images.tensor_to_uint8 for float tensors)")
        if a.ndim == 2:
            a = a[..., None]
        if a.ndim != 3 or a.shape[2] not in (1, 3):
            raise ValueError(f"{path}: frame {i} has shape {a.shape}; expected H x W x 3 (or H x W x 1)")
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        if out and a.shape != out[0].shape:
            raise ValueError(f"{path}: frame {i} is {a.shape[1]}x{a.shape[0]} but frame 0 is "
                             f"{out[0].shape[1]}x{out[0].shape[0]}; all frames must have one size")
        out.append(a)
    if not out:
        raise UserError(f"{path}: no frames to write")
    return out


def _even(frame: np.ndarray, mode: str) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    if mode == "crop":
        return frame[:h // 2 * 2, :w // 2 * 2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _mono_float(audio, path: Path) -> np.ndarray:
    """A mono float32 track in [-1, 1] from a float or int16 array of shape (n,), (n, 1) or (1, n)."""
    a = np.asarray(audio)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{path}: audio has shape {a.shape}; expected a mono track of shape (samples,)")
    if a.dtype == np.int16:
        return (a.astype(np.float32) / 32768.0)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{path}: audio is {a.dtype}; expected float samples in [-1, 1] or int16")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{path}: audio has NaN or infinite samples")
    peak = float(np.abs(a).max(initial=0.0))
    if peak > 1.0 + 1e-6:
        raise ValueError(f"{path}: float audio must lie in [-1, 1], peak is {peak:.3g}; normalise it first")
    return np.clip(a, -1.0, 1.0)


def write_video(path: str | Path, frames: Iterable, fps: float = 25, audio=None, sample_rate: int = 16000, *,
                crf: int | None = None, even: str = "pad") -> Path:
    """Write ``frames`` (uint8 ``H x W x 3``) as H.264, with ``audio`` as a mono AAC track if given.

    ``fps`` may be fractional (29.97). ``audio``: float samples in [-1, 1] or int16, at
    ``sample_rate``; it may be shorter or longer than the video (the container's duration is the
    longer of the two). ``crf``: libx264's constant rate factor (default 23; 0 is lossless luma).
    ``even``: ``'pad'`` or ``'crop'`` for odd frame sides (yuv420p needs even ones).
    """
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: videos are written as {', '.join(WRITE_FORMATS)}")
    if not fps or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if even not in ("pad", "crop"):
        raise ValueError(f"even must be 'pad' or 'crop', got {even!r}")
    imgs = [_even(f, even) for f in _rgb_frames(frames, path)]
    track = None if audio is None else _mono_float(audio, path)
    if track is not None and (int(sample_rate) != sample_rate or sample_rate <= 0):
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate}")
    av = import_av(path, "writing videos")
    rate = Fraction(fps).limit_denominator(1001)
    h, w = imgs[0].shape[:2]
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=fmt) as box:
            vs = box.add_stream("libx264", rate=rate)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            if crf is not None:
                vs.options = {"crf": str(int(crf))}
            aus = None
            if track is not None:
                aus = box.add_stream("aac", rate=int(sample_rate))
                aus.layout = "mono"
            sent = 0  # audio samples handed to the encoder so far

            def push_audio(upto: int):
                nonlocal sent
                upto = min(upto, len(track))
                if upto <= sent:
                    return
                fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(track[None, sent:upto]), format="flt",
                                                layout="mono")
                fr.sample_rate, fr.pts, fr.time_base = int(sample_rate), sent, Fraction(1, int(sample_rate))
                for pkt in aus.encode(fr):
                    box.mux(pkt)
                sent = upto

            for i, img in enumerate(imgs):
                fr = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                fr.pts, fr.time_base = i, 1 / rate
                for pkt in vs.encode(fr):
                    box.mux(pkt)
                if aus is not None:  # the audio of this frame's interval, so packets interleave
                    push_audio(int(round((i + 1) * sample_rate / rate)))
            for pkt in vs.encode():
                box.mux(pkt)
            if aus is not None:
                push_audio(len(track))
                for pkt in aus.encode(None):
                    box.mux(pkt)
    return path


def write_gif(path: str | Path, frames: Iterable, fps: float = 12, loop: int = 0) -> Path:
    """An animated GIF of uint8 frames (Pillow's palette quantisation), shown ``1/fps`` s each.

    GIF stores delays in 1/100 s, so the delay is ``round(100 / fps)`` hundredths (at least 2:
    most viewers slow shorter delays down to 1/10 s). ``loop=0`` repeats forever.
    """
    from PIL import Image
    path = Path(path)
    if not fps or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    imgs = [Image.fromarray(a) for a in _rgb_frames(frames, path)]
    delay_ms = 10 * max(2, int(round(100 / fps)))
    with atomic_path(path) as tmp:
        imgs[0].save(tmp, format="GIF", save_all=True, append_images=imgs[1:], duration=delay_ms, loop=loop)
    return path
