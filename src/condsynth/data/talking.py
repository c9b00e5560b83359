"""Talking-face datasets: LRW and GRID readers, ``data prepare lrw|grid`` and the prepared cache.

Layouts (docs/talking.md):

* **LRW**: ``ROOT/WORD/{train,val,test}/WORD_00001.mp4`` (29 frames at 25 fps, h264 + AAC) with
  ``WORD_00001.txt`` beside it ("Text:  WORD", "Duration: D seconds"). The word is the label.
* **GRID**: ``ROOT/s<k>/<code>.mpg`` (or ``.mp4``; 75 frames, the real corpus's s21 has no video)
  and the align files ``ROOT/align/s<k>/<code>.align`` (also ``alignments/s<k>/`` or
  ``s<k>/align/``), lines ``start end word`` in 1/25000 s with ``sil`` / ``sp`` pauses.

:func:`prepare` turns either into a cache a model reads without decoding a video again: per clip
``OUT/<split>/<name>.npz`` with ``crops`` (T x S x S x 3 uint8: faces aligned to the toolkit's
template on the nose and the eye corners, so the mouth stays free to move; the per-frame
similarity is smoothed over time with a Gaussian of ``smooth`` frames, against the zoom-in-and-out
of per-frame alignment), ``landmarks`` (T x 68 x 2, crop pixels), ``mfcc`` (T x 28 x 12,
:mod:`condsynth.io.mfcc`) and ``matrices``; and ``OUT/index.json`` with the clips, the words and
the **failures** (a clip without a face or without audio is listed there, not fatal).
Landmarks come from dlib (:class:`~condsynth.io.faces.FaceAnalyzer`) per frame, or, for the
talking world, from the exact ``.json`` truth beside a clip (``landmarks="auto"`` uses the truth
where it exists). Frames where dlib finds no face take the nearest detected frame's points; a
clip with fewer than half its frames detected fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from condsynth.config import bounded
from condsynth.data import rng_for, split_key
from condsynth.data.check import Report, plural, register_check
from condsynth.errors import UserError

LRW_SPLITS = ("train", "val", "test")
LRW_NAME = re.compile(r"^([A-Z0-9]+)_(\d{5})$")
GRID_SPEAKER = re.compile(r"^s(\d+)$")
ALIGN_ANCHORS = (27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45)   # nose and eye corners (blink-free)


@dataclass(frozen=True)
class TalkingClip:
    path: Path
    name: str              # WORD_00001 (LRW) or s<k>/<code> (GRID)
    split: str             # train / val / test (LRW) or the speaker s<k> (GRID)
    word: str | None       # LRW's label
    align: Path | None = None
    audio: Path | None = None   # a separate audio file (GRID's audio_25k/); else the video's own track


def read_lrw(root: str | Path) -> tuple[list[TalkingClip], list[str]]:
    """Every clip of an LRW folder (sorted) and the words (sorted folder names with clips)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: LRW folder not found")
    clips, words = [], []
    for wdir in sorted(p for p in root.iterdir() if p.is_dir()):
        found = []
        for split in LRW_SPLITS:
            for f in sorted((wdir / split).glob("*.mp4")):
                m = LRW_NAME.match(f.stem)
                if not m or m.group(1) != wdir.name:
                    raise UserError(f"{f}: LRW clips are named {wdir.name}_NNNNN.mp4 inside {wdir.name}/")
                found.append(TalkingClip(f, f"{wdir.name}/{split}/{f.stem}", split, wdir.name))
        if found:
            words.append(wdir.name)
            clips += found
    if not clips:
        raise UserError(f"{root}: no LRW clips (expected WORD/{{train,val,test}}/WORD_NNNNN.mp4)")
    return clips, words


def _align_file(root: Path, speaker: str, code: str) -> Path | None:
    for folder in (root / "align" / speaker, root / "alignments" / speaker, root / speaker / "align"):
        if (folder / f"{code}.align").is_file():
            return folder / f"{code}.align"
    return None


def _audio_file(root: Path, speaker: str, code: str) -> Path | None:
    for folder in (root / "audio_25k" / speaker, root / "audio_50k" / speaker, root / "audio" / speaker,
                   root / speaker / "audio"):
        if (folder / f"{code}.wav").is_file():
            return folder / f"{code}.wav"
    return None


