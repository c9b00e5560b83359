"""``condsynth age IMAGE --to 61-70 --out OUT.png``: the face in a photo at another age (LDcGAN).

``--all-groups`` writes a strip of the input and the ten groups; ``--debug-dir`` the aged photo per
group, the masks f_A, the contents f_C and the landmarks (L green, the predicted L* red). The photo
goes detect -> align -> generate -> paste back; outside the paste mask it is unchanged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from condsynth.cli.options import THREADS, add_overwrite, int_in
from condsynth.errors import UserError

IMAGE_OUT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_CHECKPOINT = "ldcgan-faces64"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "age", help="age or rejuvenate the face in a photo (LDcGAN)",
        description="Synthesise the person in IMAGE at another age group (0-5, 6-10, 11-20, 21-30, 31-40, 41-50, "
                    "51-60, 61-70, 71-80, 80+). The face is found (dlib), aligned to the model's template, "
                    "generated and pasted back; the rest of the photo is unchanged.")
    p.add_argument("image", help="input photo (any format Pillow reads; grey photos give grey results)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--to", metavar="GROUP", help="target age group, e.g. 61-70 or 80+")
    group.add_argument("--all-groups", action="store_true", help="all ten groups: OUT is a strip, input first")
    p.add_argument("--out", "-o", required=True, help="output image")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                   help=f"an LDcGAN export, run or checkpoint (default: the bundled '{DEFAULT_CHECKPOINT}')")
    p.add_argument("--face", default=None, metavar="N|all",
                   help="which face: N (0 = the largest, the default) or all")
    p.add_argument("--min-face-size", type=int_in(1, 100_000), default=40,
                   help="refuse a chosen face smaller than this many pixels (default 40)")
    p.add_argument("--crop-size", type=int_in(16, 2048), default=256,
                   help="side of the aligned crop the result is blended at (default 256)")
    p.add_argument("--debug-dir", default=None, metavar="DIR",
                   help="write per group: the photo, the crop, f_A, f_C, the landmarks (npy and drawn)")
    p.add_argument("--threads", type=THREADS, default=0, help="CPU threads (0: torch's default)")
    add_overwrite(p, "existing outputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from condsynth.io.faces import parse_face_choice
    from condsynth.pipelines.face_aging import parse_groups
    if Path(args.out).suffix.lower() not in IMAGE_OUT:
        raise UserError(f"{args.out}: output image must end in {', '.join(IMAGE_OUT)}")
    groups = parse_groups("all" if args.all_groups else args.to)
    face = parse_face_choice(args.face)
    if not Path(args.image).is_file():
        raise UserError(f"{args.image}: file not found")

    import torch

    from condsynth.engine.checkpoint import checkpoint_inputs
    from condsynth.io.atomic import atomic_dir
    from condsynth.io.outputs import check_distinct, check_output
    from condsynth.pipelines.face_aging import FaceAgingPipeline
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    photo = _read(args.image)
    pipe = FaceAgingPipeline.from_pretrained(args.checkpoint, device="cpu")
    inputs = [args.image, *checkpoint_inputs(pipe.source)]
    check_distinct({"--out": args.out, "--debug-dir": args.debug_dir})
    check_output(args.out, inputs=inputs, overwrite=args.overwrite)
    if args.debug_dir:
        check_output(args.debug_dir, kind="folder", inputs=inputs, overwrite=args.overwrite)
    result = pipe(photo, to=groups, face=face, crop_size=args.crop_size, min_face_size=args.min_face_size,
                  source=args.image)
    if args.debug_dir:
        with atomic_dir(args.debug_dir) as tmp:
            result.save_debug(tmp)
    result.save(args.out, strip=args.all_groups)
    h, w = result.input.shape[:2]
    faces = len(result.source_landmarks)
    print(f"{args.out}: {w}x{h}, {faces} face{'s' if faces > 1 else ''}, "
          f"{'groups ' + ', '.join(result.images) if args.all_groups else 'group ' + next(iter(result.images))}")
    return 0


def _read(path: str):
    """The photo as read, grey kept grey (so that the result is grey too)."""
    import numpy as np
    from PIL import Image

    from condsynth.io.images import read_image
    try:
        with Image.open(path) as im:
            grey = im.mode in ("L", "I;16", "I", "1", "LA")
    except OSError:
        grey = False
    rgb = read_image(path)
    if grey:
        return np.asarray(rgb[..., 0])
    return rgb
