"""``condsynth paint IMAGE --strokes N --out painting.png``: paint a photo with brush strokes.

Uses the bundled pipelines (``painting-renderer`` for optimisation, ``painting`` for the agent)
unless ``--checkpoint`` names an export, run or checkpoint of a painting agent or renderer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from condsynth.cli.options import SEED, THREADS, add_overwrite, int_in
from condsynth.errors import UserError

IMAGE_OUT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "paint", help="paint an image with brush strokes (attention-aware neural painter)",
        description="Paint IMAGE with N quadratic Bezier brush strokes. Modes: 'agent' (the trained "
                    "actor, 5 strokes per step), 'optimize' (gradient descent through the neural "
                    "renderer, no agent), 'agent+optimize' (the agent's strokes, refined).")
    p.add_argument("image", help="input image (any format Pillow reads)")
    p.add_argument("--strokes", "-n", default="400", help="number of strokes (default 400)")
    p.add_argument("--out", "-o", default="painting.png", help="output canvas image (default painting.png)")
    p.add_argument("--mode", default=None, choices=["agent", "optimize", "agent+optimize"],
                   help="agent (default when the checkpoint has an actor: the RL painter, a few seconds), "
                        "optimize (gradient descent through the renderer, no actor; the default for a "
                        "renderer-only checkpoint), or agent+optimize")
    p.add_argument("--divide", type=int, default=1, metavar="D",
                   help="paint a (D*128)^2 canvas as D x D patches with smoothed seams (default 1)")
    p.add_argument("--size", default=None, metavar="PX",
                   help="long side of the painting in pixels, aspect ratio kept (default: the photo's own, "
                        "at most 1024); agents with the analytic renderer only")
    p.add_argument("--refine", default="0", metavar="N",
                   help="after the agent, N Adam steps per group of 20 strokes through the renderer (default 0)")
    p.add_argument("--detail", default="0.5", metavar="D",
                   help="0 to 1: how much the patch strokes follow the error weighted by the feature mask "
                        "(1) rather than being shared evenly (0); default 0.5")
    p.add_argument("--layout", default="pyramid", choices=["pyramid", "patches"],
                   help="agents with the analytic renderer: where the strokes go: pyramid (levels of ever "
                        "finer patches, default) or patches (a global pass, then one grid)")
    p.add_argument("--accept", default="improving", choices=["improving", "all"],
                   help="pyramid layout: draw only the agent's strokes that lower the error (default), or all")
    p.add_argument("--proposals", type=int, default=4, choices=[1, 2, 4],
                   help="pyramid layout: the actor proposes a bundle for each mirrored view of a patch "
                        "(1 = the view only) and the best one is painted (default 4)")
    p.add_argument("--checkpoint", default=None,
                   help="an export, run or checkpoint of a painting agent or renderer (default: the bundled "
                        "'painting-renderer' for --mode optimize, the bundled agent 'painting' otherwise)")
    p.add_argument("--animation", default=None, metavar="FILE", help="progress animation, .gif or .mp4")
    p.add_argument("--svg", default=None, metavar="FILE", help="write the strokes as SVG")
    p.add_argument("--json", dest="json_path", default=None, metavar="FILE",
                   help="write the stroke parameters as JSON")
    p.add_argument("--contact-sheet", default=None, metavar="FILE", help="a PNG grid of progress frames")
    p.add_argument("--record-every", type=int, default=5, help="strokes between animation frames")
    p.add_argument("--iters", type=int_in(None, 100_000), default=40, help="optimisation steps per stroke group")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--threads", type=THREADS, default=0, help="CPU threads (0: torch's default)")
    add_overwrite(p, "existing output files")
    p.set_defaults(func=run)


def _check_suffix(path: str | None, allowed, what: str) -> None:
    if path is not None and Path(path).suffix.lower() not in allowed:
        raise UserError(f"{path}: {what} must end in {', '.join(allowed)}")


OUTPUT_FLAGS = {"--out": "out", "--animation": "animation", "--svg": "svg", "--json": "json_path",
                "--contact-sheet": "contact_sheet"}


def _check_outputs(args: argparse.Namespace, checkpoint: str) -> None:
    """Each output file under the output policy: none is the photo or inside the checkpoint's
    folder, no two are the same file, an existing one only with --overwrite."""
    from condsynth.engine.checkpoint import checkpoint_inputs
    from condsynth.io.outputs import check_distinct, check_output
    outputs = {flag: getattr(args, name) for flag, name in OUTPUT_FLAGS.items()}
    check_distinct(outputs)
    inputs = [args.image, *checkpoint_inputs(checkpoint)]
    for path in outputs.values():
        if path is not None:
            check_output(path, inputs=inputs, overwrite=args.overwrite)


def _whole(value: str, flag: str, lo: int, hi: int) -> int:
    try:
        ok = float(value) == int(float(value))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or not lo <= int(float(value)) <= hi:
        raise UserError(f"{flag} must be a whole number from {lo} to {hi}, got {value!r}")
    return int(float(value))


def run(args: argparse.Namespace) -> int:
    from condsynth.pipelines.paint import check_strokes
    try:
        n = check_strokes(args.strokes)
    except UserError as exc:
        raise UserError(f"--strokes: {exc}") from None
    _check_suffix(args.out, IMAGE_OUT, "output image")
    _check_suffix(args.animation, (".gif", ".mp4"), "animation")
    _check_suffix(args.svg, (".svg",), "SVG output")
    _check_suffix(args.json_path, (".json",), "JSON output")
    _check_suffix(args.contact_sheet, (".png",), "contact sheet")
    if args.record_every < 1:
        raise UserError(f"--record-every must be at least 1, got {args.record_every}")
    if args.iters < 1:
        raise UserError(f"--iters must be at least 1, got {args.iters}")
    if not 1 <= args.divide <= 16:
        raise UserError(f"--divide must be from 1 to 16, got {args.divide}")
    if not Path(args.image).exists():
        raise UserError(f"{args.image}: file not found")
    from condsynth.pipelines.paint import MAX_SIDE
    size = _whole(args.size, "--size", 8, MAX_SIDE) if args.size is not None else None
    refine = _whole(args.refine, "--refine", 0, 10_000)
    try:
        detail = float(args.detail)
    except ValueError:
        detail = float("nan")
    if not 0.0 <= detail <= 1.0:
        raise UserError(f"--detail must be a number from 0 to 1, got {args.detail!r}")

    import torch

    from condsynth.pipelines.paint import PaintingPipeline, contact_sheet, default_checkpoint
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    painter = PaintingPipeline.from_pretrained(args.checkpoint or default_checkpoint(args.mode))
    _check_outputs(args, painter.source)
    if (size is not None or refine) and not painter.analytic:
        raise UserError(f"{painter.source}: --size and --refine need an agent with the analytic renderer")
    extra = {"size": size, "refine": refine, "detail": detail, "layout": args.layout, "accept": args.accept,
             "proposals": args.proposals} \
        if painter.analytic else {}
    result = painter.paint(args.image, n, mode=args.mode, divide=args.divide, record_every=args.record_every,
                           optimize_iters=args.iters, seed=args.seed, **extra)
    result.save(args.out, animation=args.animation, svg=args.svg, json_path=args.json_path)
    if args.contact_sheet:
        contact_sheet(result.frames, args.contact_sheet, columns=10, every=max(1, len(result.frames) // 40))
    h, w = result.canvas.shape[:2]
    print(f"{args.out}: {w}x{h}, {len(result.strokes)} strokes ({result.mode}), {result.seconds:.2f} s, "
          f"{len(result.strokes) / max(result.seconds, 1e-9):.0f} strokes/s, MSE to the resized target {result.mse:.5f}")
    return 0
