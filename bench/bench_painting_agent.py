"""The painting agent with the analytic renderer on photos that no training set contains.

    python bench/bench_painting_agent.py CHECKPOINT [--out DIR] [--refine 10] [--iters 30] [--tune]

1. Held-out photos: matplotlib's grace_hopper.jpg, and scikit-learn's china.jpg and flower.jpg
   (scikit-learn is in the dev extra; without it those two are skipped). Each is painted with 400 strokes at 128 px on the long side (aspect ratio
   kept) by the agent, the agent + ``--refine`` Adam steps per group of 20, and ``optimize``
   (``--iters`` steps per group) through the same renderer; MSE to the same target and seconds,
   beside a 20x20 mosaic of block means (400 flat tiles, the same budget of primitives).
   ``agent`` is the default (4 proposals per patch step), ``agent-1`` the single-proposal actor.
   ``--tune``: five of scikit-image's photos instead (astronaut, coffee, chelsea, rocket, camera;
   the training set's photos), where the pyramid's defaults were chosen; the held-out photos are
   for the final numbers only.
2. Speed: 400 agent strokes at 128 and at 512 px on the long side, strokes per second.
Paintings, animations and contact sheets go to --out, the numbers to results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from condsynth.io.atomic import atomic_write_text
from condsynth.io.images import save_image
from condsynth.metrics import painting as M
from condsynth.pipelines.paint import PaintingPipeline, contact_sheet


def held_out_photos() -> dict:
    import matplotlib
    out = {"grace_hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"}
    for name in ("china", "flower"):
        hits = [Path(p) / "sklearn" / "datasets" / "images" / f"{name}.jpg" for p in sys.path if p]
        hits = [h for h in hits if h.is_file()]
        if hits:
            out[name] = hits[0]
        else:
            print(f"{name}.jpg (scikit-learn) is not on this machine: skipped")
    return out


def tuning_photos(folder: Path) -> dict:
    """Five of scikit-image's photos, written as PNG files (the pipeline reads files)."""
    import skimage.data
    out = {}
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera"):
        im = getattr(skimage.data, name)()
        im = np.stack([im] * 3, -1) if im.ndim == 2 else im
        out[name] = folder / f"tune_{name}.png"
        save_image(out[name], im)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default="runs/bench-painting-agent")
    ap.add_argument("--strokes", type=int, default=400)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--refine", type=int, default=10)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--modes", default="agent,agent+refine,optimize")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tune", action="store_true", help="the tuning photos (scikit-image), not the held-out ones")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = PaintingPipeline.from_pretrained(a.checkpoint)
    res = {"checkpoint": str(pipe.source), "strokes": a.strokes, "size": a.size, "refine": a.refine,
           "iters": a.iters, "photos": {}}
    photos = tuning_photos(out) if a.tune else held_out_photos()
    for name, path in photos.items():
        row = {}
        for mode in a.modes.split(","):
            kw = {"agent": dict(mode="agent"), "agent-1": dict(mode="agent", proposals=1),
                  "agent+refine": dict(mode="agent", refine=a.refine),
                  "optimize": dict(mode="optimize", optimize_iters=a.iters)}[mode]
            c = time.process_time()
            r = pipe.paint(path, a.strokes, size=a.size, record_every=5, **kw)
            c = time.process_time() - c
            tag = mode.replace("+", "_")
            r.save(out / f"{name}_{tag}.png", animation=out / f"{name}_{tag}.gif")
            contact_sheet(r.frames, out / f"{name}_{tag}_sheet.png", columns=10, every=max(1, len(r.frames) // 20))
            row[mode] = {"mse": r.mse, "seconds": r.seconds, "cpu_seconds": c,
                         "thickness": M.thickness_profile(r.strokes, 40, max(r.canvas.shape))["mean_z"]}
            print(f"{name:13s} {mode:13s} MSE {r.mse:.5f}  ({r.seconds:.1f} s, {c:.1f} s CPU)", flush=True)
        mos = M.block_mosaic(r.target, 20)
        row["mosaic_20x20_mse"] = M.image_errors(mos, r.target)["l2"]
        save_image(out / f"{name}_target.png", (r.target * 255 + 0.5).astype(np.uint8))
        print(f"{name:13s} mosaic 20x20  MSE {row['mosaic_20x20_mse']:.5f}", flush=True)
        res["photos"][name] = row
    if a.tune:
        atomic_write_text(out / "results.json", json.dumps(res, indent=1))
        return
    gh = photos["grace_hopper"]
    res["speed"] = {}
    for proposals in (4, 1):
        for size in (128, 512):
            pipe.paint(gh, 20, mode="agent", size=size, proposals=proposals)          # warm-up
            t, c = time.perf_counter(), time.process_time()
            r = pipe.paint(gh, 400, mode="agent", size=size, record_every=10_000, proposals=proposals)
            secs, cpu = time.perf_counter() - t, time.process_time() - c
            res["speed"][f"{size}_proposals{proposals}"] = {"hw": list(r.canvas.shape[:2]), "seconds": secs,
                                                            "cpu_seconds": cpu, "strokes_per_s": 400 / secs}
            print(f"speed: 400 strokes, {proposals} proposals, at {r.canvas.shape[1]}x{r.canvas.shape[0]}: "
                  f"{secs:.2f} s ({cpu:.2f} s CPU), {400 / secs:.0f} strokes/s", flush=True)
    atomic_write_text(out / "results.json", json.dumps(res, indent=1))
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
