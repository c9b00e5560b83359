"""Ablation: attention-aware agent vs the LearningToPaint baseline at equal stroke counts.

    python bench/bench_painting_ablation.py --agent A_DIR --baseline B_DIR [--n 24] [--out DIR]

Test images with exact foreground masks: the synthetic world's held-out split (a seed that no
training run used), plus CelebA-HQ / CUB test images when ``--celeba ROOT`` / ``--cub ROOT`` are
given. Each agent paints every image with 400 strokes (80 steps); at 50/100/200/400 strokes the
script records L2, foreground L2 (inside the mask), background L2 and their ratio, and the
stroke thickness over the episode (mean of parameters 7 and 9 per 10 strokes). Also reported:
the same for a random policy (uniform strokes), as a floor. Results: OUT/ablation.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from condsynth.data.synth.paint_targets import SyntheticPaintWorld
from condsynth.io.atomic import atomic_write_text
from condsynth.metrics import painting as M
from condsynth.models.painting.agent import paint_with_actor
from condsynth.models.painting.env import step_canvas
from condsynth.pipelines.paint import Painter

COUNTS = (50, 100, 200, 400)
TEST_SEED = 424242


def test_set(n: int, celeba=None, cub=None):
    items = [SyntheticPaintWorld(n, TEST_SEED, 128)[i] for i in range(n)]
    if celeba:
        from condsynth.data.painting import CelebAMaskHQ
        ds = CelebAMaskHQ(celeba, "test", 128)
        items += [ds[i] for i in range(min(n, len(ds)))]
    if cub:
        from condsynth.data.painting import CUBTargets
        ds = CUBTargets(cub, "test", 128)
        items += [ds[i] for i in range(min(n, len(ds)))]
    return items


def evaluate(name, paint_fn, items, n_strokes):
    rows = {c: [] for c in COUNTS}
    thick = []
    for it in items:
        img = it["image"][None]
        frames = []
        canvas, strokes = paint_fn(img, n_strokes, frames)
        tgt = it["image"].permute(1, 2, 0).numpy()
        mask = it["mask"][0].numpy()
        for c, e in M.errors_at_counts(frames, tgt, COUNTS, mask).items():
            rows[c].append(e)
        thick.append(M.thickness_profile(strokes[0].numpy(), 10)["mean_z"])
    out = {}
    for c, es in rows.items():
        if es:
            out[c] = {k: float(np.nanmean([e[k] for e in es])) for k in ("l2", "fg_l2", "bg_l2", "fg_bg_ratio")}
    prof = np.mean(np.array(thick), 0)
    res = {"by_strokes": out, "thickness_per_10": prof.tolist(),
           "thickness_first_half": float(prof[:len(prof) // 2].mean()),
           "thickness_second_half": float(prof[len(prof) // 2:].mean())}
    print(f"\n{name}")
    for c, v in out.items():
        print(f"  {c:4d} strokes: L2 {v['l2']:.5f}  fg {v['fg_l2']:.5f}  bg {v['bg_l2']:.5f}  fg/bg {v['fg_bg_ratio']:.3f}")
    print(f"  thickness z, first/second half: {res['thickness_first_half']:.3f} / {res['thickness_second_half']:.3f}")
    return res


def agent_fn(painter: Painter):
    def fn(img, n, frames):
        def cb(k, canvas, _a):
            frames.append((k, canvas[0].permute(1, 2, 0).numpy().copy()))
        return paint_with_actor(painter.agent, img, n, callback=cb)
    return fn


def random_fn(renderer, seed=0):
    g = torch.Generator().manual_seed(seed)

    def fn(img, n, frames):
        canvas = torch.zeros_like(img)
        strokes = torch.rand(1, n, 13, generator=g)
        with torch.no_grad():
            for k in range(0, n, 5):
                canvas = step_canvas(renderer, canvas, strokes[:, k:k + 5].reshape(1, -1), 5)[0]
                frames.append((k + 5, canvas[0].permute(1, 2, 0).numpy().copy()))
        return canvas, strokes
    return fn


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", default=None, help="attention-aware agent (default: bundled)")
    ap.add_argument("--baseline", required=True, help="LearningToPaint-baseline agent checkpoint")
    ap.add_argument("--n", type=int, default=24, help="synthetic test images")
    ap.add_argument("--strokes", type=int, default=400)
    ap.add_argument("--celeba", default=None)
    ap.add_argument("--cub", default=None)
    ap.add_argument("--out", default="runs/bench-painting-ablation")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)      # as every condsynth command does (engine TrainConfig.flush_denormal)
    items = test_set(a.n, a.celeba, a.cub)
    ours = Painter.from_pretrained(a.agent)
    base = Painter.from_pretrained(a.baseline)
    res = {"n_images": len(items), "strokes": a.strokes, "test_seed": TEST_SEED,
           "agent": ours.source, "baseline": base.source}
    with torch.no_grad():
        res["attention_aware"] = evaluate("attention-aware agent", agent_fn(ours), items, a.strokes)
        res["ltp_baseline"] = evaluate("LearningToPaint baseline", agent_fn(base), items, a.strokes)
        res["random_policy"] = evaluate("random strokes", random_fn(ours.renderer), items, a.strokes)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "ablation.json", json.dumps(res, indent=1))
    print(f"wrote {out / 'ablation.json'}")


if __name__ == "__main__":
    main()
