"""``condsynth data``: dataset tools.

``condsynth data synth <world> --out DIR --n N`` writes a synthetic world as a dataset folder in the
layout of the real dataset it stands in for, e.g.::

    condsynth data synth scenes --out data/scenes --n 1000 --size 64          # pix2pix A|B pairs
    condsynth data synth scenes --out data/scenes_ab --n 500 --layout folders # A/ and B/ folders

``condsynth data strokes --out FILE --n N`` rasterises random brush strokes once into a stroke bank,
the training data of the neural painting renderer (``data.bank`` in configs/painting/renderer*.yaml)::

    condsynth data strokes --out data/strokes-260k.safetensors --n 260000 --workers 2

A new world is one entry in :data:`SYNTH_WORLDS`. The world's module is imported only when the
command runs, so ``condsynth --help`` stays fast.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

from condsynth.cli.options import SEED, WORKERS
from condsynth.errors import UserError

MAX_SIDE = 4096          # a scene or a stroke alpha map this wide is already ~50 MB per image
MAX_STROKE_SIDE = 1024


def _write_scenes(**kwargs) -> dict:
    from condsynth.data.synth.scenes import write_dataset
    return write_dataset(**kwargs)


# world name -> (writer, one-line description). A writer takes the keyword arguments
# out, n, size, seed, val_fraction, test_fraction, layout, overwrite, progress and returns the
# metadata it wrote to DIR/meta.json.
SYNTH_WORLDS: dict[str, tuple[Callable[..., dict], str]] = {
    "scenes": (_write_scenes, "outdoor scenes: colour label maps (A) -> rendered photos (B); "
                              "stands in for Cityscapes/facades labels->photo"),
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="dataset tools: synthetic worlds",
                                   description="Dataset tools.")
    data_sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])

    synth = data_sub.add_parser("synth", help="write a synthetic world as a dataset folder",
                                description="Write a procedural dataset, deterministic from --seed.")
    worlds = synth.add_subparsers(dest="world", metavar="WORLD")
    synth.set_defaults(func=lambda args: (synth.print_help(), 0)[1])
    for name, (_, description) in SYNTH_WORLDS.items():
        p = worlds.add_parser(name, help=description, description=description)
        _add_world_args(p)
        p.set_defaults(func=run_synth)

    strokes = data_sub.add_parser(
        "strokes", help="rasterise random brush strokes into a stroke bank (painting renderer data)",
        description="Rasterise items 0..N-1 of the random stroke stream of seed --seed (the renderer's "
                    "training distribution) into one safetensors file.")
    strokes.add_argument("--out", required=True, type=Path, help="output .safetensors file (written atomically)")
    strokes.add_argument("--n", required=True, type=int, help="number of strokes")
    strokes.add_argument("--seed", type=SEED, default=0, help="stroke i uses seed [seed, i] (default 0)")
    strokes.add_argument("--size", type=int, default=128, help="alpha map side (default 128)")
    strokes.add_argument("--relative-p1", action="store_true", help="LearningToPaint's relative middle point")
    strokes.add_argument("--workers", type=WORKERS, default=1, help="processes (default 1)")
    strokes.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    strokes.set_defaults(func=run_strokes)


def _add_world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output folder (created atomically)")
    p.add_argument("--n", required=True, type=int, help="number of images over all splits")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64, at least 16)")
    p.add_argument("--seed", type=SEED, default=0, help="base seed; image i uses seed [seed, i] (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of n for val/ (default 0.1)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="fraction of n for test/ (default 0.1)")
    p.add_argument("--layout", choices=("ab", "folders"), default="ab",
                   help="ab: SPLIT/NNNNN.png with A|B side by side (pix2pix); "
                        "folders: SPLIT/A/NNNNN.png and SPLIT/B/NNNNN.png (default ab)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out folder")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def run_synth(args: argparse.Namespace) -> int:
    from condsynth.io.outputs import check_output
    writer, _ = SYNTH_WORLDS[args.world]
    if args.size > MAX_SIDE:
        raise UserError(f"--size must be at most {MAX_SIDE}, got {args.size}")
    if args.n > 10 ** 8:
        raise UserError(f"--n must be at most {10 ** 8}, got {args.n}")
    # a rough lower bound of the PNGs: an A|B pair of size^2 pixels rarely compresses below size^2 / 4 bytes
    check_output(args.out, kind="folder", overwrite=args.overwrite, need_bytes=max(args.n, 0) * args.size ** 2 // 4)
    start = time.perf_counter()
    meta = writer(out=args.out, n=args.n, size=args.size, seed=args.seed, val_fraction=args.val_fraction,
                  test_fraction=args.test_fraction, layout=args.layout, overwrite=args.overwrite,
                  progress=False if args.no_progress else None)
    counts = ", ".join(f"{k} {v}" for k, v in meta["counts"].items())
    print(f"wrote {args.world} ({counts}) at {args.size}px to {args.out} "
          f"in {time.perf_counter() - start:.1f}s")
    return 0


def run_strokes(args: argparse.Namespace) -> int:
    from condsynth.engine.memory import available_memory
    from condsynth.io.outputs import check_output, human_bytes
    from condsynth.models.painting import write_stroke_bank
    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    if args.size < 16 or args.size & (args.size - 1) or args.size > MAX_STROKE_SIDE:
        raise UserError(f"--size must be a power of two from 16 to {MAX_STROKE_SIDE}, got {args.size}")
    if args.out.suffix != ".safetensors":
        raise UserError(f"{args.out}: the stroke bank is a .safetensors file")
    size = args.n * (args.size ** 2 + 64)                  # 8-bit alpha maps + float32 parameters
    free = available_memory()
    if free is not None and 2 * size > free:               # the chunks and their concatenation
        raise UserError(f"--n {args.n} at --size {args.size}: the bank is built in memory and needs about "
                        f"{human_bytes(2 * size)}, more than the {human_bytes(free)} available")
    check_output(args.out, overwrite=args.overwrite, need_bytes=size)
    start = time.perf_counter()
    write_stroke_bank(args.out, args.n, args.seed, args.size, args.relative_p1, max(1, args.workers))
    print(f"wrote {args.n} strokes ({args.size}px, seed {args.seed}) to {args.out} "
          f"in {time.perf_counter() - start:.1f}s")
    return 0
