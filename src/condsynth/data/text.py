"""Captions as word ids: AttnGAN's tokenizer, a vocabulary saved as JSON, and a safe reader for the
pickles AttnGAN released.

**Tokenizer** (AttnGAN ``code/datasets.py``, ``load_captions``): lowercase, NLTK's
``RegexpTokenizer(r'\\w+')`` (runs of word characters), and tokens stripped of non-ASCII characters
(``t.encode('ascii', 'ignore')``), empty tokens dropped. :func:`tokenize` is the same rule without
NLTK.

**Vocabulary**: id 0 is ``<end>`` (AttnGAN's padding and end token), id 1 ``<unk>`` for words not
in the vocabulary (AttnGAN has none: it builds the dictionary from train + test captions, so no word
is unknown; here the vocabulary comes from the *training* captions only, so the test split can hold
unknown words, and a user's caption too). Words with at least ``min_count`` occurrences follow, most
frequent first, ties alphabetical: the same captions always give the same ids. Saved as JSON.

**AttnGAN's pickles** (``captions.pickle``, ``filenames.pickle``, ``class_info.pickle``) are read
by :func:`load_plain_pickle`, an unpickler that refuses every global, so a file can only produce
lists, dicts, strings, numbers and bytes; anything else (``os.system``, a class) is a one-line
:class:`UserError`. :func:`convert_attngan_pickles` converts them once to JSON.
"""

from __future__ import annotations

import io
import json
import pickle
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from condsynth.errors import UserError
from condsynth.io.atomic import atomic_write_text

END, UNK = "<end>", "<unk>"
END_ID, UNK_ID = 0, 1
VOCAB_FORMAT = "condsynth-vocabulary-v1"
_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """AttnGAN's tokenizer: lowercase ``\\w+`` runs, non-ASCII characters removed, empty tokens dropped.
    (AttnGAN first replaces the mojibake pair ``\\ufffd\\ufffd`` by a space; ``\\w`` skips it anyway.)"""
    out = []
    for tok in _WORD.findall(text.lower()):
        tok = tok.encode("ascii", "ignore").decode("ascii")
        if tok:
            out.append(tok)
    return out


@dataclass
class EncodeStats:
    """What happened to a set of captions on their way to ids (printed by ``data check``)."""
    captions: int = 0
    words: int = 0
    unknown: int = 0
    empty: int = 0                  # no word at all (tokenizer found nothing)
    only_unknown: int = 0           # every word unknown
    truncated: int = 0              # longer than words_num
    unknown_words: Counter = field(default_factory=Counter)

    def add(self, tokens: list[str], vocab: "Vocabulary", words_num: int | None) -> None:
        self.captions += 1
        self.words += len(tokens)
        unk = [t for t in tokens if t not in vocab.index]
        self.unknown += len(unk)
        self.unknown_words.update(unk)
        if not tokens:
            self.empty += 1
        elif len(unk) == len(tokens):
            self.only_unknown += 1
        if words_num and len(tokens) > words_num:
            self.truncated += 1

    def lines(self, top: int = 10) -> list[str]:
        rate = 100.0 * self.unknown / max(self.words, 1)
        out = [f"{self.captions} captions, {self.words} words, {self.unknown} unknown ({rate:.2f}%)"]
        if self.unknown_words:
            common = ", ".join(f"'{w}' ({n})" for w, n in self.unknown_words.most_common(top))
            out.append(f"most frequent unknown words: {common}")
        if self.empty:
            out.append(f"{self.empty} empty captions (no words; never drawn)")
        if self.only_unknown:
            out.append(f"{self.only_unknown} captions with only unknown words (never drawn)")
        if self.truncated:
            out.append(f"{self.truncated} captions longer than words_num (truncated to words_num words)")
        return out


def encode_captions(vocab: "Vocabulary", texts: Sequence[str], words_num: int):
    """Users' captions -> (ids ``B x words_num`` LongTensor, 0-padded; lengths; unknown words per caption).
    :class:`UserError` for an empty or all-unknown caption; longer captions keep their first ``words_num`` words."""
    import torch
    ids = torch.zeros(len(texts), words_num, dtype=torch.long)
    lengths, unknown = [], []
    for i, text in enumerate(texts):
        row, unk = vocab.encode_text(text, words_num)
        ids[i, :len(row)] = torch.tensor(row)
        lengths.append(len(row))
        unknown.append(unk)
    return ids, torch.tensor(lengths), unknown


