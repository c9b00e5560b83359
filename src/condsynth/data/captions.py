"""Image-caption datasets: CUB-200-2011 and Oxford-102 in AttnGAN's layouts, COCO 2014, a custom folder.

Layouts (``data.layout``):

- ``cub`` (AttnGAN's ``data/birds``): ``CUB_200_2011/{images.txt, bounding_boxes.txt, images/KEY.jpg}``,
  captions ``text/KEY.txt`` (or Reed's ``text_c10/KEY.txt``), 10 a file; the split from
  ``{train,test}/filenames.json`` (or AttnGAN's ``filenames.pickle``, read by the restricted
  unpickler of :mod:`condsynth.data.text`). KEY is ``CLASS/NAME`` (``002.Laysan_Albatross/...``), the
  class id the number before the dot. Images are cropped to a square around the bounding box,
  half-side ``R = int(0.75 * max(w, h))``, clipped to the image (StackGAN/AttnGAN ``get_imgs``).
- ``oxford`` (StackGAN/AttnGAN ``data/flowers``): ``jpg/image_XXXXX.jpg``, captions
  ``text_c10/class_XXXXX/image_XXXXX.txt`` (or ``text/``), split as for CUB (keys
  ``class_XXXXX/image_XXXXX``), or Reed's ``trainvalclasses.txt``/``testclasses.txt`` class lists.
- ``coco``: ``annotations/captions_{train,val}2014.json`` read directly, images
  ``{train,val}2014/FILE``; train = train2014, test = val2014 (AttnGAN's use of val as test).
  Each image is its own class (no same-class masking), 5 captions.
- ``captions`` (custom): ``images/x.jpg`` + ``captions/x.txt`` (one caption a line); the split from
  ``train.txt``/``test.txt`` (one stem a line) when present, else every 10th image (sorted) is test.

A sample is ``{"image": 3xHxW in [-1, 1], "caption": LongTensor[words_num] (0-padded), "length",
"class_id", "key", "caption_index"}``. Training draws one caption per image from the sampler's seed
and, for captions longer than ``words_num``, a random order-preserving subset of its words
(AttnGAN ``get_caption``); evaluation takes a fixed caption per image and its first words.
Empty captions and captions whose words are all unknown are never drawn (counted by ``data check``);
an image without any usable caption is left out, and counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from condsynth.data import rng_for, split_key
from condsynth.data.check import Report, plural, register_check
from condsynth.data.text import END_ID, EncodeStats, Vocabulary, load_plain_pickle, tokenize
from condsynth.errors import ConfigError, UserError

LAYOUTS = ("cub", "oxford", "coco", "captions")
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


@dataclass
class CaptionDataConfig:
    root: str = ""
    layout: str = "cub"                   # cub | oxford | coco | captions
    image_size: int = 64                  # side of the image handed to the model
    load_size: int = 0                    # resized to this, then randomly cropped (0: int(image_size * 76 / 64), AttnGAN)
    flip: bool = True                     # random horizontal flip in training (AttnGAN); off where captions say left/right
    words_num: int = 15                   # thesis: 15 (errata); AttnGAN's released encoders: 18 (CUB), 12 (COCO)
    captions_per_image: int = 10          # CUB/Oxford 10, COCO 5: captions read per image (AttnGAN embeddings_num)
    vocab: str = ""                       # vocabulary JSON; "" -> ROOT/vocab.json, else built from the train captions
    vocab_words: tuple[str, ...] = ()     # the vocabulary itself ("<end>", "<unk>", words...): exports carry it, so
                                          # they load without the dataset; when set, nothing is read for it
    min_count: int = 1                    # when building the vocabulary
    bbox_crop: bool = True                # cub: crop around the bounding box (StackGAN/AttnGAN)
    max_images: int = 0                   # use only the first N images of a split (0: all)
    eval_split: str = "test"

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ConfigError(f"data.layout: must be one of {', '.join(LAYOUTS)}, got '{self.layout}'")
        if self.words_num < 1:
            raise ConfigError(f"data.words_num: must be at least 1, got {self.words_num}")


@dataclass
class Item:
    key: str
    image: Path
    caption_file: Path | None            # None for COCO (captions from the JSON)
    class_id: int
    bbox: tuple[float, float, float, float] | None = None
    raw_captions: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------- reading captions
def read_caption_file(path: Path) -> list[str]:
    """Non-empty lines of a caption file; a UserError naming the file for binary or non-UTF-8 bytes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: caption file not found") from None
    if b"\x00" in data:
        raise UserError(f"{path}: binary data in a caption file (NUL bytes); expected UTF-8 text, one caption a line")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                        f"expected one caption a line") from None
    return [ln.strip() for ln in text.replace("\r", "\n").split("\n") if ln.strip()]


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None