def read_grid(root: str | Path) -> list[TalkingClip]:
    """Every GRID video (``s<k>/*.mpg|mp4``) with its align file and, where GRID's separate audio is
    present (``audio_25k/s<k>/<code>.wav``, also ``audio_50k/``, ``audio/``, ``s<k>/audio/``), its audio."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: GRID folder not found")
    clips = []
    for sdir in sorted((p for p in root.iterdir() if p.is_dir() and GRID_SPEAKER.match(p.name)),
                       key=lambda p: int(p.name[1:])):
        for f in sorted(list(sdir.glob("*.mpg")) + list(sdir.glob("*.mp4"))):
            clips.append(TalkingClip(f, f"{sdir.name}/{f.stem}", sdir.name, None, _align_file(root, sdir.name, f.stem),
                                     _audio_file(root, sdir.name, f.stem)))
    if not clips:
        raise UserError(f"{root}: no GRID videos (expected s<k>/<code>.mpg and align/s<k>/<code>.align)")
    return clips


def read_align(path: str | Path, fps: int = 25) -> list[tuple[str, float, float]]:
    """A GRID align file as ``(word, start s, end s)`` without the ``sil``/``sp`` pauses."""
    path = Path(path)
    words = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or int(parts[1]) < int(parts[0]):
            raise UserError(f"{path}: line {n} is not 'start end word': {line[:60]!r}")
        if parts[2] not in ("sil", "sp"):
            words.append((parts[2], int(parts[0]) / (fps * 1000), int(parts[1]) / (fps * 1000)))
    return words


def read_lrw_text(path: str | Path) -> tuple[str, float | None]:
    """LRW's ``.txt``: the word (``Text:``) and the word's duration in seconds where given."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"^Text:\s*(\S+)", text, re.M)
    if not m:
        raise UserError(f"{path}: no 'Text:' line (LRW's word file)")
    d = re.search(r"^Duration:\s*([0-9.]+)", text, re.M)
    return m.group(1), float(d.group(1)) if d else None


def _probe(path: Path) -> tuple[int, bool, tuple[int, int]]:
    """Frames, whether there is an audio stream, and the frame size, from the container (decoding video)."""
    from condsynth.io.video import import_av
    av = import_av(path)
    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise UserError(f"{path}: has no video stream")
            has_audio = bool(box.streams.audio)
            n, hw = 0, (0, 0)
            for frame in box.decode(video=0):
                n, hw = n + 1, (frame.height, frame.width)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - FFmpeg's many failure kinds: the file is unreadable
        raise UserError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from None
    if n == 0:
        raise UserError(f"{path}: video has no frames")
    return n, has_audio, hw


def _frames_line(frames: list[int]) -> str:
    vals, counts = np.unique(frames, return_counts=True)
    return "frames per clip: " + ", ".join(f"{v} ({c})" for v, c in zip(vals, counts))


@register_check("lrw", "LRW: WORD/{train,val,test}/WORD_NNNNN.mp4 with WORD_NNNNN.txt: clips per split and word, "
                       "frames per clip, clips without audio or without their word file")
def check_lrw(root: Path) -> Report:
    clips, words = read_lrw(root)
    frames, no_audio, no_txt, sizes = [], [], [], set()
    for c in clips:
        n, has_audio, hw = _probe(c.path)
        frames.append(n)
        sizes.add(hw)
        if not has_audio:
            no_audio.append(c.name)
        txt = c.path.with_suffix(".txt")
        if not txt.is_file():
            no_txt.append(c.name)
        elif read_lrw_text(txt)[0] != c.word:
            raise UserError(f"{txt}: says '{read_lrw_text(txt)[0]}' but the clip is in {c.word}/")
    per = {s: sum(c.split == s for c in clips) for s in LRW_SPLITS}
    rep = Report("lrw", root, counts={"clips": len(clips), "words": len(words), **per, "no_audio": len(no_audio)})
    rep.lines += [f"{plural(len(clips), 'clip')} of {plural(len(words), 'word')}: "
                  + ", ".join(f"{s} {per[s]}" for s in LRW_SPLITS),
                  _frames_line(frames), "frame sizes: " + ", ".join(f"{h}x{w}" for h, w in sorted(sizes))]
    if no_audio:
        rep.warnings.append(f"{plural(len(no_audio), 'clip')} without audio (prepare lists them as failures): "
                            + ", ".join(no_audio[:5]))
    if no_txt:
        rep.warnings.append(f"{plural(len(no_txt), 'clip')} without a .txt word file: " + ", ".join(no_txt[:5]))
    if any(f != 29 for f in frames):
        rep.warnings.append("LRW clips have 29 frames; some here differ")
    return rep


