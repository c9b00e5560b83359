"""Painting benchmark: renderer accuracy, speed, and paintings of held-out photos vs a mosaic.

    python bench/bench_painting.py [--agent DIR] [--renderer DIR] [--out runs/bench-painting]

1. Renderer: MSE against the CPU rasteriser on 2,048 held-out random strokes (seed 1; training
   used seed 0), for the weights as shipped.
   ``--renderers-only``: forward and forward+backward strokes/s of the analytic renderer at 64^2
   and 128^2 beside the neural renderer (128^2), 80 strokes per batch; ``analytic_S`` evaluates
   each capsule piece in its own window per stroke (``crop: pieces``, the default),
   ``analytic_S_hull`` on the box around all strokes (``crop: hull``, the version before).
2. Speed (one thread): strokes per second of the CPU rasteriser and of the neural renderer
   (alpha maps for 400 strokes), and of painting 400 strokes at 128x128 with the agent (actor +
   renderer + compositing), measured in the same run.
3. Photos that were in no training set: matplotlib's grace_hopper.jpg and scikit-learn's
   china.jpg / flower.jpg (when scikit-learn is installed). Each is painted with 400 strokes at
   128x128 in every mode (agent, optimize, agent+optimize); the MSE to the 128x128 target is
   compared with a 20x20 mosaic of the target's block means (400 flat tiles: the same budget of
   primitives). Paintings, animations and contact sheets go to --out; numbers to results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from condsynth.data.strokes import StrokeDataset
from condsynth.data.synth.strokes import paint_strokes_cpu, rasterize_strokes
from condsynth.io.atomic import atomic_write_text
from condsynth.io.images import save_image
from condsynth.metrics import painting as M
from condsynth.pipelines.paint import Painter, contact_sheet, default_checkpoint

PHOTOS = {}


def held_out_photos() -> dict:
    import matplotlib
    out = {"grace_hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"}
    try:
        import sklearn.datasets
        d = Path(sklearn.datasets.__file__).parent / "images"
        out["china"] = d / "china.jpg"
        out["flower"] = d / "flower.jpg"
    except ImportError:
        print("scikit-learn not installed: only grace_hopper.jpg")
    return out


def renderer_mse(renderer, n: int = 2048, seed: int = 1) -> float:
    ds = StrokeDataset(n, seed, renderer.cfg.size, renderer.cfg.relative_p1)
    errs = []
    with torch.no_grad():
        for a in range(0, n, 256):
            items = [ds[i] for i in range(a, min(n, a + 256))]
            p = torch.stack([x[0] for x in items])
            t = torch.stack([x[1] for x in items])
            errs.append(((renderer(p) - t) ** 2).mean(dim=(1, 2)))
    return float(torch.cat(errs).mean())


def renderer_speed(neural=None, sizes=(64, 128), n: int = 80, repeats: int = 3) -> dict:
    """Forward and forward+backward strokes/s of the analytic renderer (soft capsule chain) at
    each size, and of a neural renderer at its own size, for a batch of ``n`` random strokes
    (the greedy trainer's 16 canvases x 5 strokes); the best of ``repeats`` runs."""
    from condsynth.models.painting.analytic_renderer import AnalyticRenderer

    p = torch.from_numpy(np.random.default_rng(0).random((n, 10)).astype(np.float32))
    nets = {f"analytic_{s}{tag}": (AnalyticRenderer(size=s, crop=crop), s)
            for s in sizes for tag, crop in (("", "pieces"), ("_hull", "hull"))}
    if neural is not None:
        nets[f"neural_{neural.cfg.size}"] = (neural, neural.cfg.size)
    out = {}
    for name, (net, _) in nets.items():
        with torch.no_grad():
            net(p[:4])
            fwd = min(_timed(lambda: net(p)) for _ in range(repeats))

        def fb():
            q = p.clone().requires_grad_(True)
            net(q).sum().backward()
        fb()
        both = min(_timed(fb) for _ in range(repeats))
        out[name] = {"forward_strokes_per_s": n / fwd, "forward_backward_strokes_per_s": n / both}
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def speed(painter: Painter, target_path) -> dict:
    rng = np.random.default_rng(0)
    strokes = rng.random((400, 13)).astype(np.float32)
    t = time.perf_counter()
    rasterize_strokes(strokes[:200, :10])
    rast = 200 / (time.perf_counter() - t)
    out = {"rasteriser_strokes_per_s": rast}
    # the renderer with subnormal floats computed (torch's default) and flushed to zero (what every
    # condsynth command does); the rest of the benchmark runs flushed
    for flush, key in ((False, "neural_renderer_strokes_per_s_subnormals"), (True, "neural_renderer_strokes_per_s")):
        torch.set_flush_denormal(flush)
        with torch.no_grad():
            painter.renderer(torch.from_numpy(strokes[:8, :10]))          # warm-up
            t = time.perf_counter()
            painter.renderer(torch.from_numpy(strokes[:, :10]))
            out[key] = 400 / (time.perf_counter() - t)
    if painter.agent is not None:
        painter.paint(target_path, 20, mode="agent")                     # warm-up
        t, c = time.perf_counter(), time.process_time()
        painter.paint(target_path, 400, mode="agent", record_every=10_000)
        secs, cpu = time.perf_counter() - t, time.process_time() - c
        out.update({"agent_paint_400_seconds": secs, "agent_paint_400_cpu_seconds": cpu,
                    "agent_strokes_per_s": 400 / secs})
        # the same 400 strokes composited by the CPU rasteriser (a non-differentiable painter)
        res = painter.paint(target_path, 400, mode="agent", record_every=10_000)
        t = time.perf_counter()
        paint_strokes_cpu(res.strokes)
        secs = time.perf_counter() - t
        out.update({"rasteriser_composite_400_seconds": secs})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", default=None, help="agent checkpoint (default: bundled)")
    ap.add_argument("--out", default="runs/bench-painting")
    ap.add_argument("--strokes", type=int, default=400)
    ap.add_argument("--modes", default="agent,optimize,agent+optimize")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=30, help="optimisation steps per group of 20 strokes")
    ap.add_argument("--photos", default="grace_hopper,china,flower")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--renderers-only", action="store_true",
                    help="only the analytic vs neural renderer speeds (strokes/s at 64^2 and 128^2)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    if a.renderers_only:
        neural = Painter.from_pretrained(default_checkpoint("optimize")).renderer
        res = renderer_speed(neural)
        for k, v in res.items():
            print(f"{k:19s} forward {v['forward_strokes_per_s']:7.0f} strokes/s   "
                  f"forward+backward {v['forward_backward_strokes_per_s']:7.0f} strokes/s")
        Path(a.out).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(a.out) / "renderer_speed.json", json.dumps(res, indent=1))
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # the bundled defaults: the agent with its own renderer, the best renderer for optimisation
    painter = Painter.from_pretrained(a.agent or default_checkpoint("agent"))
    fitter = Painter.from_pretrained(a.agent or default_checkpoint("optimize"))
    res = {"agent": painter.source, "optimize": fitter.source, "threads": a.threads, "strokes": a.strokes,
           "optimize_iters": a.iters}
    res["renderer_heldout_mse"] = renderer_mse(fitter.renderer)
    res["agent_renderer_heldout_mse"] = renderer_mse(painter.renderer)
    print(f"renderer held-out MSE (2048 strokes): {res['renderer_heldout_mse']:.6f} (optimize), "
          f"{res['agent_renderer_heldout_mse']:.6f} (the agent's)")
    photos = held_out_photos()
    if not a.skip_speed:
        res["speed"] = speed(painter, photos["grace_hopper"])
        print("speed:", json.dumps(res["speed"]))
    res["photos"] = {}
    for name, path in photos.items():
        if name not in a.photos.split(","):
            continue
        row = {}
        for mode in a.modes.split(","):
            cpu = time.process_time()
            r = (fitter if mode == "optimize" else painter).paint(path, a.strokes, mode=mode, record_every=5,
                                                                  optimize_iters=a.iters)
            cpu = time.process_time() - cpu
            tag = mode.replace("+", "_")
            r.save(out / f"{name}_{tag}.png", animation=out / f"{name}_{tag}.gif")
            contact_sheet(r.frames, out / f"{name}_{tag}_sheet.png", columns=10,
                          every=max(1, len(r.frames) // 20))
            errs = M.errors_at_counts(r.frames, r.target, M.STROKE_COUNTS)
            row[mode] = {"mse": r.mse, "seconds": r.seconds, "cpu_seconds": cpu,
                         "l2_at": {k: v["l2"] for k, v in errs.items()},
                         "thickness": M.thickness_profile(r.strokes, 40)["mean_z"]}
            print(f"{name:13s} {mode:15s} MSE {r.mse:.5f}  ({r.seconds:.1f} s)")
        mos = M.block_mosaic(r.target, 20)
        row["mosaic_20x20_mse"] = M.image_errors(mos, r.target)["l2"]
        save_image(out / f"{name}_target.png", (r.target * 255 + 0.5).astype(np.uint8))
        save_image(out / f"{name}_mosaic.png", (np.clip(mos, 0, 1) * 255 + 0.5).astype(np.uint8))
        print(f"{name:13s} mosaic 20x20     MSE {row['mosaic_20x20_mse']:.5f}")
        res["photos"][name] = row
    atomic_write_text(out / "results.json", json.dumps(res, indent=1))
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
