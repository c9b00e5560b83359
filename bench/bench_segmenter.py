"""The scenes segmenter's own held-out scores on real renders, beside the baselines, as JSON.

    python bench/bench_segmenter.py [--checkpoint segmenter-scenes] [--n 200] [--n-wide 100] [--n-hd 50]
                                    [--card src/condsynth/assets/segmenter-scenes/held_out.json]

Test scenes come from seeds the training data never used (plans/translation-family.md §3.4):
64x64 from seed 1, 64x128 and 128x256 from seed 3 (training used seed 0 at 64x64 and seed 2 at
64x128; one seed gives the same layout at every size, so the seeds, not only the sizes, differ).
Baselines, measured here on the same test scenes, with statistics from training-seed renders
(--n-prior of them, seed 0 for square sizes and seed 2 for 2:1):

* all-sky: every pixel "sky";
* class prior: the most frequent training class at each pixel position (ignores the photo);
* nearest mean colour: each pixel gets the class whose mean training-photo colour is nearest.

Scores: pixel accuracy, mean class accuracy, mIoU (metrics/segmentation.py; classes absent from
truth and prediction left out of the means). ``--card`` also writes the segmenter's numbers where
``condsynth eval segmentation`` reads them (an export's held_out.json).
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

from condsynth.data.synth import scenes  # noqa: E402
from condsynth.io.atomic import atomic_write_text  # noqa: E402
from condsynth.io.checkpoint import resolve_checkpoint, sha256_file  # noqa: E402
from condsynth.metrics.segmentation import SegmentationScores  # noqa: E402
from condsynth.pipelines.segment import SegmentationPipeline  # noqa: E402

K = len(scenes.CLASSES)
KEYS = ("miou", "mean_class_accuracy", "pixel_accuracy")


def renders(seed: int, n: int, size) -> list:
    return [scenes.render_scene(scenes.scene_seed(seed, i), size) for i in range(n)]


def score(preds, truths) -> dict:
    m = SegmentationScores(K, class_names=scenes.CLASSES)
    for p, t in zip(preds, truths):
        m.update(torch.from_numpy(np.asarray(p, np.int64))[None], torch.from_numpy(t.astype(np.int64))[None])
    out = m.compute()
    return {k: round(float(out[k]), 4) for k in KEYS} | {"iou": {n: round(v, 4) for n, v in
                                                               zip(scenes.CLASSES, m.per_class()["iou"])}}


def baselines(train, test) -> dict:
    counts = np.zeros((K, *train[0].labels.shape), np.int64)
    colour_sum, colour_n = np.zeros((K, 3)), np.zeros(K)
    for s in train:
        for k in range(K):
            mask = s.labels == k
            counts[k] += mask
            colour_sum[k] += s.photo[mask].sum(0)
            colour_n[k] += mask.sum()
    prior = counts.argmax(0)
    means = colour_sum / np.maximum(colour_n, 1)[:, None]
    means[colour_n == 0] = np.inf                    # a class never seen is never chosen

    def nearest(photo):
        d = ((photo[..., None, :].astype(np.float64) - means) ** 2).sum(-1)
        return d.argmin(-1)

    truths = [s.labels for s in test]
    return {"all_sky": score([np.zeros_like(t) for t in truths], truths),
            "class_prior": score([prior] * len(test), truths),
            "nearest_mean_colour": score([nearest(s.photo) for s in test], truths)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="segmenter-scenes")
    ap.add_argument("--n", type=int, default=200, help="64x64 test scenes (seed 1)")
    ap.add_argument("--n-wide", type=int, default=100, help="64x128 test scenes (seed 3)")
    ap.add_argument("--n-hd", type=int, default=50, help="128x256 test scenes (seed 3)")
    ap.add_argument("--n-prior", type=int, default=600, help="training-seed renders for the baselines' statistics")
    ap.add_argument("--card", type=Path, default=None, help="also write the segmenter's scores here (held_out.json)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pipe = SegmentationPipeline.from_pretrained(args.checkpoint, device="cpu")
    folder = resolve_checkpoint(args.checkpoint)
    weights = folder / "net" / "model.safetensors"
    weights = weights if weights.is_file() else folder / "model.safetensors"
    result = {"checkpoint": str(args.checkpoint), "sha256": sha256_file(weights), "sizes": {}}
    for name, n, size, test_seed, train_seed in (("64x64", args.n, 64, 1, 0), ("64x128", args.n_wide, (64, 128), 3, 2),
                                                 ("128x256", args.n_hd, (128, 256), 3, 2)):
        if n <= 0:
            continue
        test = renders(test_seed, n, size)
        t0 = time.perf_counter()
        preds = [pipe(s.photo).labels for s in test]
        dt = time.perf_counter() - t0
        row = {"n": n, "test_seed": test_seed, "segmenter": score(preds, [s.labels for s in test]),
               "segmenter_images_per_s": round(n / dt, 1),
               **baselines(renders(train_seed, args.n_prior, size), test)}
        result["sizes"][name] = row
    print(json.dumps(result, indent=1))
    if args.card:
        card = {"source": "bench/bench_segmenter.py: real renders of seeds never trained on (1 at 64x64, 3 at 2:1)",
                **{k: result["sizes"]["64x64"]["segmenter"][k] for k in KEYS},
                "by_size": {s: {k: r["segmenter"][k] for k in KEYS} for s, r in result["sizes"].items()},
                "baselines_64x64": {b: {k: result["sizes"]["64x64"][b][k] for k in KEYS}
                                    for b in ("all_sky", "class_prior", "nearest_mean_colour")}}
        atomic_write_text(args.card, json.dumps(card, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
