"""CycleGAN summer <-> winter on the scenes world (not part of the test suite).

    python bench/bench_cyclegan_winter.py [--steps 1500] [--out bench/out/cyclegan-winter] [--threads 1]

The world's ``winter`` style changes the whole image (snow on grass, crowns and bushes, a grey sky)
while keeping the scene, so every held-out photo has its exact winter counterpart. trainA: summer
photos of seed 0, trainB: winter photos of seed 1 (disjoint scenes: nothing is paired), testA/testB:
seed 2, counterparts by name (``condsynth data synth scenes --unpaired summer-winter``). Trains
configs/cyclegan/scenes64.yaml (both sides photos: bicubic resize on both) and reports L1 and SSIM to
the exact counterpart in both directions for the trained generators, the untrained ones (same seed)
and copying the input (the strong baseline of a style change), all measured in this run. Writes
``grid.png`` (summer | G_A | true winter | winter | G_B | true summer) and ``report.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_cyclegan import config, pair_scores, train_or_load, write_report  # noqa: E402

from condsynth.data.synth import scenes  # noqa: E402
from condsynth.engine.logging import make_grid  # noqa: E402
from condsynth.models.cyclegan import CycleGAN  # noqa: E402


@torch.no_grad()
def scores(method: CycleGAN, batch: dict) -> dict:
    method.prepare_for_inference()
    fake_b, fake_a = method.translate(batch["A"], "AtoB"), method.translate(batch["B"], "BtoA")
    return {"summer_to_winter": pair_scores(fake_b, batch["B"]), "winter_to_summer": pair_scores(fake_a, batch["A"]),
            "_fake_b": fake_b, "_fake_a": fake_a}


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--out", default="bench/out/cyclegan-winter")
    p.add_argument("--n-train", type=int, default=600, help="images per domain")
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-only", action="store_true", help="score the finished run in OUT/run instead of training")
    args = p.parse_args()
    out = Path(args.out)
    data = out / "scenes64-summer-winter"
    if not (data / "meta.json").is_file():
        scenes.write_unpaired(data, "summer-winter", args.n_train, args.n_test, size=64, seed=0)
    steps = args.steps
    cfg = config(out, data, "run", steps, args.threads, extra=("data.interp_a=bicubic",))   # both sides photos
    untrained, trained, steps_done, seconds, checkpoint = train_or_load(cfg, out, args.eval_only)
    ds = trained.build_dataset("eval")                # testA/testB: exact counterparts by name
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    before, after = scores(untrained, batch), scores(trained, batch)
    copy = pair_scores(batch["A"], batch["B"])
    report = {"steps": steps_done, "train_seconds": round(seconds, 1), "s_per_step": round(seconds / steps_done, 3),
              "batch_size": cfg.train.batch_size, "train_images_per_domain": args.n_train, "test_pairs": len(ds),
              "trained": {k: v for k, v in after.items() if not k.startswith("_")},
              "untrained": {k: v for k, v in before.items() if not k.startswith("_")},
              "copy_input": {"summer_to_winter": copy, "winter_to_summer": copy},
              "checkpoint": str(checkpoint), "grid": str(out / "grid.png")}
    grid = make_grid({"summer": batch["A"], "G_A": after["_fake_b"], "true winter": batch["B"],
                      "winter": batch["B"], "G_B": after["_fake_a"], "true summer": batch["A"]}, max_rows=8)
    return write_report(out, report, grid)


if __name__ == "__main__":
    main()