def _split_keys(root: Path, split: str) -> list[str]:
    """AttnGAN's split: SPLIT/filenames.json, else SPLIT/filenames.pickle (plain data only), else Reed's class lists."""
    for name in ("filenames.json", "filenames.pickle"):
        f = root / split / name
        if f.is_file():
            keys = _json(f) if f.suffix == ".json" else load_plain_pickle(f)
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise UserError(f"{f}: expected a list of file keys (CLASS/NAME)")
            return keys
    lists = {"train": "trainvalclasses.txt", "test": "testclasses.txt"}
    text_dir = next((root / d for d in ("text_c10", "text") if (root / d).is_dir()), None)
    if split in lists and (root / lists[split]).is_file() and text_dir is not None:
        classes = [c.strip() for c in (root / lists[split]).read_text().splitlines() if c.strip()]
        return [f"{c}/{p.stem}" for c in classes for p in sorted((text_dir / c).glob("*.txt"))]
    raise UserError(f"{root}: no split '{split}': expected {root / split / 'filenames.json'} (or filenames.pickle, "
                    f"or Reed's {lists.get(split, 'class list')} beside text_c10/)")


def _class_of(key: str) -> int:
    head = key.split("/")[0]
    digits = head.split(".")[0] if "." in head else head.rsplit("_", 1)[-1]
    try:
        return int(digits)
    except ValueError:
        return 0


def _text_dir(root: Path) -> Path:
    for d in ("text", "text_c10"):
        if (root / d).is_dir():
            return root / d
    raise UserError(f"{root}: no caption folder (expected {root / 'text'} or {root / 'text_c10'})")


def list_items(root: Path, layout: str, split: str) -> list[Item]:
    """The split's items with their files (not opened). Missing files are found by :func:`check_items`."""
    if layout == "cub":
        cub = root / "CUB_200_2011"
        for f in ("images.txt", "bounding_boxes.txt"):
            if not (cub / f).is_file():
                raise UserError(f"{cub / f}: not found (CUB-200-2011 in AttnGAN's birds layout)")
        names = dict(ln.split(None, 1) for ln in (cub / "images.txt").read_text().splitlines() if ln.strip())
        boxes = {}
        for ln in (cub / "bounding_boxes.txt").read_text().splitlines():
            parts = ln.split()
            if len(parts) == 5:
                boxes[Path(names.get(parts[0], "")).with_suffix("").as_posix()] = tuple(float(v) for v in parts[1:])
        text = _text_dir(root)
        return [Item(k, cub / "images" / f"{k}.jpg", text / f"{k}.txt", _class_of(k), boxes.get(k))
                for k in _split_keys(root, split)]
    if layout == "oxford":
        text = next((root / d for d in ("text_c10", "text") if (root / d).is_dir()), None)
        if text is None:
            raise UserError(f"{root}: no caption folder (expected {root / 'text_c10'} or {root / 'text'})")
        return [Item(k, root / "jpg" / f"{k.split('/')[-1]}.jpg", text / f"{k}.txt", _class_of(k))
                for k in _split_keys(root, split)]
    if layout == "coco":
        year = {"train": "train2014", "test": "val2014", "val": "val2014"}.get(split)
        if year is None:
            raise UserError(f"coco has the splits train (train2014) and test (val2014), not '{split}'")
        ann = root / "annotations" / f"captions_{year}.json"
        if not ann.is_file():
            raise UserError(f"{ann}: not found (COCO 2014 caption annotations)")
        doc = _json(ann)
        if not isinstance(doc, dict) or "images" not in doc or "annotations" not in doc:
            raise UserError(f"{ann}: not a COCO captions file (needs 'images' and 'annotations')")
        caps: dict[int, list[str]] = {}
        for a in doc["annotations"]:
            caps.setdefault(int(a["image_id"]), []).append(str(a.get("caption", "")))
        return [Item(Path(im["file_name"]).stem, root / year / im["file_name"], None, int(im["id"]),
                     raw_captions=caps.get(int(im["id"]), []))
                for im in sorted(doc["images"], key=lambda im: im["file_name"])]
    # custom: images/x.jpg + captions/x.txt
    img_dir, cap_dir = root / "images", root / "captions"
    if not img_dir.is_dir():
        raise UserError(f"{img_dir}: not found (custom layout: images/x.jpg + captions/x.txt)")
    if not cap_dir.is_dir():
        raise UserError(f"{cap_dir}: not found (custom layout: images/x.jpg + captions/x.txt)")
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    by_stem = {p.stem: p for p in images}
    listed = root / f"{split}.txt"
    if listed.is_file():
        stems = [s.strip() for s in listed.read_text().splitlines() if s.strip()]
        missing = [s for s in stems if s not in by_stem]
        if missing:
            raise UserError(f"{listed}: lists images not in {img_dir}: {', '.join(missing[:10])}"
                            f"{' ...' if len(missing) > 10 else ''} ({len(missing)} missing)")
    else:
        stems = [p.stem for i, p in enumerate(images) if (i % 10 == 9) == (split != "train")]
    return [Item(s, by_stem[s], cap_dir / f"{s}.txt", i) for i, s in enumerate(stems)]


