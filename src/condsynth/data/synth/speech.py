"""Offline speech with phoneme and word timings: espeak-ng through ``espeakng-loader`` (ctypes).

The pip wheel ``espeakng-loader`` ships ``libespeak-ng`` and its voice data; no system package
is needed. :func:`synthesize` speaks a text with a voice and a rate and returns the 16 kHz mono
waveform with the engine's own timings: every phoneme (espeak's phoneme mnemonic such as
``'eI`` or ``D``, its start in seconds) and every word (its text and start), from the
synthesiser's event stream (``espeakINITIALIZE_PHONEME_EVENTS``; recipe in shared/ecosystem.md).
Phoneme ends are the next phoneme's start; the last ends with the audio.

espeak's state is global to the process (one library, one callback), so calls are serialised
with a lock.
"""

from __future__ import annotations

import ctypes as C
import threading
from dataclasses import dataclass, field

import numpy as np

from condsynth.errors import UserError

VOICES = ("en-us", "en", "en-us+f3", "en+m3", "en-us+f2", "en+f4")   # espeak voice + variant names
OUT_RATE = 16000

_EV_WORD, _EV_END, _EV_PHONEME, _EV_TERMINATED = 1, 5, 7, 0
_SYNCHRONOUS, _PHONEME_EVENTS, _POS_CHARACTER, _RATE_PARAM = 2, 1, 1, 1


class _Id(C.Union):
    _fields_ = [("number", C.c_int), ("name", C.c_char_p), ("string", C.c_char * 8)]


class _Event(C.Structure):
    _fields_ = [("type", C.c_int), ("unique_identifier", C.c_uint), ("text_position", C.c_int),
                ("length", C.c_int), ("audio_position", C.c_int), ("sample", C.c_int),
                ("user_data", C.c_void_p), ("id", _Id)]


_CALLBACK = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_short), C.c_int, C.POINTER(_Event))


@dataclass
class Utterance:
    text: str
    voice: str
    rate: int                                   # words per minute (espeak's rate)
    samples: np.ndarray                         # float32 16 kHz mono
    phonemes: list[tuple[str, float, float]] = field(default_factory=list)   # (name, start s, end s)
    words: list[tuple[str, float, float]] = field(default_factory=list)      # (word, start s, end s)

    @property
    def seconds(self) -> float:
        return len(self.samples) / OUT_RATE


class _Engine:
    lock = threading.Lock()
    lib = None
    rate = 0

    @classmethod
    def load(cls):
        if cls.lib is None:
            try:
                import espeakng_loader
            except ImportError:
                raise UserError("speech synthesis needs espeak-ng: pip install 'condsynth[audio]' "
                                "(the espeakng-loader wheel)") from None
            lib = C.CDLL(espeakng_loader.get_library_path())
            rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, str(espeakng_loader.get_data_path()).encode(),
                                         _PHONEME_EVENTS)
            if rate <= 0:
                raise UserError(f"espeak-ng did not start (espeak_Initialize returned {rate})")
            cls.pcm, cls.events = [], []

            @_CALLBACK
            def callback(wav, n, ev):
                if n > 0:
                    cls.pcm.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
                i = 0
                while ev[i].type != _EV_TERMINATED:
                    e = ev[i]
                    name = e.id.string.decode("ascii", "replace") if e.type == _EV_PHONEME else ""
                    cls.events.append((e.type, name, e.audio_position / 1000.0, e.text_position, e.length))
                    i += 1
                return 0

            cls.callback = callback                  # keep a reference: the library holds the pointer
            lib.espeak_SetSynthCallback(callback)
            cls.lib, cls.rate = lib, rate
        return cls.lib


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly
    g = gcd(OUT_RATE, rate)
    return resample_poly(x, OUT_RATE // g, rate // g).astype(np.float32)


def synthesize(text: str, voice: str = "en-us", rate: int = 160) -> Utterance:
    """Speak ``text`` (ASCII words) and return the 16 kHz waveform with phoneme and word timings."""
    if not text.strip():
        raise UserError("speech synthesis: empty text")
    with _Engine.lock:
        lib = _Engine.load()
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise UserError(f"espeak-ng has no voice '{voice}'")
        lib.espeak_SetParameter(_RATE_PARAM, int(rate), 0)
        _Engine.pcm.clear()
        _Engine.events.clear()
        raw = text.encode("ascii")
        lib.espeak_Synth(raw, len(raw) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
        lib.espeak_Synchronize()
        pcm = np.concatenate(_Engine.pcm) if _Engine.pcm else np.zeros(0, np.int16)
        events = list(_Engine.events)
        native = _Engine.rate
    x = _resample(pcm.astype(np.float32) / 32768.0, native)
    seconds = len(x) / OUT_RATE
    starts = [(name, t) for kind, name, t, _, _ in events if kind == _EV_PHONEME and not name.startswith("_")]
    pauses = [t for kind, name, t, _, _ in events if kind == _EV_PHONEME and name.startswith("_")]
    bounds = sorted({t for _, t in starts} | set(pauses) | {seconds})
    phonemes = []
    for name, t in starts:
        end = min((b for b in bounds if b > t), default=seconds)
        phonemes.append((name, t, end))
    words = []
    word_events = [(t, pos, n) for kind, _, t, pos, n in events if kind == _EV_WORD]
    for j, (t, pos, n) in enumerate(word_events):
        word = text[pos - 1: pos - 1 + n]           # text_position is 1-based, in characters
        inside = [p for p in phonemes if p[1] >= t and (j + 1 == len(word_events) or p[1] < word_events[j + 1][0])]
        end = inside[-1][2] if inside else t
        words.append((word, t, end))
    return Utterance(text, voice, int(rate), np.clip(x, -1, 1), phonemes, words)
