"""``condsynth translate --checkpoint CKPT INPUT... --out DIR``."""

from __future__ import annotations

from condsynth.cli.options import SEED, add_overwrite


def add_parser(sub) -> None:
    p = sub.add_parser("translate", help="run an image-translation checkpoint (pix2pix, cyclegan, ...) on images",
                       description="Translate images or folders of images of any size: each is padded "
                                   "to the network's stride, translated and cropped back.")
    p.add_argument("inputs", nargs="+", help="image files or folders")
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint folder, run folder (newest checkpoint) or bundled name")
    p.add_argument("--out", required=True, help="output folder (other files in it are kept)")
    add_overwrite(p, "existing output images of the same names")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even if EMA weights exist")
    p.add_argument("--seed", type=SEED, default=0, help="seed for the generator's dropout noise")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                   help="which way a two-way model (cyclegan) translates: AtoB (default) or BtoA; "
                        "one-way models (pix2pix) take AtoB only")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help="translate layer by layer on N x N tiles: the same output as the whole image with less "
                        "memory (for models that support it)")
    p.set_defaults(func=run_translate)


def run_translate(args) -> int:
    from condsynth.engine.checkpoint import checkpoint_inputs
    from condsynth.pipelines.translate import TranslationPipeline, collect_inputs

    files = collect_inputs(args.inputs)
    pipe = TranslationPipeline.from_pretrained(args.checkpoint, device=args.device, use_ema=not args.no_ema)
    written = pipe.translate_files(files, args.out, seed=args.seed, overwrite=args.overwrite,
                                   inputs=checkpoint_inputs(args.checkpoint), direction=args.direction, tile=args.tile)
    print(f"wrote {len(written)} image(s) to {args.out}")
    return 0