@register_check("grid", "GRID: s<k>/<code>.mpg (or .mp4) with align/s<k>/<code>.align: videos per speaker, frames, "
                        "align files and their words, videos without audio or align file")
def check_grid(root: Path) -> Report:
    clips = read_grid(root)
    frames, no_audio, no_align, n_words = [], [], [], 0
    for c in clips:
        n, has_audio, _ = _probe(c.path)
        frames.append(n)
        if not has_audio and c.audio is None:
            no_audio.append(c.name)
        if c.align is None:
            no_align.append(c.name)
        else:
            n_words += len(read_align(c.align))
    speakers = sorted({c.split for c in clips}, key=lambda s: int(s[1:]))
    rep = Report("grid", root, counts={"videos": len(clips), "speakers": len(speakers), "no_audio": len(no_audio),
                                       "no_align": len(no_align), "words": n_words})
    rep.lines += [f"{plural(len(clips), 'video')} of {plural(len(speakers), 'speaker')} ({', '.join(speakers)})",
                  _frames_line(frames), f"{n_words} aligned words"]
    if no_audio:
        rep.warnings.append(f"{plural(len(no_audio), 'video')} without audio: " + ", ".join(no_audio[:5]))
    if no_align:
        rep.warnings.append(f"{plural(len(no_align), 'video')} without an align file: " + ", ".join(no_align[:5]))
    return rep


# ------------------------------------------------------------------------------------------ prepare
def _similarity_params(m: np.ndarray) -> np.ndarray:
    """``(a, b, tx, ty)`` of ``[[a, -b, tx], [b, a, ty]]`` (a similarity matrix)."""
    return np.array([(m[0, 0] + m[1, 1]) / 2, (m[1, 0] - m[0, 1]) / 2, m[0, 2], m[1, 2]])


