"""io.video: H.264 + AAC round trips, odd sizes, GIF, atomic writes and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from condsynth.errors import UserError
from condsynth.io.audio import audio_info, read_audio
from condsynth.io.video import read_frames, write_gif, write_video

av = pytest.importorskip("av")


def _clip(n=10, h=64, w=80):
    base = skdata.astronaut()[::4, ::4][:h, :w]
    return [np.ascontiguousarray(np.roll(base, 3 * i, axis=1)) for i in range(n)]


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def test_write_and_read_frames_round_trip(tmp_path):
    frames = _clip()
    out = write_video(tmp_path / "v.mp4", frames, fps=25, crf=12)
    back = read_frames(out)
    assert len(back) == 10 and back[0].shape == (64, 80, 3) and back[0].dtype == np.uint8
    assert min(_psnr(a, b) for a, b in zip(frames, back)) > 30     # crf 12; yuv420p halves the chroma
    assert read_frames(out, max_frames=3).__len__() == 3
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams] == ["h264"]
        assert c.streams.video[0].average_rate == 25
    assert not list(tmp_path.glob(".*tmp*"))                        # atomic: no temp file left


def test_odd_sizes_are_padded_or_cropped(tmp_path):
    frames = [f[:63, :79] for f in _clip(3)]
    padded = read_frames(write_video(tmp_path / "p.mp4", frames, fps=10, crf=0))
    cropped = read_frames(write_video(tmp_path / "c.mkv", frames, fps=10, crf=0, even="crop"))
    assert padded[0].shape == (64, 80, 3) and cropped[0].shape == (62, 78, 3)
    # the padded row/column repeats the last one; the content is kept
    assert _psnr(padded[0][:63, :79], frames[0]) > 30
    assert _psnr(padded[0][63], padded[0][62]) > 30


def test_video_with_aac_track_and_fractional_fps(tmp_path):
    sr = 16000
    t = np.arange(int(1.5 * sr)) / sr
    tone = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    tone[:1600] = 0.0                                               # 0.1 s of silence, then the tone
    frames = _clip(36)                                              # 36 frames at 24000/1001 fps = 1.5 s
    path = write_video(tmp_path / "talk.mp4", frames, fps=24000 / 1001, audio=tone, sample_rate=sr)
    with av.open(str(path)) as c:
        assert sorted(s.type for s in c.streams) == ["audio", "video"]
        assert c.streams.audio[0].codec_context.name == "aac"
        assert c.streams.video[0].average_rate == pytest.approx(24000 / 1001, rel=1e-6)
    info = audio_info(path)
    assert info.sample_rate == sr and info.channels == 1 and info.codec == "aac"
    back = read_audio(path, sample_rate=sr)
    assert len(back) == len(tone)                                   # priming and end padding removed
    onset = int(np.argmax(np.abs(back) > 0.2))
    assert abs(onset - 1600) < 40                                   # audio starts in sync with frame 0
    assert np.corrcoef(back[2000:-2000], tone[2000:-2000])[0, 1] > 0.99
    assert len(read_frames(path)) == 36
    # int16 input gives the same track
    path16 = write_video(tmp_path / "talk16.mp4", frames, fps=24000 / 1001,
                         audio=(tone * 32767).astype(np.int16), sample_rate=sr)
    assert np.abs(read_audio(path16, sample_rate=sr) - back).max() < 0.01


def test_audio_longer_than_the_video_is_kept(tmp_path):
    tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(32000) / 16000)).astype(np.float32)   # 2 s
    path = write_video(tmp_path / "long.mp4", _clip(10), fps=10, audio=tone)               # 1 s of video
    assert len(read_audio(path)) == 32000


def test_bad_inputs(tmp_path):
    frames = _clip(2)
    with pytest.raises(UserError, match="videos are written as"):
        write_video(tmp_path / "v.avi", frames)
    with pytest.raises(UserError, match="no frames"):
        write_video(tmp_path / "v.mp4", [])
    with pytest.raises(ValueError, match="frame 1 is 80x63"):
        write_video(tmp_path / "v.mp4", [frames[0], frames[1][:63]])
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "v.mp4", [f / 255.0 for f in frames])
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        write_video(tmp_path / "v.mp4", frames, audio=np.full(100, 2.0, np.float32))
    with pytest.raises(ValueError, match="mono"):
        write_video(tmp_path / "v.mp4", frames, audio=np.zeros((2, 100), np.float32))
    assert not (tmp_path / "v.mp4").exists()
    with pytest.raises(UserError, match="video file not found"):
        read_frames(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    with pytest.raises(UserError, match="junk.mp4: not a readable video"):
        read_frames(tmp_path / "junk.mp4")


def test_write_gif(tmp_path):
    frames = _clip(4, 32, 32) + [np.zeros((32, 32), np.uint8)]      # a gray frame is repeated to RGB
    path = write_gif(tmp_path / "a.gif", frames, fps=10)
    with Image.open(path) as im:
        assert im.n_frames == 5 and im.info["duration"] == 100 and im.info["loop"] == 0
        im.seek(4)
        assert np.asarray(im.convert("RGB")).max() == 0
    assert not list(tmp_path.glob(".*tmp*"))
