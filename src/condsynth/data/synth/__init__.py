"""Synthetic worlds: procedural datasets generated from a seed, in the on-disk layout of the real
dataset they stand in for, with exact ground truth. They serve tests, benchmarks, tutorials and demo
checkpoints; they never replace a real dataset reader.

:data:`WORLDS` is the one registry of worlds; ``condsynth data synth <world>`` lists and calls them.
A world is one :class:`World` entry: its name, a one-line description, a function that declares its
own command-line options, and a function that writes the dataset from the parsed options. The
command itself adds the options every world has (``--out``, ``--n``, ``--seed``, ``--overwrite``,
``--no-progress``), so a new world or a new option of a world changes nothing in ``cli/data.py``.

This module stays light (no NumPy, no torch): ``condsynth --help`` builds every world's options.
A world's module is imported by its ``write`` function, when the command runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class World:
    name: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]   # the world's own options
    write: Callable[[argparse.Namespace], dict]                # writes args.out; returns its meta.json


def size_arg(text: str) -> int | tuple[int, int]:
    """``--size 64`` (square) or ``--size 64x128`` (height x width) for argparse."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected a side such as 64 or HEIGHTxWIDTH such as 64x128, got '{text}'")
    return values[0] if len(values) == 1 else (values[0], values[1])


def add_split_arguments(p: argparse.ArgumentParser) -> None:
    """``--val-fraction`` / ``--test-fraction``, for worlds written as train/val/test splits."""
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of n for val/ (default 0.1)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="fraction of n for test/ (default 0.1)")


def progress(args: argparse.Namespace) -> bool | None:
    """A writer's ``progress`` from ``--no-progress``: False, or None (a bar for long runs only)."""
    return False if args.no_progress else None


# ------------------------------------------------------------------------------------- scenes
def _scenes_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=size_arg, default=64,
                   help="image side, or HEIGHTxWIDTH for a rectangle (64x128: 2:1 as pix2pixHD); "
                        "at least 16 (default 64)")
    add_split_arguments(p)
    p.add_argument("--layout", choices=("ab", "folders", "pix2pixhd", "cityscapes"), default="ab",
                   help="ab: SPLIT/NNNNN.png with A|B side by side (pix2pix); "
                        "folders: SPLIT/A/NNNNN.png and SPLIT/B/NNNNN.png; pix2pixhd: SPLIT_label/ (class ids), "
                        "SPLIT_inst/, SPLIT_img/; cityscapes: leftImg8bit/ and gtFine/ with Cityscapes' file "
                        "names (city 'scenesville') (default ab)")
    p.add_argument("--style", choices=("none", "winter"), default="none",
                   help="rendering style of the photos (labels unchanged): winter = grey sky, snow on grass "
                        "and trees; drawn from its own generator, so each image is its summer image's exact "
                        "counterpart (default none)")
    p.add_argument("--unpaired", choices=("labels-photos", "summer-winter"),
                   help="write CycleGAN's layout instead: trainA/trainB from disjoint scenes (n minus the test "
                        "share each), testA/testB exact counterparts of the same scenes, testLabels/ their "
                        "class ids; --val-fraction, --layout and --style do not apply")
    p.add_argument("--class-ids", action="store_true",
                   help="(folders layout) write A as 8-bit palette PNGs whose pixels are class ids; "
                        "they look the same and read_image sees the same colours")
    p.add_argument("--instances", action="store_true",
                   help="also write SPLIT/instance/NNNNN.png (16-bit Cityscapes-style instance ids) and "
                        "SPLIT/instances.json (each image's objects; buildings with their facade colour index)")


def _write_scenes(args: argparse.Namespace) -> dict:
    from condsynth.data.synth.scenes import split_counts, write_dataset, write_unpaired
    if args.unpaired:
        counts = split_counts(args.n, 0.0, args.test_fraction)
        return write_unpaired(args.out, args.unpaired, counts["train"], counts["test"], size=args.size,
                              seed=args.seed, overwrite=args.overwrite, progress=progress(args))
    return write_dataset(args.out, args.n, size=args.size, seed=args.seed, val_fraction=args.val_fraction,
                         test_fraction=args.test_fraction, layout=args.layout, class_ids=args.class_ids,
                         instances=args.instances, style=args.style, overwrite=args.overwrite,
                         progress=progress(args))


