"""``condsynth text2image "CAPTION" --n 8 --seed S --out DIR``: images from captions (HfGAN, or the stacked baseline).

Writes ``DIR/caption_III/sample_JJ.png``, ``DIR/grid.png`` (a row per caption) and ``DIR/captions.json`` (the
words read, the unknown words, whether the caption was cut to the model's word limit); ``--attention`` adds each
sample's per-word attention maps. Captions come from the command line, from ``--captions FILE`` (one a line,
blank lines skipped) or both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from condsynth.cli.options import SEED, THREADS, add_overwrite, int_in
from condsynth.errors import UserError

DEFAULT_CHECKPOINT = "hfgan-shapes64"
MAX_CAPTIONS = 10_000


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "text2image", help="generate images from captions (HfGAN)",
        description="Generate N images for each caption with a text-to-image GAN. The bundled model was trained on "
                    "the synthetic shapes world (one or two coloured shapes: circle, square, triangle, star, "
                    "diamond; red, green, blue, yellow, orange, purple, white, black; small/large; left, right, "
                    "top, bottom, centre), so it understands captions about those.")
    p.add_argument("captions", nargs="*", metavar="CAPTION", help="one or more captions (quote each)")
    p.add_argument("--captions", dest="caption_file", metavar="FILE", help="a UTF-8 text file, one caption a line")
    p.add_argument("--n", type=int_in(1, 1000), default=4, help="images per caption (default 4)")
    p.add_argument("--seed", type=SEED, default=0, help="noise seed: the same seed and caption give the same images")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--attention", action="store_true", help="also write each sample's per-word attention maps")
    p.add_argument("--mean-condition", action="store_true",
                   help="use the conditioning mean I_s = μ instead of a sample (less varied images)")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                   help=f"an HfGAN / stacked export, run or checkpoint (default: the bundled '{DEFAULT_CHECKPOINT}')")
    p.add_argument("--threads", type=THREADS, default=0, help="CPU threads (0: torch's default)")
    add_overwrite(p, "the output folder")
    p.set_defaults(func=run)


def read_caption_file(path: str) -> list[str]:
    f = Path(path)
    if not f.is_file():
        raise UserError(f"{path}: caption file not found")
    try:
        text = f.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise UserError(f"{path}: no captions (every line is blank)")
    return lines


def run(args: argparse.Namespace) -> int:
    captions = list(args.captions) + (read_caption_file(args.caption_file) if args.caption_file else [])
    if not captions:
        raise UserError("no caption given: pass one or more CAPTION arguments or --captions FILE")
    if len(captions) > MAX_CAPTIONS:
        raise UserError(f"{len(captions)} captions: at most {MAX_CAPTIONS} a call")

    import torch

    from condsynth.engine.checkpoint import checkpoint_inputs
    from condsynth.io.atomic import atomic_dir
    from condsynth.io.outputs import check_output
    from condsynth.pipelines.text_to_image import TextToImagePipeline
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    pipe = TextToImagePipeline.from_pretrained(args.checkpoint, device="cpu")
    # every caption is checked (empty, only unknown words) before anything is written
    pipe.method.encode_captions(captions)
    check_output(args.out, kind="folder", inputs=[args.caption_file, *checkpoint_inputs(pipe.source)],
                 overwrite=args.overwrite)
    out = pipe(captions, n=args.n, seed=args.seed, sample_condition=not args.mean_condition,
               attention=args.attention)
    with atomic_dir(args.out) as tmp:
        out.save(tmp, attention=args.attention)
    for i, text in enumerate(captions):
        notes = []
        if out.unknown[i]:
            notes.append(f"unknown words, read as <unk>: {', '.join(sorted(set(out.unknown[i])))}")
        if out.truncated[i]:
            notes.append(f"only the first {pipe.words_num} words were read")
        short = text if len(text) <= 60 else text[:57] + "..."
        print(f"caption {i}: '{short}'" + (f" ({'; '.join(notes)})" if notes else ""))
    h, w = out.images[0][0].shape[:2]
    print(f"{args.out}: {len(captions)} caption{'s' if len(captions) > 1 else ''} x {args.n} images, {w}x{h}")
    return 0