class Vocabulary:
    """Word <-> id map with ``<end>`` = 0 and ``<unk>`` = 1."""

    def __init__(self, words: Sequence[str], min_count: int = 1, source: str = ""):
        words = list(words)
        if words[:2] != [END, UNK]:
            raise UserError(f"{source or 'vocabulary'}: must start with '{END}', '{UNK}' (got {words[:2]})")
        if len(set(words)) != len(words):
            dup = next(w for w in words if words.count(w) > 1)
            raise UserError(f"{source or 'vocabulary'}: word '{dup}' appears twice")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        self.min_count = min_count

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, captions: Iterable[str | Sequence[str]], min_count: int = 1) -> "Vocabulary":
        """From training captions (strings, or token lists already tokenized)."""
        counts: Counter = Counter()
        for cap in captions:
            counts.update(tokenize(cap) if isinstance(cap, str) else cap)
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls([END, UNK] + [w for w in kept if w not in (END, UNK)], min_count)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.index.get(t, UNK_ID) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.words[i] if 0 <= i < len(self.words) else UNK for i in ids if i != END_ID]

    def encode_text(self, text: str, words_num: int, source: str = "caption") -> tuple[list[int], list[str]]:
        """A user's caption -> (ids, at most ``words_num``, the first ones: deterministic) and its unknown
        words. Empty or only-unknown captions are a :class:`UserError` naming the caption."""
        tokens = tokenize(text)
        short = text if len(text) <= 60 else text[:57] + "..."
        if not tokens:
            raise UserError(f"{source} '{short}': no words (the tokenizer keeps runs of letters and digits)")
        unknown = [t for t in tokens if t not in self.index]
        if len(unknown) == len(tokens):
            raise UserError(f"{source} '{short}': every word is unknown to the vocabulary "
                            f"({', '.join(sorted(set(unknown))[:10])})")
        return self.encode(tokens[:words_num]), unknown

    def to_json(self) -> str:
        return json.dumps({"format": VOCAB_FORMAT, "min_count": self.min_count, "words": self.words}, indent=0)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: vocabulary file not found") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: not a vocabulary JSON file ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != VOCAB_FORMAT or not isinstance(doc.get("words"), list):
            raise UserError(f"{path}: not a condsynth vocabulary (expected format '{VOCAB_FORMAT}' and a 'words' list)")
        return cls(doc["words"], int(doc.get("min_count", 1)), source=str(path))


def caption_stats(captions: Iterable[str], vocab: Vocabulary, words_num: int | None = None) -> EncodeStats:
    """Out-of-vocabulary, empty, only-unknown and over-long counts of a set of captions."""
    stats = EncodeStats()
    for cap in captions:
        stats.add(tokenize(cap), vocab, words_num)
    return stats


# ----------------------------------------------------------------------------- AttnGAN's pickles
_PLAIN = (list, tuple, dict, str, int, float, bool, bytes, type(None))


class _PlainUnpickler(pickle.Unpickler):
    """Refuses every global: no callable can be reached, so REDUCE/BUILD/NEWOBJ have nothing to call."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused global '{module}.{name}'")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused persistent id")


def _check_plain(obj, path: Path, depth: int = 0) -> None:
    if depth > 50:
        raise UserError(f"{path}: nested too deeply for plain metadata")
    if isinstance(obj, (set, frozenset)):
        obj = list(obj)
    if not isinstance(obj, _PLAIN):
        raise UserError(f"{path}: holds a {type(obj).__name__}, not plain data (lists, dicts, strings, numbers)")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_plain(k, path, depth + 1)
            _check_plain(v, path, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check_plain(v, path, depth + 1)


def load_plain_pickle(path: str | Path):
    """Read a pickle that may only hold plain data (py2 pickles are read with ``encoding='latin1'``).
    Anything that would import or call code is refused with a one-line :class:`UserError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    try:
        obj = _PlainUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise UserError(f"{path}: refused to read: not plain data ({exc}); convert it on a trusted machine "
                        f"or rebuild it from the captions") from None
    except Exception as exc:  # noqa: BLE001 - truncated or garbage file
        raise UserError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    _check_plain(obj, path)
    return obj


def _jsonable(obj):
    if isinstance(obj, bytes):
        return obj.decode("latin1")
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(_jsonable(k)): _jsonable(v) for k, v in obj.items()}
    return obj


def convert_attngan_pickles(folder: str | Path) -> list[Path]:
    """Convert AttnGAN's metadata pickles under ``folder`` (``captions.pickle``, ``train/filenames.pickle``,
    ``test/filenames.pickle``, ``*/class_info.pickle``) to JSON beside them. ``captions.pickle``
    ([train_ids, test_ids, ixtoword, wordtoix]) also gives ``vocab_attngan.json``: AttnGAN's own word
    order (needed by its released text encoders; it cannot be rebuilt from the captions). Returns the
    files written."""
    folder = Path(folder)
    written: list[Path] = []
    for pk in sorted(folder.rglob("*.pickle")):
        obj = load_plain_pickle(pk)
        out = pk.with_suffix(".json")
        atomic_write_text(out, json.dumps(_jsonable(obj)) + "\n")
        written.append(out)
        if pk.name == "captions.pickle":
            if not (isinstance(obj, (list, tuple)) and len(obj) == 4 and isinstance(obj[2], dict)):
                raise UserError(f"{pk}: expected AttnGAN's [train_captions, test_captions, ixtoword, wordtoix]")
            ixtoword = {int(k): _jsonable(v) for k, v in obj[2].items()}
            words = [ixtoword[i] for i in sorted(ixtoword)]
            # AttnGAN's id 0 is '<end>' and it has no unknown word: keep its ids by inserting nothing;
            # '<unk>' goes last, so AttnGAN's ids stay valid for its released text encoders.
            doc = {"format": VOCAB_FORMAT + "-attngan", "words": words, "unknown_id": len(words),
                   "note": "AttnGAN's ids kept; <unk> appended as the last id"}
            vocab_path = folder / "vocab_attngan.json"
            atomic_write_text(vocab_path, json.dumps(doc) + "\n")
            written.append(vocab_path)
    if not written:
        raise UserError(f"{folder}: no .pickle files found")
    return written
