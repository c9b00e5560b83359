"""``condsynth export RUN --out DIR``: what the method's pipeline loads, and nothing else."""

from __future__ import annotations

from condsynth.cli.options import add_overwrite


def add_parser(sub) -> None:
    e = sub.add_parser("export", help="write a small inference-only checkpoint from a training run")
    e.add_argument("checkpoint", help="checkpoint folder or run folder")
    e.add_argument("--out", required=True, help="output checkpoint folder")
    e.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    add_overwrite(e, "an existing --out folder")
    e.set_defaults(func=run_export)


def run_export(args) -> int:
    from condsynth.engine.checkpoint import export_for_inference

    out = export_for_inference(args.checkpoint, args.out, half=args.half, overwrite=args.overwrite)
    print(f"exported {out}")
    return 0
