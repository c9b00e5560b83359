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
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default=None,
                   help="which way a two-way model (cyclegan) translates: AtoB (default) or BtoA; "
                        "one-way models (pix2pix) take AtoB only; an export of one direction "
                        "(export --part) translates that way by default")
    p.add_argument("--instances", metavar="DIR",
                   help="label-map models (pix2pixhd): folder of instance maps (16-bit ids), matched by name")
    p.add_argument("--style", action="append", default=[], metavar="CLASS=K",
                   help="pix2pixhd: feature cluster K for a class (name or id), e.g. building=3; repeatable; "
                        "other classes get a random cluster (--seed)")
    p.add_argument("--style-from", metavar="PHOTO",
                   help="pix2pixhd: encode the features from this photo of the same label map (or a folder of "
                        "photos matched by name)")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help="translate layer by layer on N x N tiles: the same output as the whole image with less "
                        "memory (for models that support it)")
    p.set_defaults(func=run_translate)


def run_translate(args) -> int:
    from condsynth.engine.checkpoint import checkpoint_inputs
    from condsynth.pipelines.translate import TranslationPipeline, collect_inputs

    from condsynth.errors import UserError
    from condsynth.pipelines import load_pipeline
    from condsynth.pipelines.label_translate import LabelTranslationPipeline, parse_style

    files = collect_inputs(args.inputs)
    pipe = load_pipeline(args.checkpoint, device=args.device, use_ema=not args.no_ema)
    if not isinstance(pipe, TranslationPipeline):
        raise UserError(f"{args.checkpoint}: a '{pipe.method.name}' model is not an image-translation model")
    label_options = [f for f, v in (("--instances", args.instances), ("--style", args.style),
                                    ("--style-from", args.style_from)) if v]
    kwargs = {}
    if isinstance(pipe, LabelTranslationPipeline):
        kwargs = dict(instances=args.instances, style=parse_style(args.style), style_from=args.style_from)
    elif label_options:
        raise UserError(f"{args.checkpoint}: {label_options[0]} is for label-map models (pix2pixhd); "
                        f"a '{pipe.method.name}' model translates images")
    written = pipe.translate_files(files, args.out, seed=args.seed, overwrite=args.overwrite,
                                   inputs=checkpoint_inputs(args.checkpoint), direction=args.direction, tile=args.tile, **kwargs)
    print(f"wrote {len(written)} image(s) to {args.out}")
    return 0
