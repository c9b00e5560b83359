"""The "talking" synthetic world: faces of the faces world saying words, with exact ground truth.

Speech is espeak-ng (:mod:`condsynth.data.synth.speech`): a word of :data:`VOCABULARY` inside a
carrier phrase ("say ABOUT again"), several voices and rates, with the synthesiser's phoneme and
word timings. The face is an adult identity of the faces world (:func:`~condsynth.data.synth.faces.
render_face`) whose mouth follows the *visemes* of those phonemes at 25 fps:

* each phoneme maps to a viseme (:data:`VISEMES`: closed for p/b/m, lip-teeth for f/v, rounded
  for o/u/w, open for a, spread for i/e, ...), a target of the faces world's mouth controls
  (jaw opening, lip width, lip rounding, closure);
* the targets are held over each phoneme's interval and smoothed with a Gaussian of
  ``COARTICULATION`` s (anticipation and carry-over: a rounded vowel rounds the consonant before
  it), the closure with a narrower one so that a short /b/ still closes the lips; each video
  frame takes the track's mean over its 40 ms;
* nuisances: blinks (a Poisson process, 0.3 per second, 160 ms each), small smooth head motion
  (yaw, roll, shift) around a per-clip pose, per-clip lighting and background.

Every frame has its exact 68 points, its four mouth controls, its viseme, phoneme and word.

Layouts (``condsynth data synth talking --out DIR --n N``):

* ``--layout lrw`` (LRW's)::

      OUT/WORD/{train,val,test}/WORD_00001.mp4   29 frames (1.16 s), h264 + AAC 16 kHz mono,
                                                 the word centred in its carrier phrase
      OUT/WORD/{train,val,test}/WORD_00001.txt   "Text:  WORD" and "Duration: D seconds" (the word's)
      OUT/WORD/{train,val,test}/WORD_00001.json  the exact truth per frame (this world's addition)
      OUT/meta.json

  identities are disjoint between train, val and test.
* ``--layout grid`` (GRID-like): a six-word grammar (command colour preposition letter digit
  adverb), 75 frames (3 s) per sentence, ``OUT/s<k>/<code>.mp4`` per speaker and
  ``OUT/align/s<k>/<code>.align`` (``start end word`` in GRID's units of 1/25000 s, ``sil`` before
  and after), plus the same per-clip ``.json`` truth.

Clip ``i`` is drawn from ``default_rng([seed, i])``; identity ``j`` from ``default_rng([seed,
10**6 + j])``: any clip can be regenerated alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from condsynth.data.synth.faces import Expression, render_face, sample_identity, sample_nuisance
from condsynth.data.synth.speech import OUT_RATE, VOICES, Utterance, synthesize
from condsynth.errors import UserError

WORLD_NAME = "talking"
WORLD_VERSION = 1
FPS = 25
LRW_FRAMES = 29                    # 1.16 s, LRW's native clip length
GRID_FRAMES = 75                   # 3 s
# LRW words; the first ten are visually distinct, the next ten add near-homophenes (MIGHT / RIGHT, BEFORE / BECAUSE)
VOCABULARY = ("ABOUT", "FAMILY", "MONEY", "PEOPLE", "WATER", "THINK", "SCHOOL", "CHILDREN", "EVERY", "NUMBER",
              "BECAUSE", "BEFORE", "MIGHT", "RIGHT", "GREAT", "POLICE", "WORLD", "YEARS", "SPEND", "LEVEL")
CARRIERS = ("say {} again", "I said {} now", "the word {} is next", "we heard {} today", "please say {} once more",
            "you said {} to me")
RATES = (130, 150, 170, 190)       # words per minute
COARTICULATION = 0.030             # s: Gaussian smoothing of the mouth targets
CLOSURE_SMOOTHING = 0.012          # s: narrower, so short bilabials still close the lips
BLINK_RATE, BLINK_SECONDS = 0.3, 0.16
CONTROLS = ("jaw_open", "lip_width", "lip_round", "closure")

# viseme -> (jaw_open, lip_width, lip_round, closure)
VISEMES: dict[str, tuple[float, float, float, float]] = {
    "rest": (0.0, 0.0, 0.0, 0.0),
    "bilabial": (0.0, 0.0, 0.0, 1.0),        # p b m: lips pressed
    "labiodental": (0.12, 0.15, 0.0, 0.5),   # f v: lower lip to the teeth
    "dental": (0.25, 0.2, 0.0, 0.0),         # th
    "alveolar": (0.2, 0.3, 0.0, 0.0),        # t d n l s z
    "postalveolar": (0.25, -0.3, 0.5, 0.0),  # sh ch j zh: lips pushed out
    "velar": (0.35, 0.1, 0.0, 0.0),          # k g ng h
    "approximant": (0.2, -0.2, 0.3, 0.0),    # r y
    "rounded": (0.25, -0.8, 1.0, 0.0),       # w oo u o
    "open": (0.9, 0.2, 0.0, 0.0),            # a ah aw
    "mid": (0.5, 0.3, 0.0, 0.0),             # e, schwa, er
    "spread": (0.3, 1.0, 0.0, 0.0),          # i ee
}
VISEME_NAMES = tuple(VISEMES)

_CONSONANTS = {"p": "bilabial", "b": "bilabial", "m": "bilabial", "f": "labiodental", "v": "labiodental",
               "T": "dental", "D": "dental", "t": "alveolar", "d": "alveolar", "n": "alveolar", "l": "alveolar",
               "s": "alveolar", "z": "alveolar", "S": "postalveolar", "Z": "postalveolar", "tS": "postalveolar",
               "dZ": "postalveolar", "k": "velar", "g": "velar", "N": "velar", "h": "velar", "x": "velar",
               "r": "approximant", "j": "approximant", "w": "rounded"}


def viseme_of(phoneme: str) -> str:
    """The viseme of an espeak-ng phoneme mnemonic (stress marks and length ignored)."""
    p = phoneme.lstrip("',").rstrip(":;#0123456789")
    if not p or p.startswith("_"):
        return "rest"
    for key in (p[:2], p[:1]):
        if key in _CONSONANTS:
            return _CONSONANTS[key]
    v = p[0]
    if v in "uUoOw":
        return "rounded"
    if v in "aA0V" or p.startswith("aI") or p.startswith("aU"):
        return "open"
    if v in "iI" or p.startswith("eI"):
        return "spread"
    return "mid"                                    # E e @ 3 and the rest


def _gauss(x: np.ndarray, sigma_steps: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d
    return gaussian_filter1d(x, sigma_steps, axis=0, mode="nearest") if sigma_steps > 0 else x


def mouth_track(phonemes, t0: float, n_frames: int, step: float = 0.005) -> tuple[np.ndarray, list[str], list[str]]:
    """Per-frame mouth controls ``n_frames x 4`` (:data:`CONTROLS`) for frames starting at ``t0``,
    with the viseme and phoneme under each frame's midpoint (``"rest"`` / ``""`` in silence)."""
    grid = t0 + np.arange(int(round(n_frames / FPS / step))) * step + step / 2
    target = np.zeros((len(grid), 4))
    for name, start, end in phonemes:
        target[(grid >= start) & (grid < end)] = VISEMES[viseme_of(name)]
    smooth = _gauss(target, COARTICULATION / step)
    smooth[:, 3] = np.maximum(_gauss(target[:, 3], CLOSURE_SMOOTHING / step), 0.6 * smooth[:, 3])
    per = int(round(1 / FPS / step))
    controls = smooth[: n_frames * per].reshape(n_frames, per, 4).mean(1)
    mids = t0 + (np.arange(n_frames) + 0.5) / FPS
    vis, ph = [], []
    for t in mids:
        hit = [name for name, s, e in phonemes if s <= t < e]
        ph.append(hit[0] if hit else "")
        vis.append(viseme_of(hit[0]) if hit else "rest")
    return controls, vis, ph


