"""``condsynth train CONFIG [section.key=value ...] [--resume]``"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a method from a YAML config",
                       description="Train a method. Overrides use dotted keys, e.g. train.steps=200 "
                                   "model.ngf=32. Launch with torchrun --nproc_per_node N for DDP.")
    p.add_argument("config", help="YAML config file (configs/<method>/*.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted overrides: section.key=value")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in train.out_dir (models, optimizers, "
                        "schedulers, EMA, RNG, data position, step)")
    p.add_argument("--overwrite", action="store_true",
                   help="start from step 0 in a train.out_dir that holds another run; that run is deleted "
                        "only once the new one has finished")
    p.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: accept config values that differ from the checkpoint's (they are listed)")
    p.set_defaults(func=run)


def run(args) -> int:
    from condsynth.engine.config import load_experiment_config
    from condsynth.engine.trainer import train

    cfg = load_experiment_config(args.config, args.overrides)
    result = train(cfg, resume=args.resume, allow_config_change=args.allow_config_change, overwrite=args.overwrite)
    if result.last_checkpoint is not None:
        print(f"trained {result.step} steps; checkpoint: {result.last_checkpoint}")
    return 0