def smooth_matrices(mats: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of per-frame similarities over time (their (a, b, tx, ty) parameters)."""
    from scipy.ndimage import gaussian_filter1d
    p = np.stack([_similarity_params(m) for m in mats])
    if sigma > 0 and len(p) > 1:
        p = gaussian_filter1d(p, sigma, axis=0, mode="nearest")
    a, b, tx, ty = p.T
    return np.stack([np.stack([a, -b, tx], 1), np.stack([b, a, ty], 1)], 1)


def _frame_landmarks(frames, clip: TalkingClip, source: str, analyzer_box: list) -> np.ndarray | str:
    truth = clip.path.with_suffix(".json")
    if source in ("truth", "auto") and truth.is_file():
        pts = np.asarray(json.loads(truth.read_text())["landmarks"], np.float64)
        if pts.shape != (len(frames), 68, 2):
            raise UserError(f"{truth}: landmarks are {pts.shape}, expected ({len(frames)}, 68, 2)")
        return pts
    if source == "truth":
        return "no landmark truth (.json) beside the clip"
    if not analyzer_box:
        from condsynth.io.faces import FaceAnalyzer
        analyzer_box.append(FaceAnalyzer())
    found = [analyzer_box[0].landmarks(f) for f in frames]
    hits = [i for i, p in enumerate(found) if p is not None]
    if len(hits) < (len(frames) + 1) // 2:
        return f"no face in {len(frames) - len(hits)} of {len(frames)} frames"
    return np.stack([found[min(hits, key=lambda h: abs(h - i))] if found[i] is None else found[i]
                     for i in range(len(frames))])


def prepare_clip(clip: TalkingClip, size: int, smooth: float, source: str, analyzer_box: list) -> dict | str:
    """The cached arrays of one clip, or the reason it failed (no face, no audio)."""
    import cv2

    from condsynth.io.faces import apply_matrix, default_template, similarity_transform
    from condsynth.io.mfcc import speech_features
    from condsynth.io.video import read_frames
    try:
        frames = read_frames(clip.path)
    except UserError as e:
        return f"unreadable video ({str(e).split(': ', 1)[-1]})"
    try:
        feats = speech_features(clip.audio or clip.path, n_frames=len(frames))
    except UserError as e:
        return "no audio" if "no audio stream" in str(e) else f"audio: {str(e).split(': ', 1)[-1]}"
    pts = _frame_landmarks(frames, clip, source, analyzer_box)
    if isinstance(pts, str):
        return pts
    template = default_template().pixels(size)
    a = list(ALIGN_ANCHORS)
    mats = smooth_matrices(np.stack([similarity_transform(p[a], template[a]) for p in pts]), smooth)
    crops = np.stack([cv2.warpAffine(f, m, (size, size), flags=cv2.INTER_AREA if m[0, 0] < 1 else cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE) for f, m in zip(frames, mats)])
    lm = np.stack([apply_matrix(m, p) for m, p in zip(mats, pts)]).astype(np.float32)
    return {"crops": crops, "landmarks": lm, "mfcc": feats.windows.numpy(), "matrices": mats.astype(np.float32),
            "silent": np.array(feats.silent), "_samples": feats.samples}


def pad_to_31(got: dict) -> dict:
    """The thesis's 31-frame LRW clips (T001 line 1283): old ffmpeg builds put two extra copies of the
    first frame in front of the native 29 (spec §2.2). The frames, landmarks and matrices get the two
    copies; the MFCC windows move with the video, two silent frames in front of the audio."""
    from condsynth.io.mfcc import SAMPLES_PER_FRAME, speech_windows
    out = dict(got)
    for key in ("crops", "landmarks", "matrices"):
        out[key] = np.concatenate([got[key][:1], got[key][:1], got[key]])
    audio = np.concatenate([np.zeros(2 * SAMPLES_PER_FRAME, np.float32), got.pop("_samples")])
    out["mfcc"] = speech_windows(audio, len(out["crops"])).numpy()
    return out


def prepare(root: str | Path, layout: str, out: str | Path, *, size: int = 128, smooth: float = 2.0,
            landmarks: str = "auto", pad31: bool = False, progress: bool | None = None) -> dict:
    """Cache aligned crops, landmarks and MFCC of every clip of an LRW or GRID folder under ``out``
    (``pad31``: LRW's 29 frames as the thesis's 31, see :func:`pad_to_31`)."""
    from tqdm import tqdm

    from condsynth.io.atomic import atomic_dir, atomic_write_text
    root, out = Path(root), Path(out)
    if layout == "lrw":
        clips, words = read_lrw(root)
    elif layout == "grid":
        clips, words = read_grid(root), []
    else:
        raise UserError(f"unknown talking-face layout '{layout}' (lrw or grid)")
    if landmarks not in ("auto", "dlib", "truth"):
        raise UserError(f"landmarks must be auto, dlib or truth, got '{landmarks}'")
    index, failures, box = [], [], []
    bar = tqdm(clips, desc=f"prepare {layout}", disable=(progress is False) or (progress is None and len(clips) < 50))
    with atomic_dir(out) as tmp:
        for c in bar:
            got = prepare_clip(c, size, smooth, landmarks, box)
            if isinstance(got, str):
                failures.append({"clip": str(c.path.relative_to(root)), "reason": got})
                continue
            got = pad_to_31(got) if pad31 and len(got["crops"]) == 29 else got
            got.pop("_samples", None)
            rel = Path(c.split) / f"{c.path.stem}.npz"
            (tmp / c.split).mkdir(exist_ok=True)
            extra = {}
            if c.align is not None:
                extra["words"] = [[w, s, e] for w, s, e in read_align(c.align)]
            np.savez_compressed(tmp / rel, **got)
            index.append({"name": c.name, "split": c.split, "word": c.word, "label": words.index(c.word) if c.word
                          else None, "file": str(rel), "frames": int(len(got["crops"])), **extra})
        meta = {"layout": layout, "source": str(root), "size": size, "smooth_frames": smooth, "landmarks": landmarks,
                "pad_to_31": pad31,
                "align_anchors": list(ALIGN_ANCHORS), "words": words, "clips": index, "failures": failures}
        atomic_write_text(tmp / "index.json", json.dumps(meta, indent=1) + "\n")
    return meta


def read_prepared(root: str | Path) -> dict:
    """``index.json`` of a prepared cache (a one-line UserError if it is not one)."""
    path = Path(root) / "index.json"
    if not path.is_file():
        raise UserError(f"{root}: not a prepared talking-face cache (no index.json; run condsynth data prepare)")
    try:
        meta = json.loads(path.read_text())
        meta["clips"], meta["words"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a valid prepared index") from None
    return meta


def load_prepared_clip(root: str | Path, entry: dict) -> dict[str, np.ndarray]:
    path = Path(root) / entry["file"]
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable prepared clip ({e})") from None



# ------------------------------------------------------------------------------- lip-reading data
@dataclass
class LipDataConfig:
    """A prepared LRW cache (``condsynth data prepare lrw``) read as mouth sequences and word labels."""
    root: str = ""
    train_split: str = "train"
    eval_split: str = "test"
    roi: Literal["full", "mouth"] = "full"   # "full": the whole aligned crop (spec §2.6); "mouth": the mouth box
    # the mouth box in units of the crop side (top, bottom, left, right) around the toolkit template's mouth
    # (points 48-67 at y 0.57-0.61, x 0.40-0.60, closed); spec §2.6's rows 72-120, cols 32-96 of 128 fit ATVGnet's
    # template, not this one
    mouth_box: tuple[float, float, float, float] = bounded((0.5, 0.74, 0.32, 0.68), 0.0, 1.0)
    frames: int = bounded(16, 1, 1000)       # frames per sample, a window on the word centre (spec §2.6: 7-22 of 29)
    size: int = bounded(88, 8, 1024)         # side the ROI is resized to (spec's mouth ROI: 88)
    jitter: int = bounded(2, 0, 100)         # training: random temporal shift of the window, frames
    shift: int = bounded(2, 0, 100)          # training: random spatial shift, pixels
    flip: bool = True                        # training: random horizontal flips


def _gray_rois(crops: np.ndarray, cfg: LipDataConfig) -> np.ndarray:
    """``T x size x size`` uint8 luma (BT.601) of the ROI of each aligned crop."""
    import cv2
    s = crops.shape[1]
    if cfg.roi == "mouth":
        top, bottom, left, right = (int(round(v * s)) for v in cfg.mouth_box)
        crops = crops[:, top:bottom, left:right]
    y = (crops[..., 0] * 0.299 + crops[..., 1] * 0.587 + crops[..., 2] * 0.114).astype(np.float32)
    return np.stack([cv2.resize(f, (cfg.size, cfg.size), interpolation=cv2.INTER_AREA) for f in y]).round().astype(
        np.uint8)


class LipReadingDataset:
    """Items ``{"frames": 1 x T x S x S in STAF's normalisation, "label": word index}``, all ROIs
    held in memory as uint8 (a 29-frame clip at 88^2 is 225 kB)."""

    MEAN, STD = 0.4161, 0.1688      # STAF's grey-level statistics (spec §2.6)

    def __init__(self, cfg: LipDataConfig, split: str, train: bool):
        meta = read_prepared(cfg.root)
        if meta.get("layout") != "lrw":
            raise UserError(f"{cfg.root}: a lip reader trains on a prepared LRW cache, this one is "
                            f"{meta.get('layout')}")
        self.cfg, self.train, self.words = cfg, train, list(meta["words"])
        entries = [e for e in meta["clips"] if e["split"] == split]
        if not entries:
            raise UserError(f"{cfg.root}: no prepared clips in split '{split}'")
        self.rois = [_gray_rois(load_prepared_clip(cfg.root, e)["crops"], cfg) for e in entries]
        self.labels = [int(e["label"]) for e in entries]
        self.names = [e["name"] for e in entries]
        if min(len(r) for r in self.rois) < cfg.frames:
            raise UserError(f"{cfg.root}: a clip has fewer than data.frames={cfg.frames} frames")

    def __len__(self) -> int:
        return len(self.rois)

    def __getitem__(self, key):
        import torch
        i, seed = split_key(key)
        x, c = self.rois[i], self.cfg
        start = (len(x) - c.frames) // 2           # the centred window (frames 6..21 of 29, 0-based)
        if self.train:
            rng = rng_for(i, seed, salt=15)
            start = int(np.clip(start + rng.integers(-c.jitter, c.jitter + 1), 0, len(x) - c.frames))
            x = x[start:start + c.frames]
            if c.shift:
                dy, dx = rng.integers(-c.shift, c.shift + 1, 2)
                x = np.roll(x, (int(dy), int(dx)), axis=(1, 2))
            if c.flip and rng.random() < 0.5:
                x = x[:, :, ::-1]
        else:
            x = x[start:start + c.frames]
        t = (torch.from_numpy(np.ascontiguousarray(x)).float() / 255 - self.MEAN) / self.STD
        return {"frames": t[None], "label": torch.tensor(self.labels[i])}


def lip_dataset(cfg: LipDataConfig, split: str) -> LipReadingDataset:
    return LipReadingDataset(cfg, cfg.train_split if split == "train" else cfg.eval_split, split == "train")


# ------------------------------------------------------------------------------- talking-face generator data
@dataclass
class TalkingDataConfig:
    """A prepared LRW cache read as AVWnet / AT-net training windows (spec §2.2, "Training sample")."""
    root: str = ""
    train_split: str = "train"
    eval_split: str = "test"
    frames: int = bounded(16, 1, 1000)        # T = 16 frames per window [S]
    mismatch_offset: int = bounded(1, 1, 1000)  # A_{j+1}: the audio of frame j + offset (Eq. 5.8; spec §2.8 [R])
    flip: bool = False                        # horizontal flips would mirror the landmarks' identities: off


class TalkingWindowDataset:
    """Items of ``frames`` consecutive frames of one prepared clip, with a random example frame I* of the same clip
    (training; the clip's first frame for evaluation, so that the held-out numbers are repeatable):

    ``frames`` T x 3 x S x S and ``example`` 3 x S x S in [-1, 1]; ``landmarks`` T x 68 x 2 and
    ``example_landmarks`` 68 x 2 normalised ``p / (S/2) - 1`` (spec §2.2 [R]); ``mfcc`` T x 1 x 28 x 12 (the frames'
    own windows) and ``mismatch`` (the windows of frames j + mismatch_offset, clamped inside the clip); ``label``.
    The window starts at random (training) or is centred on the clip (evaluation: frames 6..21 of 29, the lip
    readers' window). Everything is held in memory as uint8 / float32."""

    def __init__(self, cfg: TalkingDataConfig, split: str, train: bool):
        meta = read_prepared(cfg.root)
        if meta.get("layout") != "lrw":
            raise UserError(f"{cfg.root}: AVWnet trains on a prepared LRW cache, this one is {meta.get('layout')}")
        self.cfg, self.train, self.words = cfg, train, list(meta["words"])
        entries = [e for e in meta["clips"] if e["split"] == split]
        if not entries:
            raise UserError(f"{cfg.root}: no prepared clips in split '{split}'")
        self.clips = [load_prepared_clip(cfg.root, e) for e in entries]
        self.labels = [int(e["label"]) for e in entries]
        self.names = [e["name"] for e in entries]
        self.size = int(self.clips[0]["crops"].shape[1])
        short = [n for n, c in zip(self.names, self.clips) if len(c["crops"]) < cfg.frames]
        if short:
            raise UserError(f"{cfg.root}: clip {short[0]} has fewer than data.frames={cfg.frames} frames")

    def __len__(self) -> int:
        return len(self.clips)

    def all_landmarks(self) -> np.ndarray:
        """Every frame's landmarks, normalised (N x 68 x 2): the PCA's and the statistics' input."""
        return np.concatenate([c["landmarks"] for c in self.clips]).astype(np.float32) / (self.size / 2) - 1

    def all_mfcc(self) -> np.ndarray:
        return np.concatenate([c["mfcc"] for c in self.clips]).astype(np.float32)

    def __getitem__(self, key):
        import torch
        i, seed = split_key(key)
        clip, c = self.clips[i], self.cfg
        n = len(clip["crops"])
        start = (n - c.frames) // 2
        example = 0
        if self.train:
            rng = rng_for(i, seed, salt=16)
            start = int(rng.integers(0, n - c.frames + 1))
            example = int(rng.integers(0, n))
        idx = np.arange(start, start + c.frames)
        wrong = np.minimum(idx + c.mismatch_offset, n - 1)
        wrong = np.where(wrong == idx, np.maximum(idx - c.mismatch_offset, 0), wrong)

        def img(a):
            return torch.from_numpy(np.ascontiguousarray(a)).permute(*range(a.ndim - 3), -1, -3, -2).float() / 127.5 - 1

        lm = torch.from_numpy(clip["landmarks"].astype(np.float32)) / (self.size / 2) - 1
        mfcc = torch.from_numpy(clip["mfcc"].astype(np.float32))[:, None]
        return {"frames": img(clip["crops"][idx]), "example": img(clip["crops"][example]),
                "landmarks": lm[idx], "example_landmarks": lm[example], "mfcc": mfcc[idx], "mismatch": mfcc[wrong],
                "label": torch.tensor(self.labels[i])}


def talking_dataset(cfg: TalkingDataConfig, split: str) -> TalkingWindowDataset:
    if not cfg.root:
        raise UserError("data.root: the prepared talking-face cache (condsynth data prepare lrw) is not set")
    return TalkingWindowDataset(cfg, cfg.train_split if split == "train" else cfg.eval_split, split == "train")
