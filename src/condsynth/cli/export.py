"""``condsynth export RUN --out DIR``: what the method's pipeline loads, and nothing else.

The run's newest checkpoint (or the checkpoint named) is loaded into its method's pipeline, which
then writes a pipeline folder: ``pipeline.json`` and one ``config.json`` + ``model.safetensors``
per inference network and frozen part (e.g. the painting agent's actor, attention module and
renderer). ``condsynth paint/translate --checkpoint DIR`` and ``Pipeline.from_pretrained(DIR)``
load it."""

from __future__ import annotations

from condsynth.cli.options import add_overwrite


def add_parser(sub) -> None:
    e = sub.add_parser("export", help="write a small inference-only checkpoint from a training run")
    e.add_argument("checkpoint", help="checkpoint folder or run folder")
    e.add_argument("--out", required=True, help="output checkpoint folder")
    e.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    e.add_argument("--no-ema", action="store_true", help="export the raw weights even if EMA weights exist")
    e.add_argument("--part", default=None, metavar="NAME",
                   help="export only this part of the model (CycleGAN: AtoB or BtoA, one generator)")
    e.add_argument("--best-by", metavar="KEY",
                   help="export the run's checkpoint with the best logged value of KEY (e.g. "
                        "eval/damsm/r_precision; higher is better unless --lower-is-better) instead of the newest")
    e.add_argument("--lower-is-better", action="store_true", help="with --best-by: the lowest value wins")
    e.add_argument("--cluster-features", action="store_true",
                   help="pix2pixhd: first run K-means over the training set's instance features (the run's "
                        "data.root), so that the export can pick a cluster per class (translate --style)")
    add_overwrite(e, "an existing --out folder")
    e.set_defaults(func=run_export)


def run_export(args) -> int:
    from condsynth.engine.checkpoint import exported_networks
    from condsynth.pipelines import load_pipeline

    source = args.checkpoint
    if args.best_by:
        from condsynth.engine.checkpoint import best_checkpoint
        source, step, value = best_checkpoint(args.checkpoint, args.best_by, args.lower_is_better)
        print(f"best {args.best_by}: {value:.4g} at step {step} ({source})")
    pipe = load_pipeline(source, device="cpu", use_ema=not args.no_ema)
    if args.cluster_features:
        if not callable(getattr(pipe, "cluster_features", None)):
            from condsynth.errors import UserError
            raise UserError(f"{args.checkpoint}: a '{pipe.method.name}' model has no instance features to cluster")
        counts = pipe.cluster_features()
        print("feature clusters per class: " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none"))
    out = pipe.save_pretrained(args.out, half=args.half, overwrite=args.overwrite, part=args.part)
    nets = exported_networks(pipe.method, args.part)
    print(f"exported {', '.join(nets)} of {pipe.method.name} ({type(pipe).__name__}) to {out}")
    return 0
