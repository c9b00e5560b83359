"""``condsynth data check DATASET DIR``: is this folder usable as DATASET, before a run starts?

Each dataset reader registers a checker next to its reader with :func:`register_check`. A checker
takes the folder, reads every file the reader would read (through the reader's own code, so it
fails where training would), and either raises a :class:`~condsynth.errors.UserError` naming the
first missing or bad file (the command prints one ``condsynth: error:`` line and exits 2) or returns
a :class:`Report`: counts per split, sizes, label ranges and counts per class, and warnings about
things that are usable but probably not meant (files without a partner, names outside a pattern).

A new reader module that registers checks is added to ``READER_MODULES``, which are imported when
the registry is first used (not at ``condsynth --help``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from condsynth.errors import UserError

READER_MODULES = (                     # "labels" is generic and lives here
    "condsynth.data.translation",      # pix2pix, unpaired
    "condsynth.data.cityscapes",       # pix2pixhd, cityscapes
    "condsynth.data.utkface",          # utkface
    "condsynth.data.synth.scenes",     # scenes
    "condsynth.data.captions",         # cub, oxford, coco, captions
    "condsynth.data.talking",          # lrw, grid
)


@dataclass
class Report:
    """What a usable dataset looks like; ``counts`` holds the numbers for scripts and tests."""
    dataset: str
    root: Path
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    def text(self) -> str:
        head = f"{self.dataset} dataset at {self.root}: usable"
        return "\n".join([head] + [f"  {ln}" for ln in self.lines] + [f"  warning: {w}" for w in self.warnings])


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    run: Callable[[Path], Report]


CHECKS: dict[str, Check] = {}


def register_check(name: str, description: str):
    """Decorator: ``@register_check("pix2pix", "...")`` on a ``function(root: Path) -> Report``."""
    def decorate(fn: Callable[[Path], Report]) -> Callable[[Path], Report]:
        CHECKS[name] = Check(name, description, fn)
        return fn
    return decorate


def all_checks() -> dict[str, Check]:
    for module in READER_MODULES:
        importlib.import_module(module)
    return dict(sorted(CHECKS.items()))


def check_dataset(name: str, root: str | Path) -> Report:
    """Run the checker registered as ``name`` on ``root``; a UserError if it is unusable."""
    checks = all_checks()
    if name not in checks:
        raise UserError(f"unknown dataset kind '{name}' (known: {', '.join(checks)})")
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: folder not found" if not root.exists() else f"{root}: not a folder")
    return checks[name].run(root)


# ------------------------------------------------------------------------------- shared helpers
def sizes_line(sizes: Iterable[tuple[int, int]]) -> str:
    """'256x256 (h x w)' or '256x256 (398), 200x250 (2) (h x w)': image sizes, most common first."""
    tally: dict[tuple[int, int], int] = {}
    for hw in sizes:
        tally[tuple(hw)] = tally.get(tuple(hw), 0) + 1
    ranked = sorted(tally.items(), key=lambda kv: -kv[1])
    if len(ranked) == 1:
        return f"{ranked[0][0][0]}x{ranked[0][0][1]} (h x w)"
    more = ", ..." if len(ranked) > 4 else ""
    return ", ".join(f"{h}x{w} ({n})" for (h, w), n in ranked[:4]) + more + " (h x w)"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


class LabelStats:
    """Pixels and maps per id over a set of label (or instance) maps."""

    def __init__(self):
        self.pixels: dict[int, int] = {}
        self.maps: dict[int, int] = {}
        self.n_maps = 0
        self.sizes: list[tuple[int, int]] = []

    def add(self, ids: np.ndarray) -> None:
        values, counts = np.unique(ids, return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist()):
            self.pixels[v] = self.pixels.get(v, 0) + c
            self.maps[v] = self.maps.get(v, 0) + 1
        self.n_maps += 1
        self.sizes.append(tuple(ids.shape[:2]))

    @property
    def range(self) -> tuple[int, int]:
        return min(self.pixels), max(self.pixels)

    def lines(self, names: dict[int, str] | None = None, limit: int = 40) -> list[str]:
        total = sum(self.pixels.values())
        lo, hi = self.range
        out = [f"label range {lo}..{hi}, {len(self.pixels)} distinct ids"]
        for v in sorted(self.pixels)[:limit]:
            name = f" {names[v]}" if names and v in names else ""
            out.append(f"  id {v}{name}: {100 * self.pixels[v] / total:.1f}% of pixels, "
                       f"in {self.maps[v]} of {self.n_maps} maps")
        if len(self.pixels) > limit:
            out.append(f"  ... and {len(self.pixels) - limit} more ids")
        return out


# Cityscapes names the files of one frame by suffix (CITY_SEQ_FRAME_leftImg8bit.png, ..._gtFine_labelIds.png,
# ..._gtFine_instanceIds.png), all in one gtFine folder: matching strips these, and prefers the wanted one.
PAIR_SUFFIXES = ("_leftImg8bit", "_gtFine_labelIds", "_gtFine_instanceIds", "_gtFine_color")


def pair_key(stem: str) -> str:
    """A file's stem without a Cityscapes suffix: the name its partner files share."""
    for suffix in PAIR_SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def match_by_stem(files: list[Path], folder: Path, what: str, prefer: str | None = None) -> dict[Path, Path]:
    """The file in ``folder`` with each file's stem, or failing that with its :func:`pair_key` (among
    several partners, the one whose stem ends with ``prefer``, e.g. ``"_gtFine_instanceIds"``); a
    UserError names the first one missing."""
    from condsynth.io.images import list_images
    candidates = list_images(folder)
    by_stem = {p.stem: p for p in candidates}
    by_key: dict[str, Path] = {}
    for p in candidates:
        key = pair_key(p.stem)
        if key not in by_key or (prefer and p.stem.endswith(prefer)):
            by_key[key] = p

    def partner(f: Path) -> Path | None:
        if prefer and pair_key(f.stem) in by_key and by_key[pair_key(f.stem)].stem.endswith(prefer):
            return by_key[pair_key(f.stem)]
        return by_stem.get(f.stem) or by_key.get(pair_key(f.stem))

    found = {f: partner(f) for f in files}
    missing = [f for f, p in found.items() if p is None or p == f]
    if missing:
        raise UserError(f"{folder}: no {what} for '{missing[0].name}' ({len(missing)} of {len(files)} missing)")
    return found


