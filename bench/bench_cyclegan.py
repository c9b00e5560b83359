"""CycleGAN learning check on this machine (not part of the test suite).

    python bench/bench_cyclegan.py [--minutes 12] [--out bench/out/cyclegan] [--threads 1]

Writes the scenes world at 64x64 as CycleGAN's unpaired layout (trainA: colour label maps of seed 0,
trainB: photos of seed 1, so no training label map has its photo; testA/testB: held-out label maps and
their own photos of seed 2), trains configs/cyclegan/scenes64.yaml for about ``--minutes`` (the step
count comes from timing a short calibration run, and the linear LR decay spans its second half), and
reports on the held-out pairs, all measured in this run:

- label -> photo (G_A) and photo -> label (G_B): L1 and SSIM to the counterpart, for the trained
  generators, the untrained ones (same seed, same architecture) and copying the input;
- photo -> label decoded to class ids by nearest palette colour: pixel accuracy and mIoU, beside the
  untrained G_B and a nearest-mean-colour pixel classifier fitted on the test pairs themselves (an
  optimistic baseline: it sees the held-out labels).

It writes ``grid.png`` (label | untrained G_A | G_A | photo | G_B | G_B decoded | cycle G_B(G_A(label)))
and ``report.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from condsynth import testing  # noqa: E402
from condsynth.data.synth import scenes  # noqa: E402
from condsynth.engine.checkpoint import load_for_inference  # noqa: E402
from condsynth.engine.config import load_experiment_config  # noqa: E402
from condsynth.engine.logging import make_grid  # noqa: E402
from condsynth.engine.trainer import train  # noqa: E402
from condsynth.io.images import save_image, tensor_to_uint8  # noqa: E402
from condsynth.metrics.image_quality import ssim  # noqa: E402
from condsynth.models.cyclegan import CycleGAN  # noqa: E402


def config(out: Path, data: Path, run: str, steps: int, threads: int, extra: tuple[str, ...] = ()):
    """configs/cyclegan/scenes64.yaml on ``data``: half the steps constant, half linear decay."""
    return load_experiment_config(ROOT / "configs/cyclegan/scenes64.yaml", [
        f"data.root={data}", f"train.out_dir={out / run}", f"train.steps={steps}",
        f"train.schedule.constant_steps={steps // 2}", f"train.schedule.decay_steps={steps - steps // 2}",
        f"train.checkpoint_every={max(steps // 4, 1)}", "train.progress=false", f"train.threads={threads}",
        *extra])


def train_or_load(cfg, out: Path, eval_only: bool):
    """(untrained method of the same seed, trained method, steps, seconds, checkpoint): a fresh run of
    ``cfg``, or with ``eval_only`` the finished one in ``out/run``."""
    torch.manual_seed(cfg.train.seed)
    untrained = CycleGAN(cfg.model, cfg.data)         # the trainer builds G_A, G_B from the same seed
    if eval_only:
        trained, steps, seconds, checkpoint = finished_run(out / "run")
        return untrained, trained, steps, seconds, checkpoint
    t0 = time.perf_counter()
    result = train(cfg, overwrite=True)
    seconds = time.perf_counter() - t0
    trained, _, _ = load_for_inference(result.last_checkpoint, use_ema=False)
    return untrained, trained, result.step, seconds, result.last_checkpoint


def pair_scores(pred: torch.Tensor, target: torch.Tensor) -> dict:
    l1 = (pred - target).abs().flatten(1).mean(1)
    s = ssim((pred + 1) / 2, (target + 1) / 2, data_range=1.0)
    return {"L1": round(float(l1.mean()), 4), "SSIM": round(float(s.mean()), 4)}


def to_ids(images: torch.Tensor) -> np.ndarray:
    """Colour label maps in [-1, 1] -> class ids by nearest palette colour."""
    return np.stack([scenes.rgb_to_labels(tensor_to_uint8(x)) for x in images])


def segmentation_scores(pred: np.ndarray, true: np.ndarray) -> dict:
    n = len(scenes.CLASSES)
    conf = np.bincount(true.ravel() * n + pred.ravel(), minlength=n * n).reshape(n, n)
    present = conf.sum(1) > 0
    iou = np.diag(conf) / np.maximum(conf.sum(0) + conf.sum(1) - np.diag(conf), 1)
    return {"pixel_acc": round(float(np.diag(conf).sum() / conf.sum()), 4),
            "mIoU": round(float(iou[present].mean()), 4)}


def nearest_mean_colour(photos: torch.Tensor, ids: np.ndarray) -> np.ndarray:
    pix = photos.permute(0, 2, 3, 1).reshape(-1, 3).numpy()
    flat = ids.ravel()
    means = np.stack([pix[flat == c].mean(0) if (flat == c).any() else np.full(3, np.inf)
                      for c in range(len(scenes.CLASSES))])
    return ((pix[:, None] - means[None]) ** 2).sum(-1).argmin(1).reshape(ids.shape)


@torch.no_grad()
def segmenter_scores(segmenter: str, images: torch.Tensor, ids: np.ndarray) -> dict:
    """The scenes segmenter on generated photos against the label maps they were made from."""
    from condsynth.metrics.segmentation import SegmentationScores
    from condsynth.pipelines import load_pipeline

    pipe = load_pipeline(segmenter, device="cpu")
    metric = SegmentationScores(len(scenes.CLASSES), class_names=scenes.CLASSES)
    for i in range(0, len(images), 25):
        metric.update(pipe.logits(images[i:i + 25]).cpu(), torch.from_numpy(ids[i:i + 25]).long())
    s = metric.compute()
    return {"pixel_acc": round(float(s["pixel_accuracy"]), 4), "class_acc": round(float(s["mean_class_accuracy"]), 4),
            "mIoU": round(float(s["miou"]), 4)}


@torch.no_grad()
def pix2pix_outputs(checkpoint: str, labels: torch.Tensor) -> torch.Tensor:
    """A paired pix2pix's outputs for ``labels`` (its input domain; dropout on at test time, seeded)."""
    from condsynth.pipelines import load_pipeline
    from condsynth.pipelines.base import seeded

    pipe = load_pipeline(checkpoint, device="cpu")
    with seeded(0, torch.device("cpu")):
        return torch.cat([pipe.method.translate(labels[i:i + 25]) for i in range(0, len(labels), 25)])