def _blinks(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    t = (np.arange(n_frames) + 0.5) / FPS
    out = np.zeros(n_frames)
    start = -rng.uniform(0, 1 / BLINK_RATE)
    while start < t[-1]:
        out = np.maximum(out, np.clip(1 - np.abs(t - start - BLINK_SECONDS / 2) / (BLINK_SECONDS / 2), 0, 1))
        start += rng.exponential(1 / BLINK_RATE) + BLINK_SECONDS
    return out


@dataclass
class Clip:
    frames: list[np.ndarray]          # T x (H x W x 3) uint8
    audio: np.ndarray                 # float32 16 kHz mono, T / 25 s
    truth: dict                       # landmarks, controls, visemes, phonemes, words per frame


def _identity(seed: int, j: int):
    rng = np.random.default_rng([seed, 10 ** 6 + j])
    return sample_identity(rng, j), float(rng.uniform(20, 60))


def render_clip(utt: Utterance, t0: float, n_frames: int, identity: int, seed: int, rng: np.random.Generator,
                size: int, pose: float = 0.5) -> Clip:
    """Frames ``t0 .. t0 + n_frames / 25`` of identity ``identity`` saying ``utt``, with its audio."""
    ident, age = _identity(seed, identity)
    controls, vis, ph = mouth_track(utt.phonemes, t0, n_frames)
    blink = _blinks(rng, n_frames)
    base = sample_nuisance(rng, pose)
    t = np.arange(n_frames) / FPS
    f, phase = rng.uniform(0.2, 0.6, 3), rng.uniform(0, 2 * np.pi, 3)
    frames, points = [], []
    for k in range(n_frames):
        wob = np.sin(2 * np.pi * f * t[k] + phase)
        nz = replace(base, yaw=base.yaw + 0.04 * wob[0], roll=base.roll + 0.02 * wob[1],
                     shift=(base.shift[0] + 0.006 * wob[2], base.shift[1] + 0.004 * wob[0]))
        c = controls[k]
        expr = Expression(jaw_open=float(c[0]), lip_width=float(c[1]), lip_round=float(c[2]),
                          closure=float(c[3]), blink=float(blink[k]))
        img, pts = render_face(ident, age, size, expr, nz, rng)
        frames.append(img)
        points.append(pts)
    # audio: the utterance's samples under the clip, zeros outside, a -60 dB noise floor
    a = np.zeros(int(round(n_frames * OUT_RATE / FPS)), np.float32)
    s0 = int(round(t0 * OUT_RATE))
    lo, hi = max(0, s0), min(len(utt.samples), s0 + len(a))
    if hi > lo:
        a[lo - s0: hi - s0] = utt.samples[lo:hi]
    a = np.clip(a + rng.normal(0, 1e-3, len(a)).astype(np.float32), -1, 1)

    def clip_times(items):
        return [[name, round(s - t0, 4), round(e - t0, 4)] for name, s, e in items
                if e > t0 and s < t0 + n_frames / FPS]

    frame_words = []
    for k in range(n_frames):
        tm = t0 + (k + 0.5) / FPS
        hit = [w for w, s, e in utt.words if s <= tm < e]
        frame_words.append(hit[-1] if hit else "")
    truth = {"identity": identity, "age": round(age, 2), "voice": utt.voice, "rate": utt.rate, "text": utt.text,
             "clip_start": round(t0, 4), "size": size, "fps": FPS,
             "landmarks": np.round(np.stack(points), 3).tolist(), "controls": np.round(controls, 4).tolist(),
             "control_names": list(CONTROLS), "blink": np.round(blink, 3).tolist(), "visemes": vis,
             "frame_phonemes": ph, "frame_words": frame_words, "phonemes": clip_times(utt.phonemes),
             "words": clip_times(utt.words)}
    return Clip(frames, a, truth)


def lrw_clip(word: str, identity: int, seed: int, index: int, size: int = 96, pose: float = 0.5) -> Clip:
    """Clip ``index``: ``word`` in a random carrier phrase, voice and rate, centred in 29 frames."""
    rng = np.random.default_rng([seed, index])
    text = CARRIERS[rng.integers(len(CARRIERS))].format(word.lower())
    utt = synthesize(text, VOICES[rng.integers(len(VOICES))], int(RATES[rng.integers(len(RATES))]))
    target = [w for w in utt.words if w[0].lower() == word.lower()]
    if not target:
        raise UserError(f"talking world: espeak-ng gave no timing for '{word}' in '{text}'")
    _, ws, we = target[0]
    t0 = (ws + we) / 2 - LRW_FRAMES / FPS / 2 + rng.uniform(-0.04, 0.04)
    clip = render_clip(utt, t0, LRW_FRAMES, identity, seed, rng, size, pose)
    clip.truth.update(word=word, word_start=round(ws - t0, 4), word_end=round(we - t0, 4))
    return clip


# GRID's grammar: command, colour, preposition, letter (no w), digit, adverb
GRID_WORDS = (("bin", "lay", "place", "set"), ("blue", "green", "red", "white"), ("at", "by", "in", "with"),
              tuple("abcdefghijklmnopqrstuvxyz"), ("zero", "one", "two", "three", "four", "five", "six", "seven",
                                                   "eight", "nine"), ("again", "now", "please", "soon"))
GRID_UNITS = 25000                 # align files count 1/25000 s (1000 per video frame)
GRID_IDENTITY0 = 100000            # speaker k is faces-world identity GRID_IDENTITY0 + k - 1


def grid_clip(speaker: int, seed: int, index: int, size: int = 96, pose: float = 0.5) -> tuple[str, Clip]:
    """A GRID sentence (75 frames) of identity ``speaker`` (``GRID_IDENTITY0 + k - 1`` for s<k>); returns its
    GRID code name and the clip."""
    rng = np.random.default_rng([seed, index])
    words = [ws[rng.integers(len(ws))] for ws in GRID_WORDS]
    digit = str(GRID_WORDS[4].index(words[4]))
    code = words[0][0] + words[1][0] + words[2][0] + words[3] + digit + words[5][0]
    voice = VOICES[(speaker - GRID_IDENTITY0) % len(VOICES)]
    utt = synthesize(" ".join(words), voice, 165)
    if utt.seconds > 2.8:
        utt = synthesize(" ".join(words), voice, 220)
    lead = float(rng.uniform(0.15, max(0.16, 2.9 - utt.seconds)))
    clip = render_clip(utt, -lead, GRID_FRAMES, speaker, seed, rng, size, pose)
    clip.truth.update(code=code, sentence=words)
    return code, clip


def align_text(words) -> str:
    """GRID's align file: ``start end word`` lines in 1/25000 s, ``sil`` around the words."""
    lines, prev = [], 0
    end_all = GRID_FRAMES * GRID_UNITS // FPS
    for w, s, e in words:
        s, e = int(round(max(0, s) * GRID_UNITS)), int(round(min(e, GRID_FRAMES / FPS) * GRID_UNITS))
        if s > prev:
            lines.append(f"{prev} {s} sil")
        s = max(s, prev)
        lines.append(f"{s} {e} {w.lower()}")
        prev = e
    if prev < end_all:
        lines.append(f"{prev} {end_all} sil")
    return "\n".join(lines) + "\n"


def lrw_plan(n: int, n_words: int, val_fraction: float, test_fraction: float, clips_per_identity: int = 4):
    """Per clip ``(word, split, number in its word and split, identity)``; identities disjoint by split."""
    if n < 3 * n_words:
        raise UserError(f"talking world: --n {n} gives fewer than one clip per word and split ({n_words} words)")
    per_word = n // n_words
    n_val = max(1, int(round(per_word * val_fraction)))
    n_test = max(1, int(round(per_word * test_fraction)))
    n_train = per_word - n_val - n_test
    if n_train < 1:
        raise UserError(f"talking world: --n {n} leaves no training clips for {n_words} words")
    counts = {"train": n_train * n_words, "val": n_val * n_words, "test": n_test * n_words}
    first = {}
    nxt = 0
    for split in ("train", "val", "test"):
        first[split] = nxt
        nxt += -(-counts[split] // clips_per_identity)
    plan, i = [], 0
    for split, m in (("train", n_train), ("val", n_val), ("test", n_test)):
        for k in range(m):
            for w in range(n_words):
                j = k * n_words + w
                plan.append((VOCABULARY[w], split, k + 1, first[split] + j // clips_per_identity, i))
                i += 1
    return plan, counts


def write_dataset(out: str | Path, n: int, *, size: int = 96, seed: int = 0, layout: str = "lrw",
                  n_words: int = len(VOCABULARY), val_fraction: float = 0.1, test_fraction: float = 0.2,
                  speakers: int = 4, pose: float = 0.5, overwrite: bool = False, progress: bool | None = None) -> dict:
    """Write ``n`` clips of the talking world under ``out`` in LRW's or a GRID-like layout."""
    from tqdm import tqdm

    from condsynth.io.atomic import atomic_dir, atomic_write_text
    from condsynth.io.video import write_video
    out = Path(out)
    if size < 32 or size % 2:
        raise UserError(f"--size must be even and at least 32 for the talking world, got {size}")
    if not 1 <= n_words <= len(VOCABULARY):
        raise UserError(f"--words must be between 1 and {len(VOCABULARY)}, got {n_words}")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")
    if layout == "lrw":
        plan, counts = lrw_plan(n, n_words, val_fraction, test_fraction)
    else:
        if n < 1 or speakers < 1:
            raise UserError(f"talking world: --n and --speakers must be at least 1, got {n} and {speakers}")
        # GRID is the cross-dataset test: its speakers are identities no LRW export of the same seed uses
        plan = [(None, f"s{i % speakers + 1}", None, GRID_IDENTITY0 + i % speakers, i) for i in range(n)]
        counts = {"sentences": n}
    bar = tqdm(plan, desc="talking", disable=(progress is False) or (progress is None and len(plan) < 50))
    with atomic_dir(out) as tmp:
        ids: dict[str, set] = {}
        for word, split, number, identity, i in bar:
            if layout == "lrw":
                clip = lrw_clip(word, identity, seed, i, size, pose)
                folder = tmp / word / split
                stem = f"{word}_{number:05d}"
                dur = clip.truth["word_end"] - clip.truth["word_start"]
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_text(folder / f"{stem}.txt", f"Text:  {word}\nConf:  1\n\nDuration: {dur:.6f} seconds\n")
            else:
                stem, clip = grid_clip(identity, seed, i, size, pose)
                folder = tmp / split
                folder.mkdir(parents=True, exist_ok=True)
                while (folder / f"{stem}.mp4").exists():        # the grammar repeats: keep names unique
                    stem += "x"
                (tmp / "align" / split).mkdir(parents=True, exist_ok=True)
                atomic_write_text(tmp / "align" / split / f"{stem}.align", align_text(clip.truth["words"]))
            write_video(folder / f"{stem}.mp4", clip.frames, FPS, audio=clip.audio, sample_rate=OUT_RATE)
            atomic_write_text(folder / f"{stem}.json", json.dumps(clip.truth) + "\n")
            ids.setdefault(split, set()).add(identity)
        meta = {"world": WORLD_NAME, "world_version": WORLD_VERSION, "layout": layout, "seed": int(seed),
                "size": int(size), "fps": FPS, "sample_rate": OUT_RATE, "pose": float(pose),
                "frames": LRW_FRAMES if layout == "lrw" else GRID_FRAMES,
                "words": list(VOCABULARY[:n_words]) if layout == "lrw" else [list(w) for w in GRID_WORDS],
                "voices": list(VOICES), "rates": list(RATES), "visemes": list(VISEME_NAMES),
                "identities": {k: sorted(int(x) for x in v) for k, v in ids.items()},
                "seed_rule": "clip i = default_rng([seed, i]); identity j = default_rng([seed, 10**6 + j])",
                "counts": counts}
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta
