"""Can the painting agent overfit ONE target? (issue #9: budget or a bug in the actor's input/loss)

Train the greedy agent on a single fixed 64x64 image (16 copies in a folder, no flips), e.g.

    condsynth train configs/painting/agent_greedy64.yaml "data.sources=[folder]" data.root=DIR \\
        data.flip=false train.out_dir=RUN train.steps=600 train.checkpoint_every=100 train.threads=1

then, for each checkpoint of RUN (or the run's newest):

    python bench/bench_painting_overfit.py RUN IMAGE [--other IMAGE2]

prints the agent's L2 to the target at 20/50/100 strokes beside a 10x10 block mosaic; how much the
strokes depend on the input (mean |difference| of the 10 shape parameters when painting the target
and another image, against their spread across the strokes); and, at the blank canvas, the gradient
of the soft-rendered L2 w.r.t. the first bundle's stroke positions (x0..y2) and whether a small
step along it lowers the exact (hard) L2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from condsynth.io.images import read_image
from condsynth.metrics.painting import block_mosaic
from condsynth.models.painting.agent import paint_with_actor
from condsynth.models.painting.analytic_renderer import paint_hard
from condsynth.pipelines.paint import PaintingPipeline


def _image(path, size):
    from PIL import Image
    im = Image.fromarray(np.ascontiguousarray(read_image(path)[..., :3])).resize((size, size), Image.LANCZOS)
    return torch.from_numpy(np.asarray(im, np.float32) / 255).permute(2, 0, 1)[None]


def diagnose(ckpt, target, other) -> dict:
    agent = PaintingPipeline.from_pretrained(ckpt).agent
    c = agent.model_cfg
    out = {"checkpoint": str(ckpt)}
    for n in (20, 50, 100):
        canvas, st = paint_with_actor(agent, target, n)
        out[f"l2_at_{n}"] = round(float((canvas - target).pow(2).mean()), 5)
    _, st_o = paint_with_actor(agent, other, 100)
    a, b = st[0, :, :10], st_o[0, :, :10]
    out["input_dependence"] = round(float((a - b).abs().mean()), 4)      # same t, another image
    out["stroke_spread"] = round(float((a - a.mean(0)).abs().mean()), 4)  # across one painting's strokes
    # the gradient of the L2 after the first bundle w.r.t. its stroke positions, at a blank canvas
    blank = torch.zeros_like(target)
    fm17, _ = agent.masks.masks(target, None, target.shape[-1], c.focus_size)
    with torch.no_grad():
        act = agent.act(agent.actor, blank, target, fm17, 0)
    act = act.clone().requires_grad_(True)
    c1 = agent.step(blank, act, target)[0]
    (c1 - target).pow(2).mean().backward()
    g = act.grad.view(c.bundle, 13)
    out["grad_pos_abs_mean"] = float(g[:, :6].abs().mean())
    out["grad_size_abs_mean"] = float(g[:, 6:10].abs().mean())

    def hard_l2(x):
        painted = agent.step(blank, x, target)[3].view(-1, 13)       # with the closed-form colours
        return float((paint_hard(painted, target.shape[-2], target.shape[-1]) - target[0]).pow(2).mean())
    with torch.no_grad():
        base = hard_l2(act)
        step = act.clone()
        gp = act.grad.clone()
        gp.view(c.bundle, 13)[:, 6:] = 0                              # positions only
        step -= 0.02 * gp / gp.abs().max().clamp_min(1e-12)           # at most 0.02 of the canvas
        out["hard_l2_first_bundle"] = round(base, 5)
        out["hard_l2_after_position_step"] = round(hard_l2(step.clamp(0, 1)), 5)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("image")
    ap.add_argument("--other", default=None, help="a second image (default: the target flipped upside down)")
    ap.add_argument("--all", action="store_true", help="every checkpoint of the run, not only the newest")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    run = Path(a.run)
    ckpts = sorted((run / "checkpoints").glob("step_*")) if a.all else [run]
    size = PaintingPipeline.from_pretrained(ckpts[-1]).agent.model_cfg.size
    target = _image(a.image, size)
    other = _image(a.other, size) if a.other else target.flip(-2)
    t = target[0].permute(1, 2, 0).numpy()
    print(json.dumps({"mosaic10_l2": round(float(np.mean((block_mosaic(t, 10) - t) ** 2)), 5)}))
    for ck in ckpts:
        print(json.dumps(diagnose(ck, target, other)), flush=True)


if __name__ == "__main__":
    main()