# ------------------------------------------------------------------------------------- shapes
def _shapes_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, default=64, help="image side, at least 16 (default 64)")
    p.add_argument("--test-fraction", type=float, default=0.15,
                   help="fraction of the seen (shape, colour) images for test/ (default 0.15); the held-out "
                        "pairs always go to compositional/")


def _write_shapes(args: argparse.Namespace) -> dict:
    from condsynth.data.synth.shapes import write_dataset
    return write_dataset(args.out, args.n, size=args.size, seed=args.seed, test_fraction=args.test_fraction,
                         overwrite=args.overwrite, progress=progress(args))


# -------------------------------------------------------------------------------------- faces
def _faces_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, default=128, help="image side, at least 32 (default 128)")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="share of n for test/: held-out identities, each rendered at all ten age groups "
                        "(default 0.2)")
    p.add_argument("--ages-per-identity", type=int, default=1,
                   help="renders per training identity, at distinct age groups (1 = unpaired, as UTKFace; "
                        "more for identity and evaluator training; default 1)")
    p.add_argument("--pose", type=float, default=1.0,
                   help="scale of the random head pose (yaw, roll, scale, shift); 0 = frontal (default 1)")


def _write_faces(args: argparse.Namespace) -> dict:
    from condsynth.data.synth.faces import write_dataset
    return write_dataset(args.out, args.n, size=args.size, seed=args.seed, test_fraction=args.test_fraction,
                         ages_per_identity=args.ages_per_identity, pose=args.pose, overwrite=args.overwrite,
                         progress=progress(args))


# ------------------------------------------------------------------------------------ talking
def _talking_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, default=96, help="frame side, even, at least 32 (default 96)")
    p.add_argument("--layout", choices=("lrw", "grid"), default="lrw",
                   help="lrw: WORD/{train,val,test}/WORD_00001.mp4 (29 frames) + .txt; grid: s<k>/<code>.mp4 "
                        "(75 frames, a six-word sentence) + align/s<k>/<code>.align (default lrw)")
    p.add_argument("--words", type=int, default=10, help="(lrw) vocabulary size: the first K of the world's 20 LRW words (default 10)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="(lrw) share of clips for val/ (default 0.1)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="(lrw) share of clips for test/ (default 0.2)")
    p.add_argument("--speakers", type=int, default=4, help="(grid) number of speakers s1..sK (default 4)")
    p.add_argument("--pose", type=float, default=0.5, help="scale of the random head pose (default 0.5)")


def _write_talking(args: argparse.Namespace) -> dict:
    from condsynth.data.synth.talking import write_dataset
    return write_dataset(args.out, args.n, size=args.size, seed=args.seed, layout=args.layout, n_words=args.words,
                         val_fraction=args.val_fraction, test_fraction=args.test_fraction, speakers=args.speakers,
                         pose=args.pose, overwrite=args.overwrite, progress=progress(args))


WORLDS: dict[str, World] = {w.name: w for w in [
    World("scenes", "outdoor scenes: colour label maps (A) -> rendered photos (B), optionally with class-id "
                    "and instance maps; stands in for Cityscapes/facades labels->photo",
          _scenes_arguments, _write_scenes),
    World("shapes", "one or two coloured shapes with 10 captions each (attribute subsets, paraphrases) in "
                    "AttnGAN's birds layout, with exact attributes, masks and held-out (shape, colour) pairs; "
                    "stands in for CUB/Oxford text-to-image",
          _shapes_arguments, _write_shapes),
    World("faces", "procedural faces with exact 68 landmarks, identities rendered at all ten age groups, "
                   "mouth and blink controls, in UTKFace's file names; stands in for UTKFace/CACD",
          _faces_arguments, _write_faces),
    World("talking", "faces of the faces world saying words (espeak-ng speech, visemes with coarticulation, "
                     "blinks, head motion) with exact per-frame landmarks, visemes, phoneme and word timings, as "
                     "h264 + AAC clips in LRW's layout or a GRID-like one",
          _talking_arguments, _write_talking),
]}

_SCENES_EXPORTS = ("CLASSES", "PALETTE", "Scene", "render_scene")


def __getattr__(name: str):
    # `from condsynth.data.synth import render_scene` keeps working without importing NumPy here.
    if name in _SCENES_EXPORTS:
        from condsynth.data.synth import scenes
        return getattr(scenes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CLASSES", "PALETTE", "Scene", "WORLDS", "World", "add_split_arguments", "progress", "render_scene",
           "size_arg"]