def check_items(items: list[Item], captions_per_image: int) -> dict:
    """Missing images and caption files (all named in one UserError), images with fewer captions."""
    missing = [str(it.image) for it in items if not it.image.is_file()]
    missing += [str(it.caption_file) for it in items if it.caption_file is not None and not it.caption_file.is_file()]
    if missing:
        shown = "; ".join(missing[:20]) + (f"; ... and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise UserError(f"{plural(len(missing), 'missing file')}: {shown}")
    few = 0
    none = []
    for it in items:
        caps = it.raw_captions if it.caption_file is None else read_caption_file(it.caption_file)
        it.raw_captions = caps[:captions_per_image]
        few += 0 < len(caps) < captions_per_image
        if not caps:
            none.append(it.key)
    return {"fewer_captions": few, "without_captions": none}


def resolve_vocabulary(cfg: CaptionDataConfig) -> Vocabulary:
    """``data.vocab_words``, else ``data.vocab``, else ROOT/vocab.json, else built (deterministically) from the
    training captions."""
    if cfg.vocab_words:
        return Vocabulary(cfg.vocab_words, cfg.min_count, source="data.vocab_words")
    root = Path(cfg.root)
    path = Path(cfg.vocab) if cfg.vocab else root / "vocab.json"
    if path.is_file():
        return Vocabulary.load(path)
    if cfg.vocab:
        raise UserError(f"{path}: vocabulary file not found (data.vocab)")
    items = list_items(root, cfg.layout, "train")
    check_items(items, cfg.captions_per_image)
    return Vocabulary.build((c for it in items for c in it.raw_captions), cfg.min_count)


# ------------------------------------------------------------------------------------ dataset
class CaptionDataset(Dataset):
    """One image with one of its captions per item (see the module docstring)."""

    def __init__(self, cfg: CaptionDataConfig, split: str, vocab: Vocabulary, train: bool | None = None):
        self.cfg, self.vocab, self.split = cfg, vocab, split
        self.train = (split == "train") if train is None else train
        root = Path(cfg.root)
        items = list_items(root, cfg.layout, split)
        if cfg.max_images:
            items = items[:cfg.max_images]
        info = check_items(items, cfg.captions_per_image)
        self.stats = EncodeStats()
        self.items: list[Item] = []
        self.captions: list[list[list[int]]] = []        # per item: usable captions as ids
        self.caption_index: list[list[int]] = []          # their positions in the caption file
        for it in items:
            usable, where = [], []
            for j, cap in enumerate(it.raw_captions):
                tokens = tokenize(cap)
                self.stats.add(tokens, vocab, cfg.words_num)
                ids = vocab.encode(tokens)
                if ids and any(i > 1 for i in ids):       # not empty, not only <unk>
                    usable.append(ids)
                    where.append(j)
            if usable:
                self.items.append(it)
                self.captions.append(usable)
                self.caption_index.append(where)
        self.fewer_captions = info["fewer_captions"]
        self.without_captions = len(items) - len(self.items)
        if not self.items:
            raise UserError(f"{root}: split '{split}' has no image with a usable caption "
                            f"({len(items)} images listed)")
        self.load_size = cfg.load_size or int(cfg.image_size * 76 / 64)

    def __len__(self) -> int:
        return len(self.items)

    def _image(self, it: Item, rng: np.random.Generator) -> torch.Tensor:
        from condsynth.data.transforms import apply, resize, sample_params
        from condsynth.io.images import read_image, uint8_to_tensor
        arr = read_image(it.image)
        if self.cfg.layout == "cub" and self.cfg.bbox_crop and it.bbox is not None:
            h, w = arr.shape[:2]
            x, y, bw, bh = it.bbox
            r = int(np.maximum(bw, bh) * 0.75)                    # StackGAN/AttnGAN get_imgs
            cx, cy = int((2 * x + bw) / 2), int((2 * y + bh) / 2)
            arr = arr[max(0, cy - r):min(h, cy + r), max(0, cx - r):min(w, cx + r)]
        if self.train:
            arr = resize(arr, self.load_size)
            params = sample_params(rng, arr.shape[:2], self.cfg.image_size, self.cfg.flip)
            arr = apply(arr, params, self.cfg.image_size)
        else:
            arr = resize(arr, self.cfg.image_size)
        return uint8_to_tensor(arr)

    def __getitem__(self, key) -> dict:
        index, seed = split_key(key)
        it = self.items[index]
        rng = rng_for(index, seed if self.train else None, salt=11)
        choice = int(rng.integers(len(self.captions[index])))
        ids = self.captions[index][choice]
        n = self.cfg.words_num
        if len(ids) > n:
            if self.train:      # AttnGAN get_caption: a random, order-preserving subset of the words
                ids = [ids[j] for j in np.sort(rng.permutation(len(ids))[:n])]
            else:
                ids = ids[:n]
        caption = torch.full((n,), END_ID, dtype=torch.long)
        caption[:len(ids)] = torch.tensor(ids, dtype=torch.long)
        return {"image": self._image(it, rng), "caption": caption, "length": len(ids),
                "class_id": it.class_id, "key": it.key, "caption_index": self.caption_index[index][choice]}


def caption_dataset(cfg: CaptionDataConfig, split: str, vocab: Vocabulary | None = None) -> CaptionDataset:
    if not cfg.root:
        raise ConfigError("data.root: the dataset folder is required")
    return CaptionDataset(cfg, split, vocab or resolve_vocabulary(cfg))


# -------------------------------------------------------------------------------------- checks
def _check(layout: str, root: Path) -> Report:
    cfg = CaptionDataConfig(root=str(root), layout=layout, captions_per_image=5 if layout == "coco" else 10)
    report = Report(layout, root)
    vocab = resolve_vocabulary(cfg)
    report.lines.append(f"vocabulary: {len(vocab)} words "
                        f"({'from ' + str(root / 'vocab.json') if (root / 'vocab.json').is_file() else 'built from the train captions'})")
    for split in ("train", "test"):
        try:
            items = list_items(root, layout, split)
        except UserError:
            if split == "test":
                report.warnings.append(f"no test split in {root}")
                continue
            raise
        ds = CaptionDataset(cfg, split, vocab)
        report.counts[split] = {"images": len(items), "usable": len(ds), "without_captions": ds.without_captions,
                                "fewer_captions": ds.fewer_captions, "unknown_words": ds.stats.unknown,
                                "empty": ds.stats.empty, "only_unknown": ds.stats.only_unknown,
                                "truncated": ds.stats.truncated}
        report.lines.append(f"{split}: {plural(len(items), 'image')}, {len(ds)} with usable captions")
        report.lines += [f"  {ln}" for ln in ds.stats.lines()]
        if ds.without_captions:
            report.warnings.append(f"{split}: {plural(ds.without_captions, 'image')} without usable captions "
                                   f"(left out)")
        if ds.fewer_captions:
            report.warnings.append(f"{split}: {plural(ds.fewer_captions, 'image')} with fewer than "
                                   f"{cfg.captions_per_image} captions")
    return report


@register_check("cub", "CUB-200-2011 in AttnGAN's birds layout: CUB_200_2011/{images.txt,bounding_boxes.txt,images/}, "
                       "text/ (10 captions an image), train|test/filenames.json or .pickle")
def check_cub(root: Path) -> Report:
    return _check("cub", root)


@register_check("oxford", "Oxford-102 flowers with Reed's captions: jpg/, text_c10/class_XXXXX/, "
                          "train|test/filenames.json (.pickle) or trainvalclasses.txt/testclasses.txt")
def check_oxford(root: Path) -> Report:
    return _check("oxford", root)


@register_check("coco", "COCO 2014 captions: annotations/captions_{train,val}2014.json, train2014/, val2014/")
def check_coco(root: Path) -> Report:
    return _check("coco", root)


@register_check("captions", "a custom caption folder: images/x.jpg + captions/x.txt (one caption a line), "
                            "optional train.txt/test.txt listing stems")
def check_captions(root: Path) -> Report:
    return _check("captions", root)