@torch.no_grad()
def held_out(method: CycleGAN, batch: dict) -> dict:
    method.prepare_for_inference()
    fake_b, fake_a = method.translate(batch["A"], "AtoB"), method.translate(batch["B"], "BtoA")
    return {"label_to_photo": pair_scores(fake_b, batch["B"]), "photo_to_label": pair_scores(fake_a, batch["A"]),
            "photo_to_label_ids": segmentation_scores(to_ids(fake_a), to_ids(batch["A"])),
            "_fake_b": fake_b, "_fake_a": fake_a, "_cycle": method.translate(fake_b, "BtoA")}


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=12.0, help="training budget (wall clock)")
    p.add_argument("--out", default="bench/out/cyclegan")
    p.add_argument("--n-train", type=int, default=600, help="images per domain")
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=0, help="a fixed step count instead of --minutes (no calibration)")
    p.add_argument("--eval-only", action="store_true",
                   help="score the finished run in --out (OUT/run) again instead of training (e.g. after a crash "
                        "in the scoring, or with a newer segmenter)")
    p.add_argument("--segmenter", default="segmenter-scenes", help="scores label -> photo outputs")
    p.add_argument("--pix2pix", default="pix2pix-scenes64",
                   help="a paired pix2pix on the same world, scored beside CycleGAN (default: the bundled one)")
    p.add_argument("--pix2pix-photo-to-label", metavar="RUN",
                   help="a paired pix2pix trained photo -> label (data.direction=BtoA), scored beside G_B")
    args = p.parse_args()
    out = Path(args.out)
    data = testing.unpaired_scenes(out / "scenes64-unpaired", args.n_train, args.n_test, size=64, seed=0)

    if args.eval_only:
        steps = max(args.steps, 1)                    # only builds the config: the run is on disk
    elif args.steps:
        steps = args.steps
    else:
        calib = 20                                    # time a short run, then size the real one
        t0 = time.perf_counter()
        train(config(out, data, "calibration", calib, args.threads), overwrite=True)
        per_step = (time.perf_counter() - t0) / calib
        steps = max(int(args.minutes * 60 / per_step), 2)
        print(f"{per_step:.3f} s/step (calibration) -> {steps} steps for {args.minutes} min", flush=True)
    cfg = config(out, data, "run", steps, args.threads)

    untrained, trained, steps_done, seconds, _ = train_or_load(cfg, out, args.eval_only)

    ds = trained.build_dataset("eval")                # testA/testB: counterparts by name
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    before, after = held_out(untrained, batch), held_out(trained, batch)
    true_ids = to_ids(batch["A"])
    copy = pair_scores(batch["A"], batch["B"])        # symmetric: the same for both directions
    report = {
        "steps": steps_done, "train_seconds": round(seconds, 1), "s_per_step": round(seconds / steps_done, 3),
        "batch_size": cfg.train.batch_size, "train_images_per_domain": args.n_train, "test_pairs": len(ds),
        "trained": {k: v for k, v in after.items() if not k.startswith("_")},
        "untrained": {k: v for k, v in before.items() if not k.startswith("_")},
        "copy_input": {"label_to_photo": copy, "photo_to_label": copy,
                       "photo_to_label_ids": segmentation_scores(to_ids(batch["B"]), true_ids)},
        "nearest_mean_colour_fitted_on_test": segmentation_scores(nearest_mean_colour(batch["B"], true_ids),
                                                                  true_ids),
        "grid": str(out / "grid.png"),
    }
    p2p = pix2pix_outputs(args.pix2pix, batch["A"])
    report["label_to_photo_segmenter"] = {
        "segmenter": args.segmenter, "protocol": "segmenter on the 64x64 outputs; truth = the label map's ids",
        "real photos (the scorer's ceiling)": segmenter_scores(args.segmenter, batch["B"], true_ids),
        "trained G_A": segmenter_scores(args.segmenter, after["_fake_b"], true_ids),
        "untrained G_A": segmenter_scores(args.segmenter, before["_fake_b"], true_ids),
        "copying the input": segmenter_scores(args.segmenter, batch["A"], true_ids),
        f"pix2pix ({args.pix2pix}, paired)": segmenter_scores(args.segmenter, p2p, true_ids)}
    report["label_to_photo_pix2pix"] = {"checkpoint": args.pix2pix, **pair_scores(p2p, batch["B"])}
    if args.pix2pix_photo_to_label:
        labels = pix2pix_outputs(args.pix2pix_photo_to_label, batch["B"])
        report["photo_to_label_pix2pix"] = {"checkpoint": args.pix2pix_photo_to_label,
                                            **segmentation_scores(to_ids(labels), true_ids)}
    decoded = torch.from_numpy(scenes.PALETTE[to_ids(after["_fake_a"])]).permute(0, 3, 1, 2).float() / 127.5 - 1
    grid = make_grid({"label": batch["A"], "untrained G_A": before["_fake_b"], "G_A": after["_fake_b"],
                      "photo": batch["B"], "G_B": after["_fake_a"], "G_B decoded": decoded,
                      "cycle": after["_cycle"]}, max_rows=8)
    return write_report(out, report, grid)


def write_report(out: Path, report: dict, grid) -> dict:
    """``grid.png`` and ``report.json`` in ``out``; the report printed as JSON."""
    save_image(out / "grid.png", grid)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


def finished_run(run: Path):
    """(method, steps, seconds, checkpoint folder) of a finished run on disk (``--eval-only``); the seconds
    span the first to the last log line (a resumed run's pause included)."""
    method, _, folder = load_for_inference(run, use_ema=False)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return method, max(r["step"] for r in log), log[-1]["time"] - log[0]["time"], folder


if __name__ == "__main__":
    main()
