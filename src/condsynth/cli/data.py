"""``condsynth data``: dataset tools.

``condsynth data synth <world> --out DIR --n N`` writes a synthetic world as a dataset folder in the
layout of the real dataset it stands in for, e.g.::

    condsynth data synth scenes --out data/scenes --n 1000 --size 64          # pix2pix A|B pairs
    condsynth data synth scenes --out data/scenes_ab --n 500 --layout folders # A/ and B/ folders
    condsynth data synth scenes --out data/scenes_hd --n 500 --size 64x128 --layout folders \
        --class-ids --instances                                               # pix2pixHD: 2:1, ids

``condsynth data check DATASET DIR`` checks a dataset folder before a run: it reads every file the
reader would, names the first missing or bad one (exit code 2), or prints counts, sizes and, for
label maps, the label range and pixels per class::

    condsynth data check pix2pix data/scenes
    condsynth data check labels data/scenes_hd/train/A
    condsynth data check cityscapes ~/datasets/cityscapes        # also: pix2pixhd

``condsynth data labels-from-colors IN_DIR OUT_DIR --palette scenes|cityscapes|FILE.json`` turns
colour-coded segmentations into class-id PNGs (``--instances-from-components CLASSES`` adds
instance maps from connected components); see :mod:`condsynth.data.colors`.

``condsynth data strokes --out FILE --n N`` rasterises random brush strokes once into a stroke bank,
the training data of the neural painting renderer (``data.bank`` in configs/painting/renderer*.yaml)::

    condsynth data strokes --out data/strokes-260k.safetensors --n 260000 --workers 2

Worlds come from the one registry, :data:`condsynth.data.synth.WORLDS`, and each declares its own
options there; dataset checkers register themselves in :mod:`condsynth.data.check`. Both modules'
heavy imports happen only when a command runs, so ``condsynth --help`` stays fast.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from condsynth.cli.options import SEED, WORKERS
from condsynth.data.synth import WORLDS
from condsynth.errors import UserError

MAX_SIDE = 4096          # a scene this wide is already ~50 MB per image
MAX_STROKE_SIDE = 1024


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="dataset tools: synthetic worlds, stroke banks, checks",
                                   description="Dataset tools.")
    data_sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])

    synth = data_sub.add_parser("synth", help="write a synthetic world as a dataset folder",
                                description="Write a procedural dataset, deterministic from --seed.")
    worlds = synth.add_subparsers(dest="world", metavar="WORLD")
    synth.set_defaults(func=lambda args: (synth.print_help(), 0)[1])
    for world in WORLDS.values():
        p = worlds.add_parser(world.name, help=world.description, description=world.description)
        _add_common_world_args(p)
        world.add_arguments(p)
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

    check = data_sub.add_parser(
        "check", help="check a dataset folder before training: counts, bad files, label ranges",
        description="Read every file a dataset reader would read; name the first missing or bad one (exit "
                    "code 2), or report counts per split, sizes and, for label maps, the label range and "
                    "pixels per class.")
    check.add_argument("dataset", metavar="DATASET",
                       help="the dataset kind: pix2pix, unpaired, utkface, labels, scenes, ... "
                            "(an unknown name lists them all)")
    check.add_argument("dir", type=Path, metavar="DIR", help="the dataset folder")
    check.set_defaults(func=run_check)

    prep = data_sub.add_parser(
        "prepare", help="cache face landmarks (UTKFace, CACD2000) or aligned crops, landmarks and MFCC (LRW, GRID)",
        description="utkface|cacd: detect the largest face of every image (dlib HOG, OpenCV Haar fallback) and "
                    "write its 68 landmarks to DIR/landmarks.npz, the cache the readers use with data.landmarks; "
                    "images without a face are listed as failures. lrw|grid: per clip, the face crops aligned "
                    "on the nose and eye corners with the alignment smoothed over time, the 68 landmarks in "
                    "the crop and the per-frame MFCC windows, in DIR/prepared/ (index.json lists the clips and "
                    "the failures: clips without a face or without audio).")
    prep.add_argument("dataset", choices=("utkface", "cacd", "lrw", "grid"), help="the dataset layout")
    prep.add_argument("dir", type=Path, metavar="DIR", help="the dataset folder")
    prep.add_argument("--out", type=Path, help="cache file (default DIR/landmarks.npz) or, for lrw|grid, "
                                               "folder (default DIR/prepared)")
    prep.add_argument("--size", type=int, default=128, help="(lrw|grid) aligned crop side (default 128)")
    prep.add_argument("--smooth", type=float, default=2.0,
                      help="(lrw|grid) Gaussian sigma in frames of the alignment's smoothing; 0 = per frame "
                           "(default 2)")
    prep.add_argument("--landmarks", choices=("auto", "dlib", "truth"), default="auto",
                      help="(lrw|grid) dlib per frame, the talking world's exact truth (.json beside a clip), or "
                           "auto: the truth where it exists, else dlib (default auto)")
    prep.add_argument("--pad-to-31", action="store_true",
                      help="(lrw) the thesis's 31 frames: two copies of the first frame in front of LRW's native 29 "
                           "(an old-ffmpeg artefact), the audio delayed with them")
    prep.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    prep.add_argument("--overwrite", action="store_true", help="replace an existing cache")
    prep.set_defaults(func=run_prepare)

    conv = data_sub.add_parser(
        "labels-from-colors", help="colour-coded segmentations -> class-id PNGs (and instance maps)",
        description="Turn colour-coded label maps into class-id PNGs (8-bit palette PNGs whose pixels are the "
                    "ids), matching colours exactly; optionally write 16-bit instance maps from connected "
                    "components. OUT_DIR appears complete or not at all.")
    conv.add_argument("in_dir", type=Path, metavar="IN_DIR", help="folder of colour label maps")
    conv.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="output folder: NAME.png class-id maps")
    conv.add_argument("--palette", required=True, metavar="scenes|cityscapes|FILE.json",
                      help="the colours: the scenes world's, Cityscapes' labelIds colours, or a JSON list of "
                           "{id, name, color} (a scenes meta.json works)")
    conv.add_argument("--nearest", action="store_true",
                      help="snap colours outside the palette to the nearest one (resized or JPEG maps) "
                           "instead of refusing them")
    conv.add_argument("--instances-from-components", metavar="CLASSES",
                      help="also write OUT_DIR/instance/NAME.png: 16-bit ids, class*1000+k per connected "
                           "component of these comma-separated classes (names or ids), the class id elsewhere")
    conv.add_argument("--overwrite", action="store_true", help="replace an existing non-empty OUT_DIR")
    conv.set_defaults(func=run_labels_from_colors)


def _add_common_world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output folder (created atomically)")
    p.add_argument("--n", required=True, type=int, help="number of images over all splits")
    p.add_argument("--seed", type=SEED, default=0, help="base seed; image i uses seed [seed, i] (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out folder")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def run_synth(args: argparse.Namespace) -> int:
    from condsynth.io.outputs import check_output
    size = getattr(args, "size", None)
    h, w = (size, size) if isinstance(size, int) else tuple(size) if size else (0, 0)
    if max(h, w) > MAX_SIDE:
        raise UserError(f"--size must be at most {MAX_SIDE}, got {size if isinstance(size, int) else f'{h}x{w}'}")
    if args.n > 10 ** 8:
        raise UserError(f"--n must be at most {10 ** 8}, got {args.n}")
    # a rough lower bound of the PNGs: an A|B pair of h x w pixels rarely compresses below h*w / 4 bytes
    check_output(args.out, kind="folder", overwrite=args.overwrite, need_bytes=max(args.n, 0) * h * w // 4)
    start = time.perf_counter()
    meta = WORLDS[args.world].write(args)
    counts = ", ".join(f"{k} {v}" for k, v in meta["counts"].items())
    size = meta.get("size")
    at = f" at {size}px" if isinstance(size, int) else f" at {size[0]}x{size[1]}px (h x w)" if size else ""
    print(f"wrote {args.world} ({counts}){at} to {args.out} in {time.perf_counter() - start:.1f}s")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from condsynth.data.check import check_dataset
    print(check_dataset(args.dataset, args.dir).text())
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    if args.dataset in ("lrw", "grid"):
        return run_prepare_talking(args)
    from condsynth.data.utkface import read_cacd, read_utkface
    from condsynth.io.faces import FaceAnalyzer, cache_landmarks
    from condsynth.io.outputs import check_output
    records, _ = (read_utkface if args.dataset == "utkface" else read_cacd)(args.dir, skip_invalid=True)
    out = args.out or args.dir / "landmarks.npz"
    check_output(out, overwrite=args.overwrite)
    start = time.perf_counter()
    done = cache_landmarks([r.path for r in records], FaceAnalyzer(), out)
    print(f"wrote landmarks of {done['points']} images ({done['failures']} without a face) to {out} "
          f"in {time.perf_counter() - start:.1f}s")
    return 0


def run_prepare_talking(args: argparse.Namespace) -> int:
    from condsynth.data.talking import prepare
    from condsynth.io.outputs import check_output
    if not 16 <= args.size <= 1024:
        raise UserError(f"--size must be between 16 and 1024, got {args.size}")
    if not 0 <= args.smooth <= 100:
        raise UserError(f"--smooth must be between 0 and 100 frames, got {args.smooth}")
    out = args.out or args.dir / "prepared"
    check_output(out, kind="folder", overwrite=args.overwrite)
    start = time.perf_counter()
    meta = prepare(args.dir, args.dataset, out, size=args.size, smooth=args.smooth, landmarks=args.landmarks,
                   pad31=args.pad_to_31, progress=False if args.no_progress else None)
    failed = meta["failures"]
    print(f"prepared {len(meta['clips'])} clips ({len(failed)} failed) at {args.size}px to {out} "
          f"in {time.perf_counter() - start:.1f}s")
    for f in failed[:10]:
        print(f"  failed: {f['clip']}: {f['reason']}")
    if len(failed) > 10:
        print(f"  ... and {len(failed) - 10} more (all in {out / 'index.json'})")
    return 0


def run_labels_from_colors(args: argparse.Namespace) -> int:
    from condsynth.data.colors import convert_folder, load_palette, parse_classes
    from condsynth.io.images import list_images
    from condsynth.io.outputs import check_output
    palette = load_palette(args.palette)
    things = (parse_classes(args.instances_from_components, palette)
              if args.instances_from_components is not None else None)
    files = list_images(args.in_dir)
    check_output(args.out_dir, kind="folder", inputs=[args.in_dir], overwrite=args.overwrite,
                 need_bytes=sum(f.stat().st_size for f in files) // 4)
    start = time.perf_counter()
    done = convert_folder(args.in_dir, args.out_dir, palette, nearest=args.nearest, things=things)
    inst = f" and {done['instances']} instances in instance/" if things is not None else ""
    print(f"wrote {done['maps']} class-id maps ({len(done['pixels'])} classes){inst} to {args.out_dir} "
          f"in {time.perf_counter() - start:.1f}s")
    return 0


def run_strokes(args: argparse.Namespace) -> int:
    from condsynth.data.strokes import write_stroke_bank
    from condsynth.engine.memory import available_memory
    from condsynth.io.outputs import check_output, human_bytes
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
