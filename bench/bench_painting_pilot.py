"""Pilot check of a painting agent while it trains (plans/painting.md §5.2, step 3 gate).

Paints held-out 64x64 crops (matplotlib's grace_hopper.jpg and Minduka_Present_Blue_Pack.png,
in no training set) with the agent's newest checkpoint, 100 strokes each, and prints their mean
L2 beside a 10x10 block mosaic (100 flat tiles, the same budget of primitives). The gate: the
agent's L2 is below 2x the mosaic's and falling from one checkpoint to the next.

    python bench/bench_painting_pilot.py /work/runs/paint/greedy64 [--n 8] [--strokes 100]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from condsynth.io.images import read_image
from condsynth.metrics.painting import block_mosaic
from condsynth.models.painting.agent import paint_with_actor
from condsynth.pipelines.paint import PaintingPipeline


def held_out_crops(n: int, size: int = 64, seed: int = 123) -> torch.Tensor:
    import matplotlib
    d = Path(matplotlib.get_data_path()) / "sample_data"
    photos = [read_image(d / "grace_hopper.jpg"), read_image(d / "Minduka_Present_Blue_Pack.png")]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = photos[i % len(photos)]
        h, w = p.shape[:2]
        s = int(min(h, w) * rng.uniform(0.3, 0.7))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        from PIL import Image
        crop = Image.fromarray(np.ascontiguousarray(p[y:y + s, x:x + s, :3])).resize((size, size), Image.LANCZOS)
        out.append(torch.from_numpy(np.asarray(crop, np.float32) / 255).permute(2, 0, 1))
    return torch.stack(out)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--strokes", type=int, default=100)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    pipe = PaintingPipeline.from_pretrained(args.run)
    agent = pipe.agent
    s = agent.model_cfg.size
    crops = held_out_crops(args.n, s)
    t0 = time.perf_counter()
    canvas, _ = paint_with_actor(agent, crops, args.strokes)
    secs = time.perf_counter() - t0
    l2 = float((canvas - crops).pow(2).mean())
    mosaic = float(np.mean([np.mean((block_mosaic(c.permute(1, 2, 0).numpy(), 10) - c.permute(1, 2, 0).numpy()) ** 2)
                            for c in crops]))
    print(json.dumps({"checkpoint": str(pipe.source), "strokes": args.strokes, "agent_l2": round(l2, 5),
                      "mosaic10_l2": round(mosaic, 5), "ratio": round(l2 / mosaic, 3), "seconds": round(secs, 2)}))


if __name__ == "__main__":
    main()
