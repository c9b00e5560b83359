"""The painting agent's 400-stroke loop, today against the code before issue 17, side by side.

    git worktree add /tmp/before17 8175393^          # the tree before the speed work
    python bench/bench_paint_loop.py --before-src /tmp/before17/src [--rounds 4] [--out DIR]

Each contender paints matplotlib's grace_hopper.jpg (held out) with 400 strokes in agent mode at
128 px with the bundled agent of its own tree, in its own process (one thread): ``before`` (the
neural renderer, 128x128 squashed, one action per bundle), ``now-1`` (the analytic renderer, the
pyramid, the aspect ratio kept: 128x109, one proposal per patch step, the like-for-like loop) and
``now-4`` (today's default, four mirrored proposals per patch step). A process warms up, then
paints three times and reports its fastest; the contenders alternate round by round (order
reversed every other round), and a ratio is taken within a round (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from condsynth.io.atomic import atomic_write_text

CHILD = r"""
import json, os, sys, time, torch, matplotlib
torch.set_num_threads(1); torch.set_flush_denormal(True)
from condsynth.pipelines.paint import PaintingPipeline
gh = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
kw = json.loads(sys.argv[1])
pipe = PaintingPipeline.from_pretrained("painting")
pipe.paint(gh, 20, mode="agent", **kw)
cpu, wall = [], []
for _ in range(3):
    t, c = time.perf_counter(), time.process_time()
    r = pipe.paint(gh, 400, mode="agent", record_every=10_000, **kw)
    cpu.append(time.process_time() - c); wall.append(time.perf_counter() - t)
print(json.dumps({"cpu_s": min(cpu), "wall_s": min(wall), "mse": r.mse, "hw": list(r.canvas.shape[:2]),
                  "strokes": int(len(r.strokes))}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before-src", required=True, help="src/ of a checkout before issue 17 (8175393^)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", default="runs/bench-paint-loop")
    a = ap.parse_args(argv)
    here = str(Path(__file__).resolve().parents[1] / "src")
    contenders = {"before": (a.before_src, {}), "now-1": (here, {"proposals": 1, "size": 128}),
                  "now-4": (here, {"proposals": 4, "size": 128})}
    runs = {k: [] for k in contenders}
    for r in range(a.rounds):
        order = list(contenders) if r % 2 == 0 else list(contenders)[::-1]
        for name in order:
            src, kw = contenders[name]
            env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
            res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(kw)], env=env, capture_output=True,
                                 text=True, check=True)
            runs[name].append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {name:7s} {runs[name][-1]}", flush=True)
    report = {"rounds": a.rounds, "contenders": {}}
    for name, rs in runs.items():
        ratio = [b["cpu_s"] / x["cpu_s"] for b, x in zip(runs["before"], rs)]
        report["contenders"][name] = {
            "cpu_s_median": float(np.median([x["cpu_s"] for x in rs])),
            "wall_s_median": float(np.median([x["wall_s"] for x in rs])),
            "speedup_vs_before": float(np.median(ratio)), "speedup_range": [min(ratio), max(ratio)],
            "mse": rs[-1]["mse"], "hw": rs[-1]["hw"], "strokes": rs[-1]["strokes"]}
        c = report["contenders"][name]
        print(f"{name:7s} CPU {c['cpu_s_median']:.2f} s  wall {c['wall_s_median']:.2f} s  "
              f"{c['speedup_vs_before']:.2f}x before [{min(ratio):.2f}, {max(ratio):.2f}]  MSE {c['mse']:.4f} "
              f"at {c['hw'][1]}x{c['hw'][0]}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "paint_loop.json", json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