# ------------------------------------------------------------------------- the generic checker
@register_check("labels", "a folder of label maps (grey or palette PNGs of class ids): label range, pixels "
                          "and maps per class; instance maps in instance/ inside or beside it")
def check_labels(root: Path) -> Report:
    from condsynth.io.images import list_images, read_instance_map, read_label_map
    files = list_images(root)
    stats = LabelStats()
    for f in files:
        stats.add(read_label_map(f))
    report = Report("labels", root, counts={"maps": len(files), "range": list(stats.range),
                                             "pixels": dict(stats.pixels)})
    report.lines.append(f"{plural(len(files), 'label map')}, {sizes_line(stats.sizes)}")
    report.lines += stats.lines()
    inst_dir = next((d for d in (root / "instance", root.parent / "instance") if d.is_dir()), None)
    if inst_dir is None:
        report.lines.append("no instance maps (no instance/ folder inside or beside it)")
        return report
    instances = LabelStats()
    pairs = match_by_stem(files, inst_dir, "instance map")
    for (label_file, inst_file), (h, w) in zip(pairs.items(), stats.sizes):
        inst = read_instance_map(inst_file)
        if inst.shape != (h, w):
            raise UserError(f"{inst_file}: size {inst.shape[1]}x{inst.shape[0]} differs from its label map "
                            f"{label_file.name} ({w}x{h})")
        instances.add(inst)
    things = sum(n for v, n in instances.maps.items() if v >= 1000)
    report.counts["instance_maps"] = instances.n_maps
    report.counts["things"] = things
    report.lines.append(f"{plural(instances.n_maps, 'instance map')} in {inst_dir}: {things} thing instances "
                        f"(id = class * 1000 + k), ids {instances.range[0]}..{instances.range[1]}")
    return report
